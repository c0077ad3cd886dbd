/**
 * `explain` over real pull errors, as ECS, Fargate, CodeBuild, Docker and Kubernetes print them. Most rows
 * are messages reported in public issues and the ECS agent's own tests; the account ids, roles and hosts
 * are theirs (or replace `***` placeholders with valid values).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { causeIds, type CauseId } from './catalogue.ts';
import { evidenceLineLength, evidenceLineLimit, explain } from './explain.ts';
import type { Extracted } from './evidence.ts';

interface Row {
  name: string;
  text: string;
  first: CauseId;
  /** Other causes that must follow the first one. */
  also?: CauseId[];
  /** Causes that must not be reported. */
  not?: CauseId[];
  evidence?: Partial<Extracted>;
  /** Substrings that some fix of the first cause must contain. */
  fixes?: string[];
  /** A substring the first fix of the first cause must contain. */
  firstFix?: string;
  /** Substrings that no fix of any cause may contain. */
  notInFixes?: string[];
}

const digest = 'sha256:0b1e4d2f7c9a3e5b8d6f1a2c4e7b9d0f3a5c8e1b4d6f9a2c5e8b1d4f7a0c3e6b';

const rows: Row[] = [
  // rate-limit
  {
    name: 'ECS inspect image 429 from Docker Hub',
    text: 'CannotPullContainerError: inspect image has been retried 5 time(s): httpReaderSeeker: failed open: unexpected status code https://registry-1.docker.io/v2/amazon/aws-for-fluent-bit/manifests/latest: 429 Too Many Requests - Server message: toomanyrequests: You have reached your pull rate limit. You may increase the limit by authenticating and upgrading: https://www.docker.com/increase-rate-limit',
    first: 'rate-limit',
    evidence: {
      retries: 5,
      httpStatus: 429,
      registry: 'docker.io',
      repository: 'amazon/aws-for-fluent-bit',
      source: 'ecs',
    },
    fixes: ['docker-hub/amazon/aws-for-fluent-bit'],
  },
  {
    name: 'Docker daemon rate limit',
    text: 'Error response from daemon: toomanyrequests: You have reached your pull rate limit. You may increase the limit by authenticating and upgrading: https://www.docker.com/increase-rate-limit',
    first: 'rate-limit',
    evidence: { source: 'docker' },
  },
  {
    name: 'ECR Public rate exceeded',
    text: 'Error response from daemon: toomanyrequests: Rate exceeded',
    first: 'rate-limit',
  },
  {
    name: 'Kubernetes official image rate limited',
    text: 'Failed to pull image "nginx:1.25": rpc error: code = Unknown desc = failed to pull and unpack image "docker.io/library/nginx:1.25": failed to copy: httpReadSeeker: failed open: unexpected status code https://registry-1.docker.io/v2/library/nginx/manifests/1.25: 429 Too Many Requests - Server message: toomanyrequests: You have reached your pull rate limit. You may increase the limit by authenticating and upgrading: https://www.docker.com/increase-rate-limit',
    first: 'rate-limit',
    evidence: { source: 'kubernetes', image: 'nginx:1.25', repository: 'library/nginx', tag: '1.25' },
    fixes: ['public.ecr.aws/docker/library/nginx:1.25', 'docker-hub/library/nginx:1.25'],
  },
  {
    name: 'CodeBuild rate limit',
    text: "BUILD_CONTAINER_UNABLE_TO_PULL_IMAGE: Unable to pull customer's container image. CannotPullContainerError: Error response from daemon: toomanyrequests: You have reached your pull rate limit. You may increase the limit by authenticating and upgrading: https://www.docker.com/increase-rate-limit",
    first: 'rate-limit',
    evidence: { source: 'codebuild' },
    fixes: ['registryCredential', 'aws/codebuild/standard'],
    notInFixes: ['env.secrets-manager', 'repositoryCredentials'],
  },
  {
    name: 'CodeBuild log: the classic builder stops at its FROM step',
    text: [
      '[Container] 2024/05/14 10:02:01.324122 Entering phase BUILD',
      '[Container] 2024/05/14 10:02:01.324845 Running command docker build -t $REPOSITORY_URI:$IMAGE_TAG .',
      'Sending build context to Docker daemon  15.36kB',
      'Step 1/9 : FROM python:3.11-slim',
      'toomanyrequests: You have reached your pull rate limit. You may increase the limit by authenticating and upgrading: https://www.docker.com/increase-rate-limit',
      '[Container] 2024/05/14 10:02:03.546211 Command did not exit successfully docker build -t $REPOSITORY_URI:$IMAGE_TAG . exit status 1',
      '[Container] 2024/05/14 10:02:03.550113 Phase complete: BUILD State: FAILED',
      '[Container] 2024/05/14 10:02:03.550131 Phase context status code: COMMAND_EXECUTION_ERROR Message: Error while executing command: docker build -t $REPOSITORY_URI:$IMAGE_TAG .. Reason: exit status 1',
    ].join('\n'),
    first: 'rate-limit',
    evidence: { source: 'codebuild', image: 'python:3.11-slim', dockerBuild: true, tag: '3.11-slim' },
    fixes: [
      'FROM public.ecr.aws/docker/library/python:3.11-slim',
      'secrets-manager',
      'docker login --username "$REGISTRY_USER" --password-stdin',
      'pullsafe copy python:3.11-slim',
    ],
    notInFixes: ['repositoryCredentials', 'registryCredential', 'imagePullSecrets'],
  },
  {
    name: 'CodeBuild log: BuildKit cannot resolve the base image',
    text: [
      '[Container] 2025/02/03 08:15:40.207133 Running command docker buildx build --platform linux/amd64 -t app .',
      '#1 [internal] load build definition from Dockerfile',
      '#1 DONE 0.0s',
      '#2 [internal] load metadata for docker.io/library/node:20-alpine',
      '#2 ERROR: unexpected status from HEAD request to https://registry-1.docker.io/v2/library/node/manifests/20-alpine: 429 Too Many Requests',
      '------',
      ' > [internal] load metadata for docker.io/library/node:20-alpine:',
      '------',
      'Dockerfile:1',
      '--------------------',
      '   1 | >>> FROM node:20-alpine AS build',
      '   2 |     WORKDIR /src',
      '--------------------',
      'ERROR: failed to solve: node:20-alpine: failed to resolve source metadata for docker.io/library/node:20-alpine: unexpected status from HEAD request to https://registry-1.docker.io/v2/library/node/manifests/20-alpine: 429 Too Many Requests',
    ].join('\n'),
    first: 'rate-limit',
    evidence: { source: 'codebuild', image: 'docker.io/library/node:20-alpine', dockerBuild: true },
    fixes: ['FROM public.ecr.aws/docker/library/node:20-alpine', 'env: secrets-manager'],
    notInFixes: ['repositoryCredentials'],
  },
  {
    name: 'docker build outside CodeBuild',
    text: 'Step 1/6 : FROM redis:7.2\ntoomanyrequests: You have reached your pull rate limit. You may increase the limit by authenticating and upgrading: https://www.docker.com/increase-rate-limit',
    first: 'rate-limit',
    evidence: { image: 'redis:7.2', dockerBuild: true },
    fixes: [
      'FROM public.ecr.aws/docker/library/redis:7.2',
      'docker login --username <user> --password-stdin',
    ],
    notInFixes: ['repositoryCredentials'],
  },
  {
    name: 'Kubernetes events of a rate-limited pull (kubectl describe pod)',
    text: [
      'Events:',
      '  Type     Reason     Age                From               Message',
      '  ----     ------     ----               ----               -------',
      '  Normal   Scheduled  2m                 default-scheduler  Successfully assigned shop/web-7d9c6b5f4-x2k8p to ip-10-0-3-17.eu-west-1.compute.internal',
      '  Normal   Pulling    52s (x4 over 2m)   kubelet            Pulling image "nginx:1.27"',
      `  Warning  Failed     51s (x4 over 2m)   kubelet            Failed to pull image "nginx:1.27": failed to pull and unpack image "docker.io/library/nginx:1.27": failed to copy: httpReadSeeker: failed open: unexpected status code https://registry-1.docker.io/v2/library/nginx/manifests/${digest}: 429 Too Many Requests - Server message: toomanyrequests: You have reached your pull rate limit. You may increase the limit by authenticating and upgrading: https://www.docker.com/increase-rate-limit`,
      '  Warning  Failed     51s (x4 over 2m)   kubelet            Error: ErrImagePull',
      '  Normal   BackOff    12s (x6 over 2m)   kubelet            Back-off pulling image "nginx:1.27"',
      '  Warning  Failed     12s (x6 over 2m)   kubelet            Error: ImagePullBackOff',
    ].join('\n'),
    first: 'rate-limit',
    evidence: { source: 'kubernetes', image: 'nginx:1.27', tag: '1.27' },
    fixes: [
      'imagePullSecrets',
      'kubectl create secret docker-registry',
      'image: public.ecr.aws/docker/library/nginx:1.27',
    ],
    notInFixes: ['repositoryCredentials', 'buildspec'],
  },
  {
    name: 'ECS: a digest-pinned pull keeps its digest',
    text: `CannotPullContainerError: inspect image has been retried 5 time(s): httpReaderSeeker: failed open: unexpected status code https://registry-1.docker.io/v2/library/node/manifests/${digest}: 429 Too Many Requests - Server message: toomanyrequests: You have reached your pull rate limit. You may increase the limit by authenticating and upgrading: https://www.docker.com/increase-rate-limit`,
    first: 'rate-limit',
    evidence: { digest, repository: 'library/node' },
    fixes: [
      `public.ecr.aws/docker/library/node@${digest}`,
      `docker-hub/library/node@${digest}`,
      `pullsafe copy node@${digest}`,
    ],
    notInFixes: ['node:latest'],
  },
  {
    name: 'Fargate: a tag and digest keep both',
    text: `CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref docker.io/library/node:20@${digest}: unexpected status from GET request to https://registry-1.docker.io/v2/library/node/manifests/${digest}: 429 Too Many Requests`,
    first: 'rate-limit',
    evidence: { tag: '20', digest },
    fixes: [`public.ecr.aws/docker/library/node:20@${digest}`],
    notInFixes: ['node:latest'],
  },
  {
    name: 'Fargate manifest HEAD 429',
    text: 'CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref docker.io/library/python:3.12-slim: unexpected status from HEAD request to https://registry-1.docker.io/v2/library/python/manifests/3.12-slim: 429 Too Many Requests',
    first: 'rate-limit',
    evidence: { image: 'docker.io/library/python:3.12-slim', retries: 5 },
    fixes: ['public.ecr.aws/docker/library/python:3.12-slim'],
  },
  {
    name: 'Docker image configuration 429',
    text: 'error pulling image configuration: toomanyrequests: Too Many Requests. Please see https://docs.docker.com/docker-hub/download-rate-limit/',
    first: 'rate-limit',
  },

  // network-no-route
  {
    name: 'Fargate public subnet without public IP',
    text: 'Cannotpullcontainererror: pull image manifest has been retried 5 time(s): failed to resolve ref docker.io/username/repo: failed to do request: Head "https://registry-1.docker.io/v2/username/repo/manifests/latest": dial tcp 44.205.64.79:443: i/o timeout',
    first: 'network-no-route',
    evidence: { dialIp: '44.205.64.79', dialPort: 443, ipClass: 'public', retries: 5 },
    fixes: ['NAT gateway'],
  },
  {
    name: 'ECS agent network hint',
    text: 'The task can’t pull the image. Check your network configuration. RequestError: send request failed\ncaused by: Post "https://api.ecr.us-east-1.amazonaws.com/": net/http: request canceled while waiting for connection (Client.Timeout exceeded while awaiting headers)',
    first: 'network-no-route',
    also: ['network-vpc-endpoint'],
    evidence: { agentHint: 'network', region: 'us-east-1' },
    fixes: ['com.amazonaws.us-east-1.ecr.api'],
  },
  {
    name: 'Fargate ECR auth with send request failed',
    text: 'ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve ecr registry auth: service call has been retried 5 time(s): RequestError: send request failed caused by: Post https://api.ecr.us-west-2.amazonaws.com/: dial tcp 52.94.210.10:443: i/o timeout',
    first: 'network-no-route',
    also: ['auth-ecr-token'],
    evidence: { ipClass: 'public', region: 'us-west-2' },
  },
  {
    name: 'SDK v2 StatusCode 0 on GetAuthorizationToken',
    text: 'ResourceInitializationError: unable to pull secrets or registry auth: unable to retrieve ecr registry auth: operation error ECR: GetAuthorizationToken, exceeded maximum number of attempts, 3, https response error StatusCode: 0, RequestID: , request send failed, Post "https://api.ecr.eu-west-1.amazonaws.com/": dial tcp 52.94.1.10:443: i/o timeout',
    first: 'network-no-route',
    also: ['auth-ecr-token'],
    evidence: {
      sdkService: 'ECR',
      sdkOperation: 'GetAuthorizationToken',
      sdkStatusCode: 0,
      region: 'eu-west-1',
    },
  },
  {
    name: 'Docker client timeout to Docker Hub',
    text: 'CannotPullContainerError: Error response from daemon: Get https://registry-1.docker.io/v2/: net/http: request canceled while waiting for connection (Client.Timeout exceeded while awaiting headers)',
    first: 'network-no-route',
    evidence: { registry: 'docker.io' },
  },
  {
    name: 'EKS node without route to ECR',
    text: 'Failed to pull image "602401143452.dkr.ecr.us-west-2.amazonaws.com/amazon-k8s-cni:v1.12.0": rpc error: code = Unknown desc = failed to pull and unpack image "602401143452.dkr.ecr.us-west-2.amazonaws.com/amazon-k8s-cni:v1.12.0": failed to resolve reference "602401143452.dkr.ecr.us-west-2.amazonaws.com/amazon-k8s-cni:v1.12.0": failed to do request: Head "https://602401143452.dkr.ecr.us-west-2.amazonaws.com/v2/amazon-k8s-cni/manifests/v1.12.0": dial tcp 34.223.12.7:443: i/o timeout',
    first: 'network-no-route',
    evidence: {
      source: 'kubernetes',
      accountId: '602401143452',
      region: 'us-west-2',
      repository: 'amazon-k8s-cni',
      tag: 'v1.12.0',
    },
  },

  // network-vpc-endpoint
  {
    name: 'Fargate ECR auth to a private endpoint address',
    text: 'ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve ecr registry auth: service call has been retried 3 time(s): RequestError: send request failed caused by: Post "https://api.ecr.us-east-1.amazonaws.com/": dial tcp 10.0.12.34:443: i/o timeout',
    first: 'network-vpc-endpoint',
    also: ['auth-ecr-token'],
    not: ['network-no-route'],
    evidence: { dialIp: '10.0.12.34', ipClass: 'private', retries: 3 },
    fixes: ['authorize-security-group-ingress'],
  },
  {
    name: 'Fargate manifest through an ecr.dkr endpoint',
    text: 'CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref 123456789012.dkr.ecr.eu-central-1.amazonaws.com/web:1.4.2: failed to do request: Head "https://123456789012.dkr.ecr.eu-central-1.amazonaws.com/v2/web/manifests/1.4.2": dial tcp 10.20.3.17:443: i/o timeout',
    first: 'network-vpc-endpoint',
    evidence: { ipClass: 'private', image: '123456789012.dkr.ecr.eu-central-1.amazonaws.com/web:1.4.2' },
    fixes: ['com.amazonaws.eu-central-1.ecr.dkr'],
  },
  {
    name: 'EKS custom networking endpoint in CGNAT space',
    text: 'Failed to pull image "111122223333.dkr.ecr.ap-south-1.amazonaws.com/api:7": rpc error: code = Unknown desc = failed to pull and unpack image "111122223333.dkr.ecr.ap-south-1.amazonaws.com/api:7": failed to resolve reference "111122223333.dkr.ecr.ap-south-1.amazonaws.com/api:7": failed to do request: Head "https://111122223333.dkr.ecr.ap-south-1.amazonaws.com/v2/api/manifests/7": dial tcp 100.64.3.9:443: i/o timeout',
    first: 'network-vpc-endpoint',
    evidence: { ipClass: 'private', region: 'ap-south-1' },
  },

  // network-s3-layers
  {
    name: 'ECS agent redacted layer URL',
    text: 'CannotPullContainerError: ref pull has been retried 5 time(s): failed to copy: httpReadSeeker: failed open: failed to do request: Get REDACTED ECR URL related to 111111111111.dkr.ecr.us-east-1.amazonaws.com/myapp: dial tcp 52.216.20.5:443: i/o timeout',
    first: 'network-s3-layers',
    not: ['network-no-route'],
    evidence: {
      layerUrlRedacted: true,
      ipClass: 'amazon-s3',
      image: '111111111111.dkr.ecr.us-east-1.amazonaws.com/myapp',
    },
    fixes: ['com.amazonaws.us-east-1.s3', 'prod-us-east-1-starport-layer-bucket'],
  },
  {
    name: 'Layer bucket URL with a security token',
    text: 'CannotPullContainerError: ref pull has been retried 5 time(s): failed to copy: httpReadSeeker: failed open: failed to do request: Get "https://prod-us-east-1-starport-layer-bucket.s3.us-east-1.amazonaws.com/d1d1d1-222222222222-11d11d1d-4444-aaaa-bbbb-e4444gg4g4g4/9s9s9s9s9s-2b2b-a2a2-dddd-gg99gg99gg99?X-Amz-Security-Token=mysup3rs3cr3ttok3n": dial tcp 52.217.14.6:443: i/o timeout',
    first: 'network-s3-layers',
    evidence: { region: 'us-east-1', ipClass: 'amazon-s3' },
  },
  {
    name: 'Docker on EC2 layer configuration timeout',
    text: 'error pulling image configuration: Get https://prod-eu-west-1-starport-layer-bucket.s3.eu-west-1.amazonaws.com/1a2b-3c4d/5e6f: dial tcp 52.218.1.1:443: i/o timeout',
    first: 'network-s3-layers',
    evidence: { region: 'eu-west-1' },
    fixes: ['prod-eu-west-1-starport-layer-bucket'],
  },
  {
    name: 'Gateway endpoint policy refuses the layer bucket',
    text: 'CannotPullContainerError: ref pull has been retried 1 time(s): failed to copy: httpReadSeeker: failed open: unexpected status code https://prod-ap-southeast-2-starport-layer-bucket.s3.ap-southeast-2.amazonaws.com/a1b2/c3d4: 403 Forbidden',
    first: 'network-s3-layers',
    not: ['auth-ecr-permission'],
    evidence: { httpStatus: 403, region: 'ap-southeast-2' },
    fixes: ['arn:aws:s3:::prod-ap-southeast-2-starport-layer-bucket/*'],
  },

  // network-dns
  {
    name: 'Docker lookup of an ECR host fails',
    text: 'Error response from daemon: Get https://123456789012.dkr.ecr.us-east-1.amazonaws.com/v2/: dial tcp: lookup 123456789012.dkr.ecr.us-east-1.amazonaws.com on 10.5.0.2:53: no such host',
    first: 'network-dns',
    evidence: { lookupHost: '123456789012.dkr.ecr.us-east-1.amazonaws.com' },
    fixes: ['com.amazonaws.us-east-1.ecr.dkr'],
  },
  {
    name: 'ECS lookup of Docker Hub fails',
    text: 'CannotPullContainerError: failed to resolve ref "docker.io/docker/ecs-searchdomain-sidecar:1.0": failed to do request: Head https://registry-1.docker.io/v2/docker/ecs-searchdomain-sidecar/manifests/1.0: dial tcp: lookup registry-1.docker.io on 172.31.0.2:53: no such host',
    first: 'network-dns',
    evidence: { lookupHost: 'registry-1.docker.io', image: 'docker.io/docker/ecs-searchdomain-sidecar:1.0' },
    notInFixes: ['amazonaws.com', 'endpoint'],
  },
  {
    name: 'kubelet cannot resolve a private registry',
    text: 'Failed to pull image "registry.corp.example/payments/api:3.4.1": rpc error: code = Unknown desc = failed to pull and unpack image "registry.corp.example/payments/api:3.4.1": failed to resolve reference "registry.corp.example/payments/api:3.4.1": failed to do request: Head "https://registry.corp.example/v2/payments/api/manifests/3.4.1": dial tcp: lookup registry.corp.example on 10.0.0.2:53: no such host',
    first: 'network-dns',
    evidence: { lookupHost: 'registry.corp.example', source: 'kubernetes' },
    fixes: ['registry.corp.example', 'Route 53 Resolver'],
    notInFixes: ['amazonaws.com', 'endpoint'],
  },
  {
    name: 'Layer bucket name does not resolve',
    text: 'CannotPullContainerError: ref pull has been retried 1 time(s): failed to copy: httpReadSeeker: failed open: failed to do request: Get "https://prod-eu-west-1-starport-layer-bucket.s3.eu-west-1.amazonaws.com/a1b2/c3d4": dial tcp: lookup prod-eu-west-1-starport-layer-bucket.s3.eu-west-1.amazonaws.com on 10.1.0.2:53: no such host',
    first: 'network-dns',
    fixes: ['com.amazonaws.eu-west-1.s3', 'amazonaws.com names'],
  },
  {
    name: 'Mistyped ECR host',
    text: 'Get https://906554764568.dkr.ecr.us-west-2.amazon.aws.com/v2/: dial tcp: lookup 906554764568.dkr.ecr.us-west-2.amazon.aws.com on 172.31.0.2:53: no such host',
    first: 'network-dns',
    fixes: ['mistyped'],
  },

  // network-tls
  {
    name: 'CodeBuild certificate for another name',
    text: "BUILD_CONTAINER_UNABLE_TO_PULL_IMAGE: Unable to pull customer's container image. CannotPullContainerError: Error response from daemon: Get https://395333095307.dkr.ecr.us-west-2.amazonaws.com/v2/: x509: certificate is valid for *.dkr.starport.us-west-2.amazonaws.com, *.dkr.starport.us-west-2.vpce.amazonaws.com, not 395333095307.dkr.ec",
    first: 'network-tls',
    evidence: { source: 'codebuild' },
  },
  {
    name: 'Docker TLS handshake timeout',
    text: 'Error response from daemon: Get "https://registry-1.docker.io/v2/": net/http: TLS handshake timeout',
    first: 'network-tls',
  },
  {
    name: 'Kubernetes unknown certificate authority',
    text: 'Failed to pull image "registry.example.com/team/app:2.1": rpc error: code = Unknown desc = failed to pull and unpack image "registry.example.com/team/app:2.1": failed to resolve reference "registry.example.com/team/app:2.1": failed to do request: Head "https://registry.example.com/v2/team/app/manifests/2.1": tls: failed to verify certificate: x509: certificate signed by unknown authority',
    first: 'network-tls',
    evidence: { registry: 'registry.example.com', repository: 'team/app' },
  },

  {
    name: 'Docker with a clock in the past',
    text: 'Error response from daemon: Get "https://registry-1.docker.io/v2/": tls: failed to verify certificate: x509: certificate has expired or is not yet valid: current time 2019-01-01T00:00:41Z is before 2025-08-12T00:00:00Z',
    first: 'network-tls',
    evidence: { clockTime: '2019-01-01T00:00:41Z', certNotBefore: '2025-08-12T00:00:00Z' },
    firstFix: 'check the clock',
  },
  {
    name: 'kubelet and a certificate that expired',
    text: 'Failed to pull image "harbor.internal.example/ops/agent:2.0": rpc error: code = Unknown desc = failed to pull and unpack image "harbor.internal.example/ops/agent:2.0": failed to resolve reference "harbor.internal.example/ops/agent:2.0": failed to do request: Head "https://harbor.internal.example/v2/ops/agent/manifests/2.0": tls: failed to verify certificate: x509: certificate has expired or is not yet valid: current time 2025-03-02T09:14:03Z is after 2025-02-28T23:59:59Z',
    first: 'network-tls',
    evidence: { certNotAfter: '2025-02-28T23:59:59Z' },
    firstFix: 'renew the certificate of harbor.internal.example',
    fixes: ['check the clock'],
  },

  // network-interrupted
  {
    name: 'Connection reset during a layer download',
    text: 'CannotPullContainerError: failed to copy: httpReadSeeker: failed open: failed to do request: Get "https://production.cloudflare.docker.com/registry-v2/docker/registry/v2/blobs/sha256/8a/8aeee5b96e26/data": read tcp 10.0.1.5:51234->104.16.101.215:443: read: connection reset by peer',
    first: 'network-interrupted',
  },
  {
    name: 'Unexpected EOF from Docker Hub',
    text: 'Error response from daemon: Get "https://registry-1.docker.io/v2/library/node/manifests/20": unexpected EOF',
    first: 'network-interrupted',
    evidence: { image: 'docker.io/library/node:20' },
  },

  // auth-ecr-token
  {
    name: 'Batch execution role without GetAuthorizationToken',
    text: 'CannotPullECRContainerError: AccessDeniedException: User: arn:aws:sts::111122223333:assumed-role/OvertureTilesCdkStack-OvertureTilesContainer-1AB2/abc123 is not authorized to perform: ecr:GetAuthorizationToken on resource: * because no identity-based policy allows the ecr:GetAuthorizationToken action',
    first: 'auth-ecr-token',
    not: ['auth-ecr-permission'],
    evidence: {
      roleName: 'OvertureTilesCdkStack-OvertureTilesContainer-1AB2',
      iamAction: 'ecr:GetAuthorizationToken',
      deniedBy: 'identity-based',
    },
    fixes: ['--role-name OvertureTilesCdkStack-OvertureTilesContainer-1AB2', '"Resource":"*"'],
  },
  {
    name: 'SDK v2 AccessDenied on GetAuthorizationToken',
    text: 'ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve ecr registry auth: service call has been retried 3 time(s): operation error ECR: GetAuthorizationToken, https response error StatusCode: 400, RequestID: 5f1c8a2e-3b7d-4c1a-9e2f-0a1b2c3d4e5f, api error AccessDeniedException: User: arn:aws:sts::123456789012:assumed-role/ecsTaskExecutionRole/8f2e1c0b is not authorized to perform: ecr:GetAuthorizationToken on resource: * because no identity-based policy allows the ecr:GetAuthorizationToken action',
    first: 'auth-ecr-token',
    not: ['network-no-route'],
    evidence: {
      sdkStatusCode: 400,
      requestId: '5f1c8a2e-3b7d-4c1a-9e2f-0a1b2c3d4e5f',
      errorCode: 'AccessDeniedException',
      roleName: 'ecsTaskExecutionRole',
    },
    fixes: ['--role-name ecsTaskExecutionRole'],
  },
  {
    name: 'EC2 container instance role without GetAuthorizationToken',
    text: 'An error occurred (AccessDeniedException) when calling the GetAuthorizationToken operation: User: arn:aws:sts::123456789012:assumed-role/ecsInstanceRole/i-0a1b2c3d4e5f60718 is not authorized to perform: ecr:GetAuthorizationToken on resource: *',
    first: 'auth-ecr-token',
    evidence: { roleSession: 'i-0a1b2c3d4e5f60718' },
    fixes: ['container instance role'],
  },

  // auth-ecr-permission
  {
    name: 'ECS agent permissions hint',
    text: "The task can’t pull the image. Check that the role has the permissions to pull images from the registry. Error response from daemon: pull access denied for 123123123123.dkr.ecr.us-east-1.amazonaws.com/my_image, repository does not exist or may require 'docker login': denied: User: arn:aws:sts::123123123123:assumed-role/MyBrokenRole/xyz is not authorized to perform: ecr:BatchGetImage on resource: arn:aws:ecr:us-east-1:123123123123:repository/test_image because no identity-based policy allows the ecr:BatchGetImage action",
    first: 'auth-ecr-permission',
    not: ['image-not-found', 'auth-registry-credentials'],
    evidence: {
      agentHint: 'permissions',
      iamAction: 'ecr:BatchGetImage',
      roleName: 'MyBrokenRole',
      principalArn: 'arn:aws:sts::123123123123:assumed-role/MyBrokenRole/xyz',
      resourceArn: 'arn:aws:ecr:us-east-1:123123123123:repository/test_image',
      deniedBy: 'identity-based',
    },
    fixes: [
      '--role-name MyBrokenRole',
      '"Action":["ecr:BatchGetImage"],"Resource":"arn:aws:ecr:us-east-1:123123123123:repository/test_image"',
    ],
  },
  {
    name: 'CodeBuild role without BatchGetImage',
    text: "Error response from daemon: pull access denied for 254865750963.dkr.ecr.us-west-2.amazonaws.com/everything2/e2lib, repository does not exist or may require 'docker login': denied: User: arn:aws:sts::254865750963:assumed-role/Docker-Builder-CodeBuild-Role/AWSCodeBuild-749228d3-4d07-4037-bd81-b631b0a0460e is not authorized to perform: ecr:BatchGetImage on resource: arn:aws:ecr:us-west-2:254865750963:repository/everything2/e2lib because no identity-based policy allows the ecr:BatchGetImage action",
    first: 'auth-ecr-permission',
    evidence: { roleName: 'Docker-Builder-CodeBuild-Role', repository: 'everything2/e2lib' },
    fixes: ['--role-name Docker-Builder-CodeBuild-Role', 'repository/everything2/e2lib'],
  },
  {
    name: 'Cross-account pull refused by the repository policy',
    text: "Error response from daemon: pull access denied for 328549459982.dkr.ecr.us-west-2.amazonaws.com/bottlerocket/bottlerocket-update-operator, repository does not exist or may require 'docker login': denied: User: arn:aws:iam::111122223333:user/taylorjs is not authorized to perform: ecr:BatchGetImage on resource: arn:aws:ecr:us-west-2:328549459982:repository/bottlerocket/bottlerocket-update-operator because no resource-based policy allows the ecr:BatchGetImage action",
    first: 'auth-ecr-permission',
    evidence: { deniedBy: 'resource-based', principalAccount: '111122223333', accountId: '328549459982' },
    fixes: [
      'repository policy of bottlerocket/bottlerocket-update-operator',
      'arn:aws:iam::111122223333:user/taylorjs',
    ],
  },
  {
    name: 'Amplify build role without GetDownloadUrlForLayer',
    text: 'error pulling image configuration: download failed after attempts=1: denied: User: arn:aws:sts::123456789012:assumed-role/amplify-build-role/1700000000000 is not authorized to perform: ecr:GetDownloadUrlForLayer on resource: arn:aws:ecr:eu-west-1:123456789012:repository/api-container because no identity-based policy allows the ecr:GetDownloadUrlForLayer action',
    first: 'auth-ecr-permission',
    evidence: { iamAction: 'ecr:GetDownloadUrlForLayer', region: 'eu-west-1' },
    fixes: ['ecr:GetDownloadUrlForLayer', '--role-name amplify-build-role'],
  },
  {
    name: 'Fargate 403 on an ECR manifest',
    text: 'CannotPullContainerError: pull image manifest has been retried 1 time(s): failed to resolve ref 123456789123.dkr.ecr.us-east-1.amazonaws.com/a2-ecr-app-repo:latest: pulling from host 123456789123.dkr.ecr.us-east-1.amazonaws.com failed with status code [manifests latest]: 403 Forbidden',
    first: 'auth-ecr-permission',
    evidence: { httpStatus: 403, repository: 'a2-ecr-app-repo' },
    fixes: ['repository/a2-ecr-app-repo'],
  },
  {
    name: 'Explicit deny in a service control policy',
    text: "CannotPullContainerError: Error response from daemon: pull access denied for 999988887777.dkr.ecr.us-east-1.amazonaws.com/shared/base, repository does not exist or may require 'docker login': denied: User: arn:aws:sts::123456789012:assumed-role/app-exec-role/abc is not authorized to perform: ecr:BatchGetImage on resource: arn:aws:ecr:us-east-1:999988887777:repository/shared/base with an explicit deny in a service control policy",
    first: 'auth-ecr-permission',
    evidence: { deniedBy: 'explicit-deny', explicitDenyIn: 'service control' },
    fixes: ['Deny statement matching ecr:BatchGetImage'],
  },
  {
    name: 'Fargate 403 on a blob of another account',
    text: 'CannotPullContainerError: pull image manifest has been retried 1 time(s): failed to resolve ref 366590864501.dkr.ecr.us-west-2.amazonaws.com/bedrock-proxy-api-ecs:latest@sha256:5de487da52320ad9978f3a7a4f6700910342956c7dcb3b6f955222b4cccbd600: unexpected status from HEAD request to https://366590864501.dkr.ecr.us-west-2.amazonaws.com/v2/bedrock-proxy-api-ecs/blobs/sha256:5de487da52320ad9978f3a7a4f6700910342956c7dcb3b6f955222b4cccbd600: 403 Forbidden',
    first: 'auth-ecr-permission',
    evidence: { digest: 'sha256:5de487da52320ad9978f3a7a4f6700910342956c7dcb3b6f955222b4cccbd600' },
  },

  // auth-registry-credentials
  {
    name: 'ECS repositoryCredentials secret that is not username/password JSON',
    text: 'ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secret from asm: service call has been retried 1 time(s): failed to fetch secret arn:aws:secretsmanager:us-east-1:123456789012:secret:dockerhub-AbCdEf from secrets manager: unable to unmarshal secret value of authorization data from asm',
    first: 'auth-registry-credentials',
    evidence: { source: 'ecs' },
    fixes: [
      '{"username":"USER","password":"TOKEN"}',
      'arn:aws:secretsmanager:us-east-1:123456789012:secret:dockerhub-AbCdEf',
    ],
  },
  {
    name: 'CodeBuild wrong Docker Hub password',
    text: 'BUILD_CONTAINER_UNABLE_TO_PULL_IMAGE: Unable to pull customer\'s container image. CannotPullContainerError: Error response from daemon: Head "https://registry-1.docker.io/v2/hashicorp/terraform/manifests/1.2.3": unauthorized: incorrect username or password',
    first: 'auth-registry-credentials',
    evidence: { source: 'codebuild', image: 'docker.io/hashicorp/terraform:1.2.3' },
    fixes: ['registryCredential'],
  },
  {
    name: 'ECS agent unrecognised credentials error',
    text: 'API error (500): Get https://registry-1.docker.io/v2/library/amazonlinux/manifests/1: unauthorized: incorrect username or password',
    first: 'auth-registry-credentials',
    evidence: { dockerApiStatus: 500, repository: 'library/amazonlinux' },
    fixes: ['repositoryCredentials'],
  },
  {
    name: 'Docker without ECR login',
    text: 'Error response from daemon: Head "https://328549459982.dkr.ecr.us-west-2.amazonaws.com/v2/bottlerocket/bottlerocket-update-operator/manifests/v0.2.0": no basic auth credentials',
    first: 'auth-registry-credentials',
    fixes: ['aws ecr get-login-password --region us-west-2'],
  },
  {
    name: 'Kubernetes invalid username/password',
    text: 'Failed to pull image "image-registry.openshift-image-registry.svc:5000/example-webapp": rpc error: code = Unknown desc = unable to retrieve auth token: invalid username/password',
    first: 'auth-registry-credentials',
    evidence: { source: 'kubernetes', registry: 'image-registry.openshift-image-registry.svc:5000' },
    fixes: ['imagePullSecrets'],
  },
  {
    name: 'Expired ECR token',
    text: "Error response from daemon: pull access denied for 123456789012.dkr.ecr.us-east-1.amazonaws.com/app, repository does not exist or may require 'docker login': denied: Your authorization token has expired. Reauthenticate and try again.",
    first: 'auth-registry-credentials',
    fixes: ['expired'],
  },

  {
    name: 'kubelet refused by ghcr.io',
    text: 'Failed to pull image "ghcr.io/acme/billing:1.8.0": rpc error: code = Unknown desc = failed to pull and unpack image "ghcr.io/acme/billing:1.8.0": failed to resolve reference "ghcr.io/acme/billing:1.8.0": failed to authorize: failed to fetch anonymous token: unexpected status from GET request to https://ghcr.io/token?scope=repository%3Aacme%2Fbilling%3Apull&service=ghcr.io: 401 Unauthorized',
    first: 'auth-registry-credentials',
    evidence: { source: 'kubernetes', registry: 'ghcr.io' },
    fixes: ['imagePullSecrets', '--docker-server=ghcr.io'],
    notInFixes: ['repositoryCredentials'],
  },
  {
    name: 'containerd: a private Docker Hub repository without credentials',
    text: 'Failed to pull image "acme/private-api:2.3": rpc error: code = Unknown desc = failed to pull and unpack image "docker.io/acme/private-api:2.3": failed to resolve reference "docker.io/acme/private-api:2.3": pull access denied, repository does not exist or may require authorization: server message: insufficient_scope: authorization failed',
    first: 'image-not-found',
    also: ['auth-registry-credentials'],
    notInFixes: ['repositoryCredentials'],
  },

  // image-not-found
  {
    name: 'ECS agent image hint',
    text: "The task can’t pull the image. Check whether the image exists. Error response from daemon: pull access denied for some/nonsense, repository does not exist or may require 'docker login': denied: requested access to the resource is denied",
    first: 'image-not-found',
    also: ['auth-registry-credentials'],
    evidence: { agentHint: 'image', image: 'some/nonsense', repository: 'some/nonsense' },
  },
  {
    name: 'Fargate pinned digest no longer exists',
    text: 'CannotPullContainerError: pull image manifest has been retried 1 time(s): failed to resolve ref ghcr.io/usdigitalresponse/usdr-gost-arpa-exporter:9f3f04ba74d338f28372c252c68e0e2eb8a65185@sha256:cca4a767de7ae6d33db8dcc9bb0452db96d042327c37a85515fe8612881477f7: ghcr.io/usdigitalresponse/usdr-gost-arpa-exporter:9f3f04ba74d338f28372c252c68e0e2eb8a65185@sha256:cca4a767de7ae6d33db8dcc9bb0452db96d042327c37a85515fe8612881477f7: not found',
    first: 'image-not-found',
    evidence: {
      registry: 'ghcr.io',
      digest: 'sha256:cca4a767de7ae6d33db8dcc9bb0452db96d042327c37a85515fe8612881477f7',
    },
    fixes: ['redeploy'],
  },
  {
    name: 'CodeBuild 404 for a bare name',
    text: "MessageUnable to pull customer's container image. ErrorCode: 404, Reason: pull access denied for python3.6, repository does not exist or may require 'docker login'",
    first: 'image-not-found',
    evidence: { source: 'codebuild', dockerApiStatus: 404, image: 'python3.6' },
  },
  {
    name: 'CodeBuild manifest not found in ECR',
    text: "BUILD_CONTAINER_UNABLE_TO_PULL_IMAGE: Unable to pull customer's container image. CannotPullContainerError: API error (404): manifest for 123456789.dkr.ecr.us-east-1.amazonaws.com/new-c-myECR-bg1z25mqh9s3:latest not found",
    first: 'image-not-found',
  },
  {
    name: 'Kubernetes manifest unknown',
    text: 'ErrImagePull: rpc error: code = Unknown desc = Error response from daemon: manifest for drainnode/leader:v1.0-rc9 not found: manifest unknown: manifest unknown',
    first: 'image-not-found',
    evidence: { source: 'kubernetes', image: 'drainnode/leader:v1.0-rc9', tag: 'v1.0-rc9' },
  },
  {
    name: 'Old ECS agent tag not found',
    text: 'CannotPullContainerError: Tag latest not found in repository docker.io/library/owncloud',
    first: 'image-not-found',
    evidence: { repository: 'library/owncloud', tag: 'latest' },
  },
  {
    name: 'Pull-through cache prefix without library/',
    text: 'CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref 123456789012.dkr.ecr.us-east-1.amazonaws.com/docker-hub/nginx:1.27: pulling from host 123456789012.dkr.ecr.us-east-1.amazonaws.com failed with status code [manifests 1.27]: 403 Forbidden',
    first: 'image-not-found',
    also: ['auth-ecr-permission'],
    fixes: ['123456789012.dkr.ecr.us-east-1.amazonaws.com/docker-hub/library/nginx:1.27'],
  },
  {
    name: 'Docker manifest unknown',
    text: 'Error response from daemon: manifest for cudd2v/curl-site:latest not found: manifest unknown: manifest unknown',
    first: 'image-not-found',
  },

  // image-reference-invalid
  {
    name: 'CodeBuild invalid reference',
    text: "Unable to pull customer's container image. ErrorCode: 500, Reason: invalid reference format.",
    first: 'image-reference-invalid',
    evidence: { source: 'codebuild' },
  },
  {
    name: 'Docker uppercase repository',
    text: 'Error response from daemon: invalid reference format: repository name must be lowercase',
    first: 'image-reference-invalid',
  },
  {
    name: 'Kubernetes InvalidImageName',
    text: 'Failed to apply default image tag "MyApp:latest": couldn\'t parse image reference "MyApp:latest": invalid reference format: repository name must be lowercase',
    first: 'image-reference-invalid',
  },

  // image-platform-mismatch
  {
    name: 'Kubernetes no match for platform',
    text: 'Failed to pull image "ghcr.io/codefactoryhu/manifest:0.1.5": rpc error: code = NotFound desc = failed to pull and unpack image "ghcr.io/codefactoryhu/manifest:0.1.5": no match for platform in manifest: not found',
    first: 'image-platform-mismatch',
    not: ['image-not-found'],
    evidence: { image: 'ghcr.io/codefactoryhu/manifest:0.1.5' },
    fixes: ['runtimePlatform', 'ghcr.io/codefactoryhu/manifest:0.1.5'],
  },
  {
    name: 'ECS descriptor matching platform',
    text: "CannotPullContainerError: pull image manifest has been retried 5 time(s): image Manifest does not contain descriptor matching platform 'linux/amd64'",
    first: 'image-platform-mismatch',
    evidence: { platforms: ['linux/amd64'] },
    fixes: ['linux/amd64'],
  },
  {
    name: 'Docker no matching manifest',
    text: 'Error response from daemon: no matching manifest for linux/arm64/v8 in the manifest list entries',
    first: 'image-platform-mismatch',
    evidence: { platforms: ['linux/arm64/v8'] },
  },
  {
    name: 'EKS arm64-only controller',
    text: 'Failed to pull image "ghcr.io/kubewarden/kubewarden-controller:latest": rpc error: code = NotFound desc = failed to pull and unpack image "ghcr.io/kubewarden/kubewarden-controller:latest": no match for platform in manifest: not found',
    first: 'image-platform-mismatch',
  },

  {
    name: 'container log of an arm64 image on X86_64',
    text: 'exec /usr/local/bin/docker-entrypoint.sh: exec format error',
    first: 'image-platform-mismatch',
    fixes: ['runtimePlatform', '--platform linux/amd64', 'pullsafe copy --platform'],
  },
  {
    name: 'older runc: exec user process caused',
    text: 'standard_init_linux.go:228: exec user process caused: exec format error',
    first: 'image-platform-mismatch',
    fixes: ['runtimePlatform', '--platform'],
  },
  {
    name: 'ECS on EC2: runc cannot start the entrypoint',
    text: 'CannotStartContainerError: Error response from daemon: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: "/app/server": exec format error: unknown',
    first: 'image-platform-mismatch',
    fixes: ['runtimePlatform', 'docker buildx build --platform'],
  },
  {
    name: 'kubelet: containerd cannot start the entrypoint',
    text: 'Warning  Failed     3s (x3 over 21s)  kubelet            Error: failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: "/app/server": exec format error: unknown',
    first: 'image-platform-mismatch',
    evidence: { source: 'kubernetes' },
    fixes: ['kubernetes.io/arch'],
  },

  // image-media-type
  {
    name: 'Schema 1 manifest',
    text: 'Error response from daemon: application/vnd.docker.distribution.manifest.v1+prettyjws not supported',
    first: 'image-media-type',
    evidence: { mediaTypes: ['application/vnd.docker.distribution.manifest.v1+prettyjws'] },
  },
  {
    name: 'ECS mixed layer compression',
    text: "CannotPullContainerError: ref pull has been retried 1 time(s): number of layers and diffIDs don't match: 3 != 15",
    first: 'image-media-type',
    fixes: ['compression'],
  },
  {
    name: 'containerd unexpected media type',
    text: 'pulling image: rpc error: code = NotFound desc = failed to pull and unpack image "harbor.local.org/image-name:v1": failed to unpack image on snapshotter overlayfs: unexpected media type text/html for sha256:6066282cb389d5bee17ec9f08335850ece266457a557511d3f5e78eabc34df21: not found',
    first: 'image-media-type',
    evidence: { mediaTypes: ['text/html'] },
  },

  // disk-full
  {
    name: 'ECS temporary blob, disk full',
    text: 'CannotPullContainerError: write /var/lib/docker/tmp/GetImageBlob111111111: no space left on device',
    first: 'disk-full',
  },
  {
    name: 'ECS register layer, disk full',
    text: 'CannotPullContainerError: failed to register layer: Error processing tar file(exit status 1): write /tmp/my_large_file: no space left on device',
    first: 'disk-full',
    fixes: ['ephemeralStorage'],
  },
  {
    name: 'ECS ApplyLayer failure',
    text: 'CannotPullContainerError: failed to register layer: ApplyLayer exit status 1 stdout: stderr:',
    first: 'disk-full',
  },

  // pull-timeout
  {
    name: 'ECS could not transition to pulled',
    text: 'DockerTimeoutError: Could not transition to pulled; timed out after waiting 2m0s',
    first: 'pull-timeout',
  },
  {
    name: 'ECS inactivity timeout',
    text: 'CannotPullContainerError: inactivity time exceeded timeout while pulling image 123456789012.dkr.ecr.us-east-1.amazonaws.com/big:2',
    first: 'pull-timeout',
  },
  {
    name: 'Batch pull timeout',
    text: 'CannotPullContainerError: timeout',
    first: 'pull-timeout',
  },

  {
    name: 'ECS cancels a slow layer download from the ECR layer bucket',
    text: 'CannotPullContainerError: ref pull has been retried 1 time(s): failed to copy: httpReadSeeker: failed open: failed to do request: Get "https://prod-us-east-1-starport-layer-bucket.s3.us-east-1.amazonaws.com/7e1f-111122223333-4c1b9e6a-4f1d-ae56-1c2b/3a4b5c6d-7e8f-4a9b-8c7d-6e5f4a3b2c1d": context canceled',
    first: 'network-s3-layers',
    also: ['pull-timeout'],
  },
  {
    name: 'kubelet cancels a Docker Hub layer download',
    text: `Failed to pull image "pytorch/pytorch:2.3.0-cuda12.1-cudnn8-runtime": rpc error: code = Canceled desc = failed to pull and unpack image "docker.io/pytorch/pytorch:2.3.0-cuda12.1-cudnn8-runtime": failed to copy: httpReadSeeker: failed open: failed to do request: Get "https://production.cloudflare.docker.com/registry-v2/docker/registry/v2/blobs/sha256/0b/${digest.slice(7)}/data?verify=1717000000-abc": context canceled`,
    first: 'pull-timeout',
    also: ['network-no-route'],
    fixes: ['ECS_IMAGE_PULL_TIMEOUT'],
  },

  // secrets-access
  {
    name: 'Copilot SSM parameter denied',
    text: 'ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secrets from ssm: service call has been retried 1 time(s): AccessDeniedException: User: arn:aws:sts::123456789012:assumed-role/app-test-svc-ExecutionRole-1ABC/0f1e2d3c is not authorized to perform: ssm:GetParameters on resource: arn:aws:ssm:us-west-2:123456789012:parameter/copilot/app/test/secrets/DB_PASSWORD because no identity-based policy allows the ssm:GetParameters action status code: 400, request id: 6f0e1d2c-3b4a-5968-7a8b-9c0d1e2f3a4b',
    first: 'secrets-access',
    evidence: {
      iamAction: 'ssm:GetParameters',
      parameterArns: ['arn:aws:ssm:us-west-2:123456789012:parameter/copilot/app/test/secrets/DB_PASSWORD'],
      sdkStatusCode: 400,
    },
    fixes: ['--role-name app-test-svc-ExecutionRole-1ABC', 'parameter/copilot/app/test/secrets/DB_PASSWORD'],
  },
  {
    name: 'Secrets Manager secret with a KMS key the role cannot use',
    text: 'ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secret from asm: service call has been retried 1 time(s): failed to fetch secret arn:aws:secretsmanager:eu-central-1:123456789012:secret:algo-dev-directus-secret20240626183203358800000004-EaPYTy from secrets manager: AccessDeniedException: Access to KMS is not allowed status code: 400, request id: a87a66d9-f839-4353-b8c2-9984b1465695',
    first: 'secrets-access',
    evidence: {
      secretArns: [
        'arn:aws:secretsmanager:eu-central-1:123456789012:secret:algo-dev-directus-secret20240626183203358800000004-EaPYTy',
      ],
      requestId: 'a87a66d9-f839-4353-b8c2-9984b1465695',
    },
    fixes: ['kms:Decrypt'],
  },
  {
    name: 'GetSecretValue denied',
    text: 'ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secret from asm: service call has been retried 1 time(s): failed to fetch secret arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf from secrets manager: AccessDeniedException: User: arn:aws:sts::123456789012:assumed-role/ecsTaskExecutionRole/1a2b3c is not authorized to perform: secretsmanager:GetSecretValue on resource: arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf because no identity-based policy allows the secretsmanager:GetSecretValue action status code: 400, request id: 0d9c8b7a-6f5e-4d3c-2b1a-0f9e8d7c6b5a',
    first: 'secrets-access',
    not: ['secrets-network'],
    fixes: [
      'secretsmanager:GetSecretValue',
      'arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf',
      '--role-name ecsTaskExecutionRole',
    ],
  },

  // secrets-not-found
  {
    name: 'Secret does not exist',
    text: "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secret from asm: service call has been retried 1 time(s): failed to fetch secret arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/api-key from secrets manager: ResourceNotFoundException: Secrets Manager can't find the specified secret. status code: 400, request id: 1b2c3d4e-5f6a-7b8c-9d0e-1f2a3b4c5d6e",
    first: 'secrets-not-found',
    fixes: ['arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/api-key'],
  },
  {
    name: 'SSM invalid parameters',
    text: 'ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secrets from ssm: service call has been retried 1 time(s): invalid parameters: /prod/app/DB_URL',
    first: 'secrets-not-found',
  },
  {
    name: 'Missing JSON key',
    text: 'ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secret from asm: service call has been retried 1 time(s): retrieved secret from Secrets Manager did not contain json key password',
    first: 'secrets-not-found',
    evidence: { jsonKey: 'password' },
    fixes: ['password'],
  },

  // secrets-network
  {
    name: 'Secrets Manager context deadline exceeded',
    text: 'ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secret from asm: service call has been retried 5 time(s): failed to fetch secret arn:aws:secretsmanager:us-west-2:*:secret:DBPasswordSecret-* from secrets manager: RequestCanceled: request context canceled caused by: context deadline exceeded. Please check your task network configuration.',
    first: 'secrets-network',
    not: ['network-no-route', 'pull-timeout'],
    evidence: { retries: 5, region: 'us-west-2' },
    fixes: ['com.amazonaws.us-west-2.secretsmanager'],
  },
  {
    name: 'Secrets Manager endpoint at a private address',
    text: 'ResourceInitializationError: unable to pull secrets or registry auth: unable to retrieve secret from asm: There is a connection issue between the task and AWS Secrets Manager. Check your task network configuration. operation error Secrets Manager: GetSecretValue, exceeded maximum number of attempts, 3, https response error StatusCode: 0, RequestID: , request send failed, Post "https://secretsmanager.us-east-1.amazonaws.com/": dial tcp 10.0.2.44:443: i/o timeout',
    first: 'secrets-network',
    not: ['network-no-route', 'network-vpc-endpoint'],
    evidence: { ipClass: 'private', sdkStatusCode: 0, sdkService: 'Secrets Manager' },
    fixes: ['10.0.2.44'],
  },
  {
    name: 'SSM connection issue',
    text: 'ResourceInitializationError: unable to pull secrets or registry auth: unable to retrieve secrets from ssm: There is a connection issue between the task and AWS Systems Manager Parameter Store. Check your task network configuration.',
    first: 'secrets-network',
    fixes: ['.ssm'],
  },

  // logs-access
  {
    name: 'CreateLogGroup denied',
    text: 'ResourceInitializationError: failed to validate logger args: create stream has been retried 1 times: failed to create Cloudwatch log group: AccessDeniedException: User: arn:aws:sts::123456789012:assumed-role/svc-ecs-task-execution-role/4f3e is not authorized to perform: logs:CreateLogGroup on resource: arn:aws:logs:eu-central-1:123456789012:log-group:/ecs/svc:log-stream: because no identity-based policy allows the logs:CreateLogGroup action : exit status 1',
    first: 'logs-access',
    evidence: { logGroup: '/ecs/svc', iamAction: 'logs:CreateLogGroup', retries: 1 },
    fixes: ['--role-name svc-ecs-task-execution-role', 'logs:CreateLogGroup', '/ecs/svc'],
  },
  {
    name: 'CreateLogStream denied',
    text: 'ResourceInitializationError: failed to validate logger args: create stream has been retried 1 times: failed to create Cloudwatch log stream: AccessDeniedException: User: arn:aws:sts::123456789012:assumed-role/ecs.task.minecraft-server/123456a999ee4b919 is not authorized to perform: logs:CreateLogStream on resource: arn:aws:logs:us-west-2:123456789012:log-group:/ecs/minecraft:log-stream:minecraft/abc',
    first: 'logs-access',
    evidence: { roleName: 'ecs.task.minecraft-server', logGroup: '/ecs/minecraft' },
  },

  // logs-group-missing
  {
    name: 'Docker log driver, log group missing',
    text: 'CannotStartContainerError: Error response from daemon: failed to initialize logging driver: failed to create Cloudwatch log stream: ResourceNotFoundException: The specified log group does not exist. status code: 400, request id: 7463029c-9f12-4e3f-b914-f1c2d3e4f5a6',
    first: 'logs-group-missing',
    not: ['secrets-not-found', 'image-not-found'],
  },
  {
    name: 'Fargate logger args, log group missing',
    text: 'ResourceInitializationError: failed to validate logger args: create stream has been retried 1 times: failed to create Cloudwatch log stream: ResourceNotFoundException: The specified log group does not exist. : exit status 1',
    first: 'logs-group-missing',
    fixes: ['awslogs-create-group'],
  },
  {
    name: 'ECS agent log, log group missing',
    text: 'API error (500): failed to initialize logging driver: ResourceNotFoundException: The specified log group does not exist.',
    first: 'logs-group-missing',
  },

  // logs-network
  {
    name: 'Fargate cannot reach CloudWatch',
    text: 'ResourceInitializationError: failed to validate logger args: The task cannot find the Amazon CloudWatch log group defined in the task definition. There is a connection issue between the task and Amazon CloudWatch. Check your network configuration. : signal: killed',
    first: 'logs-network',
    also: ['logs-group-missing'],
    not: ['network-no-route'],
  },
  {
    name: 'Logs endpoint timeout',
    text: 'ResourceInitializationError: failed to validate logger args: create stream has been retried 3 times: failed to create Cloudwatch log stream: RequestError: send request failed caused by: Post "https://logs.ap-southeast-2.amazonaws.com/": dial tcp 13.54.63.1:443: i/o timeout : exit status 1',
    first: 'logs-network',
    not: ['network-no-route'],
    evidence: { region: 'ap-southeast-2', retries: 3 },
    fixes: ['com.amazonaws.ap-southeast-2.logs'],
  },

  // unknown
  {
    name: 'Essential container exited',
    text: 'Essential container in task exited',
    first: 'unknown',
  },
  {
    name: 'Unrelated text with an image',
    text: 'Started container web from image "nginx:1.25"',
    first: 'unknown',
  },
];

function fixText(fixes: string[]): string {
  return fixes.join('\n');
}

describe('explain over real messages', () => {
  for (const row of rows) {
    test(`${row.first}: ${row.name}`, () => {
      const result = explain(row.text);
      const ids = result.causes.map((cause) => cause.id);
      assert.equal(ids[0], row.first, `causes were ${ids.join(', ')}`);
      for (const id of row.also ?? []) {
        assert.ok(ids.indexOf(id) > 0, `${id} should follow ${row.first}, causes were ${ids.join(', ')}`);
      }
      for (const id of row.not ?? [])
        assert.ok(!ids.includes(id), `${id} should not be reported: ${ids.join(', ')}`);
      for (const [key, value] of Object.entries(row.evidence ?? {})) {
        assert.deepEqual(result.extracted[key as keyof Extracted], value, `extracted.${key}`);
      }
      const first = result.causes[0];
      assert.ok(first);
      if (row.firstFix !== undefined) {
        assert.ok(
          first.fixes[0]?.includes(row.firstFix),
          `the first fix should contain ${row.firstFix}:\n${fixText(first.fixes)}`,
        );
      }
      for (const needle of row.notInFixes ?? []) {
        for (const cause of result.causes) {
          assert.ok(!fixText(cause.fixes).includes(needle), `${cause.id} fixes name ${needle}`);
        }
      }
      for (const needle of row.fixes ?? []) {
        assert.ok(
          fixText(first.fixes).includes(needle),
          `a fix should contain ${needle}:\n${fixText(first.fixes)}`,
        );
      }
    });
  }

  test('every catalogue id is hit first by at least two wordings', () => {
    for (const id of causeIds) {
      const count = rows.filter((row) => row.first === id).length;
      assert.ok(count >= 2, `${id} is the first cause of only ${count} rows`);
    }
  });

  test('the rows cover ECS, CodeBuild, Docker and Kubernetes wrappers', () => {
    const sources = new Set(rows.map((row) => explain(row.text).extracted.source));
    for (const source of ['ecs', 'codebuild', 'docker', 'kubernetes'] as const) {
      assert.ok(sources.has(source), `no row read as ${source}`);
    }
  });
});

describe('explain contract', () => {
  test('every cause has a catalogue id, a summary, a meaning, evidence and at least one fix', () => {
    for (const row of rows) {
      for (const cause of explain(row.text).causes) {
        assert.ok((causeIds as readonly string[]).includes(cause.id));
        assert.equal(typeof cause.summary, 'string');
        assert.ok(cause.summary.length > 0 && !cause.summary.includes('\n'));
        assert.ok(cause.meaning.length > 0);
        assert.equal(typeof cause.evidence, 'object');
        assert.ok(Array.isArray(cause.fixes) && cause.fixes.length > 0);
        assert.ok(['high', 'medium', 'low'].includes(cause.confidence));
        for (const value of Object.values(cause.evidence)) assert.notEqual(value, undefined);
      }
    }
  });

  test('the result is plain JSON and survives a round trip', () => {
    const result = explain(rows[0]!.text);
    assert.deepEqual(JSON.parse(JSON.stringify(result)), result);
  });

  test('empty and whitespace input give unknown with nothing extracted', () => {
    for (const text of ['', '   \n\t']) {
      const result = explain(text);
      assert.deepEqual(
        result.causes.map((cause) => cause.id),
        ['unknown'],
      );
      assert.deepEqual(result.extracted, {});
    }
  });

  test('unknown still shows what was extracted', () => {
    const result = explain(
      'something odd happened talking to https://registry.example.com/v2/ from 10.0.0.1',
    );
    assert.equal(result.causes[0]?.id, 'unknown');
    assert.deepEqual(result.causes[0]?.evidence.hosts, ['registry.example.com']);
  });

  test('StatusCode 0 is a transport failure, never an IAM cause', () => {
    const text =
      'unable to retrieve ecr registry auth: operation error ECR: GetAuthorizationToken, https response error StatusCode: 0, RequestID: , request send failed, Post "https://api.ecr.us-east-2.amazonaws.com/": dial tcp 3.33.140.2:443: i/o timeout';
    const ids = explain(text).causes.map((cause) => cause.id);
    assert.equal(ids[0], 'network-no-route');
    assert.ok(!ids.includes('auth-ecr-permission'));
    const token = explain(text).causes.find((cause) => cause.id === 'auth-ecr-token');
    assert.ok(token && token.confidence === 'low');
    assert.ok(!fixText(token.fixes).includes('put-role-policy'));
  });

  test('credentials and pre-signed URL tokens never reach the output', () => {
    const text =
      'Error response from daemon: Get "https://deploy:hunter2secret@registry.example.com/v2/app/manifests/1": unauthorized: authentication required; password=hunter2secret Get "https://prod-us-east-1-starport-layer-bucket.s3.us-east-1.amazonaws.com/a?X-Amz-Signature=abcdef0123&X-Amz-Credential=ASIAEXAMPLE": unexpected EOF';
    const serialised = JSON.stringify(explain(text));
    assert.ok(!serialised.includes('hunter2secret'));
    assert.ok(!serialised.includes('abcdef0123'));
    assert.ok(!serialised.includes('ASIAEXAMPLE'));
  });

  test('the user-supplied S3 table replaces the embedded one', () => {
    const text =
      'CannotPullContainerError: ref pull has been retried 1 time(s): failed to copy: httpReadSeeker: failed open: failed to do request: Get "https://example.invalid/layer": dial tcp 198.51.100.7:443: i/o timeout';
    assert.equal(explain(text).extracted.ipClass, 'public');
    const withRanges = explain(text, { s3Ranges: [{ prefix: '198.51.100.0/24', region: 'eu-north-1' }] });
    assert.equal(withRanges.extracted.ipClass, 'amazon-s3');
    assert.equal(withRanges.extracted.region, 'eu-north-1');
    assert.equal(withRanges.causes[0]?.id, 'network-s3-layers');
  });

  test('wrappers are stripped from the message and kept as evidence', () => {
    const result = explain(
      'CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref docker.io/library/python:3.12-slim: unexpected status from HEAD request to https://registry-1.docker.io/v2/library/python/manifests/3.12-slim: 429 Too Many Requests',
    );
    assert.ok(!result.message.includes('CannotPullContainerError'));
    assert.ok(!result.message.includes('has been retried'));
    assert.ok(result.message.startsWith('failed to resolve ref'));
    assert.equal(result.extracted.retries, 5);
    assert.deepEqual(result.extracted.wrappers, ['ecs-error-name', 'retried']);
  });
});

describe('what is shown of a long input', () => {
  const rateLimited =
    'toomanyrequests: You have reached your pull rate limit. You may increase the limit by authenticating and upgrading: https://www.docker.com/increase-rate-limit';

  test('a 6 MB build log gives its evidence lines, not its whole text', () => {
    const lines = [
      '[Container] 2024/05/14 10:01:58.117266 Running on CodeBuild On-demand',
      '[Container] 2024/05/14 10:02:01.324845 Running command docker build -t app:latest .',
      'Sending build context to Docker daemon  15.36kB',
    ];
    for (let i = 0; lines.length < 75_000; i++) {
      lines.push(`npm http fetch GET 200 https://registry.npmjs.org/package-${i} 12ms (cache miss)`);
    }
    lines.push('Step 1/9 : FROM python:3.11-slim', rateLimited);
    lines.push('[Container] 2024/05/14 10:02:03.550113 Phase complete: BUILD State: FAILED');
    const text = lines.join('\n');
    assert.ok(text.length > 6_000_000);
    const result = explain(text);
    assert.equal(result.causes[0]?.id, 'rate-limit');
    assert.equal(result.extracted.image, 'python:3.11-slim');
    assert.deepEqual(result.lines, ['Step 1/9 : FROM python:3.11-slim', rateLimited]);
    assert.equal(result.inputLines, lines.length);
    assert.ok(result.message.length < 400, result.message);
    assert.ok(JSON.stringify(result).length < 20_000);
  });

  test('at most the last evidenceLineLimit lines, each cut to evidenceLineLength with its end kept', () => {
    const lines = Array.from(
      { length: 40 },
      (_, i) => `Error response from daemon: ${rateLimited} ${'x'.repeat(5000)} attempt-${i}`,
    );
    const result = explain(lines.join('\n'));
    assert.equal(result.lines.length, evidenceLineLimit);
    for (const line of result.lines) {
      assert.ok(line.length <= evidenceLineLength, `${line.length} characters`);
      assert.ok(line.startsWith('Error response from daemon: toomanyrequests'));
    }
    assert.ok(result.lines.at(-1)?.endsWith('attempt-39'));
    assert.ok(result.message.length <= evidenceLineLimit * evidenceLineLength);
  });

  test('evidence lists keep their first 20 entries, however many the log names', () => {
    const text = Array.from(
      { length: 5000 },
      (_, i) =>
        `Error response from daemon: Get "https://registry-${i}.example.com/v2/": dial tcp 203.0.113.${i % 250}:443: i/o timeout`,
    ).join('\n');
    const result = explain(text);
    assert.equal(result.extracted.hosts?.length, 20);
    assert.equal(result.extracted.hosts?.[0], 'registry-0.example.com');
    assert.ok(JSON.stringify(result).length < 20_000);
  });

  test('a repeated line is shown once', () => {
    const event =
      'Warning  Failed  12s (x6 over 2m)  kubelet  Failed to pull image "nginx:1.27": rpc error: code = Unknown desc = failed to pull and unpack image "docker.io/library/nginx:1.27": 429 Too Many Requests';
    const result = explain([event, event, '  ', event].join('\n'));
    assert.deepEqual(result.lines, [event]);
    assert.equal(result.inputLines, 4);
  });

  test('an input no wording matches shows its last three lines', () => {
    const result = explain(['starting', 'step one', 'step two', 'step three', 'the end'].join('\n'));
    assert.equal(result.causes[0]?.id, 'unknown');
    assert.deepEqual(result.lines, ['step two', 'step three', 'the end']);
  });

  test('a one-line message is its own evidence line, and message is its core', () => {
    const text =
      'CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref docker.io/library/python:3.12-slim: unexpected status from HEAD request to https://registry-1.docker.io/v2/library/python/manifests/3.12-slim: 429 Too Many Requests';
    const result = explain(text);
    assert.deepEqual(result.lines, [text]);
    assert.equal(result.inputLines, 1);
    assert.ok(result.message.startsWith('failed to resolve ref docker.io/library/python:3.12-slim'));
  });

  test('a build that failed after its FROM step does not blame the base image', () => {
    const result = explain(
      [
        'Step 1/4 : FROM node:20',
        ' ---> 1a2b3c4d5e6f',
        'Step 2/4 : RUN docker pull registry.example.com/tools/lint:3',
        'Error response from daemon: Get "https://registry.example.com/v2/": net/http: TLS handshake timeout',
      ].join('\n'),
    );
    assert.equal(result.extracted.dockerBuild, undefined);
    assert.notEqual(result.extracted.image, 'node:20');
    assert.equal(result.causes[0]?.id, 'network-tls');
  });
});

describe('fixes name only what pullsafe has', () => {
  const mainPath = fileURLToPath(new URL('../cli/main.ts', import.meta.url));
  const sources = ['explain.ts', 'catalogue.ts', 'evidence.ts'].map((file) =>
    readFileSync(new URL(`./${file}`, import.meta.url), 'utf8'),
  );
  const extraMessages = [
    'exec /usr/local/bin/docker-entrypoint.sh: exec format error',
    'something nobody has seen before',
  ];
  const fixes = [...rows.map((row) => row.text), ...extraMessages].flatMap((text) =>
    explain(text).causes.flatMap((cause) => cause.fixes),
  );

  test('a pullsafe command in a fix is always written as code', () => {
    for (const fix of fixes) assert.doesNotMatch(fix, /(?<!`)\bpullsafe\s+[a-z]/, fix);
  });

  test("a Docker Hub rate limit is offered pullsafe's pull-through cache, set up the way the puller takes it", () => {
    const cases = [
      [
        'Failed to pull image "nginx:1.27": rpc error: code = Unknown desc = failed to pull and unpack image "docker.io/library/nginx:1.27": failed to copy: httpReadSeeker: failed open: unexpected status code https://registry-1.docker.io/v2/library/nginx/manifests/sha256:abc: 429 Too Many Requests - Server message: toomanyrequests: You have reached your pull rate limit.',
        'pullsafe client-config --endpoint',
      ],
      [
        'CannotPullContainerError: inspect image has been retried 1 time(s): httpReaderSeeker: failed open: unexpected status code https://registry-1.docker.io/v2/library/redis/manifests/7.2: 429 Too Many Requests - Server message: toomanyrequests: You have reached your pull rate limit.',
        'pullsafe rewrite --to-cache http://CACHE:5000` turns docker.io/library/redis:7.2',
      ],
    ] as const;
    for (const [message, expected] of cases) {
      const fixes = explain(message).causes.find((cause) => cause.id === 'rate-limit')?.fixes ?? [];
      assert.ok(
        fixes.some((fix) => fix.includes('`pullsafe serve --proxy docker.io')),
        message,
      );
      assert.ok(
        fixes.some((fix) => fix.includes(expected)),
        `${message}: ${fixes.join('\n')}`,
      );
    }
  });

  test('every pullsafe command and flag named in a fix runs: `<command> --help` exits 0 and lists the flag', () => {
    const named = new Map<string, Set<string>>();
    const note = (command: string, flags: string[] = []) => {
      const known = named.get(command) ?? new Set<string>();
      for (const flag of flags) known.add(flag);
      named.set(command, known);
    };
    for (const fix of fixes) {
      for (const match of fix.matchAll(/`pullsafe ([^`]*)`/g)) {
        const [command, ...words] = (match[1] ?? '').trim().split(/\s+/);
        if (command)
          note(
            command,
            words.filter((word) => /^--?[a-z]/.test(word)).map((word) => word.split('=')[0] ?? word),
          );
      }
    }
    // Branches the rows do not reach are still tied to a command: every `pullsafe <command>` in the sources.
    for (const source of sources) {
      for (const match of source.matchAll(/`pullsafe ([a-z][a-z-]*)/g)) note(match[1] ?? '');
    }
    for (const expected of ['copy', 'sync', 'inspect', 'ratelimit', 'rewrite', 'doctor']) {
      assert.ok(named.has(expected), `no fix names pullsafe ${expected}: the parse above is broken`);
    }
    const help = (command: string) =>
      spawnSync(process.execPath, [mainPath, command, '--help'], { encoding: 'utf8', timeout: 30_000 });
    for (const [command, flags] of named) {
      const result = help(command);
      assert.equal(result.status, 0, `pullsafe ${command} --help: ${result.stderr}`);
      assert.match(
        result.stdout,
        new RegExp(`^Usage: pullsafe ${command} `),
        `pullsafe has no command ${command}`,
      );
      for (const flag of flags) {
        assert.match(
          result.stdout,
          new RegExp(`(?:^|[\\s,])${flag}\\b`, 'm'),
          `pullsafe ${command} has no ${flag}`,
        );
      }
    }
    // Commander answers `<unknown> --help` with the program's help and 0: the usage line is what tells.
    assert.doesNotMatch(
      help('mirror').stdout,
      /^Usage: pullsafe mirror /,
      'an unknown command must fail this check',
    );
  });
});
