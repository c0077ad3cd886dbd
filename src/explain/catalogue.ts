/**
 * The cause catalogue (docs/explain.md lists it): stable ids that the JSON output, doctor's findings
 * (`Finding.cause`) and users match on. Ids are added when a real message needs one, never renamed.
 */

export const causeIds = [
  'rate-limit',
  'network-no-route',
  'network-vpc-endpoint',
  'network-s3-layers',
  'network-dns',
  'network-tls',
  'network-interrupted',
  'auth-ecr-token',
  'auth-ecr-permission',
  'auth-registry-credentials',
  'image-not-found',
  'image-reference-invalid',
  'image-platform-mismatch',
  'image-media-type',
  'disk-full',
  'pull-timeout',
  'secrets-access',
  'secrets-not-found',
  'secrets-network',
  'logs-access',
  'logs-group-missing',
  'logs-network',
  'unknown',
] as const;

export type CauseId = (typeof causeIds)[number];

export interface CatalogueEntry {
  /** One line, what went wrong. */
  title: string;
  /** What the cause means for the pull, in a sentence or two. */
  meaning: string;
}

export const catalogue: Readonly<Record<CauseId, CatalogueEntry>> = {
  'rate-limit': {
    title: 'The registry refused the pull: pull rate limit reached',
    meaning:
      'Docker Hub (or ECR Public) counts pulls per IP address or account; this address or account has used up its quota for the current window, so manifest requests are refused with 429 until the window ends.',
  },
  'network-no-route': {
    title: 'No network path from the task to the registry',
    meaning:
      'The connection never got an answer: a private subnet without a NAT gateway, a public subnet without a public IP or internet gateway route, a security group or NACL blocking 443, or no VPC endpoint for the service.',
  },
  'network-vpc-endpoint': {
    title: 'An interface VPC endpoint exists but the task cannot use it',
    meaning:
      'The name resolved to a private address (an interface endpoint) but the connection timed out: the endpoint security group does not admit 443 from the task, the task security group does not allow 443 out, private DNS is off, or the `ecr.api` endpoint is missing.',
  },
  'network-s3-layers': {
    title: 'The manifest was fetched but the image layers (in Amazon S3) could not be downloaded',
    meaning:
      "ECR serves layers from the S3 bucket prod-<region>-starport-layer-bucket. Without NAT, the task needs an S3 gateway endpoint on its subnets' route tables, security group egress to the S3 prefix list, and an endpoint policy that allows the layer bucket.",
  },
  'network-dns': {
    title: 'The registry host name does not resolve',
    meaning:
      'DNS lookup failed: VPC DNS support or hostnames off, an interface endpoint with private DNS disabled, custom DHCP options or a resolver that does not forward, or a typo in the host name.',
  },
  'network-tls': {
    title: 'TLS handshake or certificate problem',
    meaning:
      'The connection reached something that did not present a valid certificate for the host, or the handshake stalled: an intercepting proxy, a wrong host name, or a firewall dropping the handshake.',
  },
  'network-interrupted': {
    title: 'The connection broke in the middle of the transfer',
    meaning:
      'The registry or something on the way (NAT gateway, proxy, firewall) closed the connection while data was flowing; usually transient, sometimes an idle timeout on a proxy.',
  },
  'auth-ecr-token': {
    title: 'Could not get an ECR authorization token',
    meaning:
      'Before pulling from ECR the agent calls ecr:GetAuthorizationToken. Either the pulling role may not call it (it needs Resource "*"), or the call never reached ECR\'s API (then it is a network cause).',
  },
  'auth-ecr-permission': {
    title: 'A policy denies an ECR pull action',
    meaning:
      'An identity policy, the repository policy, a service control policy, a permissions boundary or a VPC endpoint policy does not allow (or explicitly denies) an ECR pull action for the pulling principal.',
  },
  'auth-registry-credentials': {
    title: 'Registry credentials missing, wrong or expired',
    meaning:
      'The registry asked for credentials and those given (or none) were refused: repositoryCredentials not set or pointing at a secret with the wrong content, an expired token, or a missing docker login.',
  },
  'image-not-found': {
    title: 'The repository or tag does not exist where the reference points',
    meaning:
      'A typo, the wrong registry or account, a deleted tag, a digest that ECS pinned at deployment and that no longer exists, or an ECR pull-through cache prefix without `library/` for an official Docker Hub image.',
  },
  'image-reference-invalid': {
    title: 'The image reference is malformed',
    meaning:
      'The reference string does not follow the grammar: uppercase letters in the repository, an invalid tag or digest, whitespace, a URL scheme.',
  },
  'image-platform-mismatch': {
    title: 'The image is not built for this operating system and CPU architecture',
    meaning:
      'The image is not built for the platform the task runs on, e.g. an arm64-only image on an X86_64 task: an index without that platform fails the pull, a single-platform image for another CPU is pulled and its entrypoint fails to start with `exec format error`.',
  },
  'image-media-type': {
    title: 'The runtime does not accept the image format',
    meaning:
      'The manifest or a layer uses a media type the runtime does not support: Docker schema 1 (`prettyjws`), an unexpected type, or mixed layer compression.',
  },
  'disk-full': {
    title: 'Disk space ran out while pulling or extracting the image',
    meaning: "The host's (or Fargate's ephemeral) storage filled up while layers were written or unpacked.",
  },
  'pull-timeout': {
    title: 'The pull took too long or stalled',
    meaning:
      'The agent gave up waiting: no progress for the inactivity timeout, or the whole pull exceeded its limit. A slow hop (NAT, proxy, a large image) is the usual reason.',
  },
  'secrets-access': {
    title: 'The execution role cannot read a secret or parameter',
    meaning:
      'Secrets Manager, SSM Parameter Store or KMS refused the execution role: secretsmanager:GetSecretValue, ssm:GetParameters or kms:Decrypt is not allowed on the exact resource.',
  },
  'secrets-not-found': {
    title: 'A referenced secret, parameter or JSON key does not exist',
    meaning:
      'The ARN or name in the task definition points at nothing in that account and region, or the JSON key selected from the secret is not in its value.',
  },
  'secrets-network': {
    title: 'No network path to Secrets Manager or SSM',
    meaning:
      'The task could not reach the Secrets Manager or SSM API: no NAT gateway or interface endpoint, or a security group blocks 443.',
  },
  'logs-access': {
    title: 'The execution role cannot create log streams or groups',
    meaning:
      'The awslogs driver needs logs:CreateLogStream and logs:PutLogEvents, plus logs:CreateLogGroup when awslogs-create-group is true.',
  },
  'logs-group-missing': {
    title: 'The CloudWatch log group does not exist',
    meaning: 'The log group named in the task definition does not exist in the configured region.',
  },
  'logs-network': {
    title: 'No network path to CloudWatch Logs',
    meaning:
      'The task could not reach the CloudWatch Logs API: no NAT gateway or `logs` interface endpoint, or a security group blocks 443.',
  },
  unknown: {
    title: 'No known cause matched this message',
    meaning:
      'pullsafe does not recognise this wording. The evidence below is what could be read from it; `pullsafe doctor` checks the account directly.',
  },
};

export function isCauseId(value: string): value is CauseId {
  return (causeIds as readonly string[]).includes(value);
}
