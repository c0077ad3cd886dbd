/**
 * The wordings the detectors read. The same list picks the evidence lines out of a long input, so a line is
 * shown exactly when a detector could have read something from it.
 */
export const wording = {
  /** The request never got an answer (timeout, refused, cancelled). */
  transport:
    /i\/o timeout|request canceled|Client\.Timeout exceeded|context deadline exceeded|context canceled|RequestCanceled|connection issue between the task and|network is unreachable|no route to host|connection refused|connection timed out|send request failed|request send failed|RequestError/i,
  rateLimit:
    /toomanyrequests|pull rate limit|429 Too Many Requests|Too Many Requests|remote response: 429|Rate exceeded/i,
  referenceInvalid: /invalid reference format/,
  platform:
    /does not contain descriptor matching platform|no matching manifest for|failed to find a descriptor for platform|no match for platform in manifest|no match for current platform|image platform .* does not match/i,
  /** The kernel refused to run the entrypoint: a binary for another CPU (or a script without `#!`). */
  execFormat: /exec format error/i,
  mediaType:
    /unsupported media ?type|prettyjws|application\/vnd\.[\w.+-]+ not supported|unexpected media type|unsupported manifest media type|number of layers and diffIDs don't match|mixed compression/i,
  diskFull:
    /no space left on device|failed to register layer|failed to extract layer|ApplyLayer exit status/i,
  logsGroupMissing: /specified log group does not exist|cannot find the Amazon CloudWatch log group/i,
  logsAction: /\blogs:(CreateLogStream|CreateLogGroup|PutLogEvents|DescribeLogStreams)\b/,
  logsNetwork:
    /cannot find the Amazon CloudWatch log group[\s\S]*connection issue|connection issue between the task and Amazon CloudWatch/i,
  secretsNotFound:
    /ResourceNotFoundException|can[’']t find the specified secret|did not contain json key|invalid parameters|InvalidParameters|ParameterNotFound|invalid ARN format|ValidationException/i,
  denied: /AccessDenied|not authorized|Access to KMS is not allowed/i,
  secretsNetwork:
    /connection issue between the task and (?:AWS Secrets Manager|AWS Systems Manager Parameter Store)/i,
  ecrAuth: /unable to retrieve ecr registry auth|registry auth from Amazon ECR|GetAuthorizationToken/i,
  credentials:
    /incorrect username or password|no basic auth credentials|authentication required|authorization token has expired|asm fetching authorization data|unmarshal secret value of authorization data|username\/password|401 Unauthorized|unauthorized: |UNAUTHORIZED/,
  credentialsWeak:
    /may require 'docker login'|may require authorization|requested access to the resource is denied/,
  notFound:
    /manifest unknown|name unknown|repository does not exist|requested access to the resource is denied|does not exist or no pull access|Tag \S+ not found|manifest for \S+ not found|not found: manifest unknown|: not found\b|repository \S+ not found|No such image|ErrorCode: 404|\b404 Not Found\b/i,
  forbidden: /\b403 Forbidden\b/,
  dns: /no such host|server misbehaving|Temporary failure in name resolution|lookup [^\s]+ on [^\s]+: (?:read udp|i\/o timeout)/i,
  tls: /x509: certificate|TLS handshake timeout|tls: failed to verify|certificate signed by unknown authority|tls: handshake failure/i,
  interrupted: /unexpected EOF|connection reset by peer|broken pipe|http2: server sent GOAWAY|stream error/i,
  pullTimeout:
    /Could not transition to pulled|inactivity time exceeded timeout|DockerTimeoutError|timeout while pulling image|pull image timeout|CannotPullContainerError: timeout|Container pull timed out/i,
  /** Lines that name the failed step without a cause: the error names and a build's base image. */
  failedStep:
    /Cannot(?:Pull|Start|Create|Inspect)\w*Error|ResourceInitializationError|BUILD_CONTAINER_UNABLE_TO_PULL_IMAGE|Failed to pull image|ErrImagePull|Error response from daemon|^Step \d+\/\d+ : FROM |>>> FROM |(?:ERROR|>) \[[^\]]*\] load metadata for /m,
} as const;

/** A layer (blob) download, as opposed to the manifest request. */
export const layerDownload =
  /failed to copy|httpRead(?:er)?Seeker|\/blobs\/sha256|GetImageBlob|starport-layer-bucket|layer/i;
