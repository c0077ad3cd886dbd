/**
 * VPC endpoint policies on the pull path: an S3 gateway endpoint whose policy does not allow the ECR layer
 * bucket (`prod-<region>-starport-layer-bucket`), or an ECR interface endpoint whose policy denies the
 * pulling role. The manifest then arrives and the layers (or the token) are refused with 403.
 */
import { evaluateResource, formatStatementRef, parsePolicyDocument } from '../iam-eval.ts';
import { ecrRepositoryArn } from '../images.ts';
import { arnAccount, partitionOf } from '../../shared/arn.ts';
import type { VpcEndpoint } from '@aws-sdk/client-ec2';
import type { Check, Facts, Finding, ImageFacts, PolicyDocument } from '../types.ts';

function parse(text: string | undefined): PolicyDocument | undefined {
  if (!text) return undefined;
  try {
    return parsePolicyDocument(text);
  } catch {
    return undefined;
  }
}

/** The principal a request is evaluated as: the pulling role, when it was read. */
interface Principal {
  principalArn?: string;
  principalAccount?: string;
}

export const endpointPolicyCheck: Check = (facts) => {
  const network = facts.network;
  if (!network || network.endpoints.state !== 'found' || network.routeTables.state !== 'found') return [];
  const role = facts.pullRole?.state === 'found' ? facts.pullRole.value : undefined;
  const principalArn = role?.arn;
  const principalAccount = arnAccount(principalArn);
  const principal: Principal = {
    ...(principalArn ? { principalArn } : {}),
    ...(principalAccount ? { principalAccount } : {}),
  };
  const endpoints = network.endpoints.value;
  const taskTables = new Set(network.routeTables.value.map((t) => t.RouteTableId));
  const gateways = endpoints.filter(
    (endpoint) =>
      endpoint.VpcEndpointType === 'Gateway' &&
      endpoint.ServiceName?.endsWith('.s3') &&
      (endpoint.RouteTableIds ?? []).some((id) => taskTables.has(id)),
  );
  return [
    ...(facts.needs.s3Layers
      ? gateways.flatMap((gateway) => layerBucketFindings(facts, gateway, principal))
      : []),
    ...facts.images.flatMap((image) =>
      endpoints.flatMap((endpoint) => ecrEndpointFindings(facts, image, endpoint, principal)),
    ),
  ];
};

/** An S3 gateway endpoint on the task's route tables must let the ECR layer bucket through. */
function layerBucketFindings(facts: Facts, endpoint: VpcEndpoint, principal: Principal): Finding[] {
  const document = parse(endpoint.PolicyDocument);
  if (!document) return [];
  const bucket = `prod-${facts.region}-starport-layer-bucket`;
  const resource = `arn:${partitionOf(facts.region)}:s3:::${bucket}/*`;
  const decision = evaluateResource(
    { name: `vpc-endpoint:${endpoint.VpcEndpointId}`, kind: 'endpoint', document },
    { action: 's3:GetObject', resource, ...principal },
  );
  if (decision.decision === 'allowed') return [];
  const uncertain = decision.decision === 'implicit-deny' && decision.undecided.length > 0;
  const statement = {
    Sid: 'AllowEcrLayers',
    Effect: 'Allow',
    Principal: '*',
    Action: ['s3:GetObject'],
    Resource: [resource],
  };
  return [
    {
      id: 's3-endpoint-policy-blocks-layers',
      cause: 'network-s3-layers',
      hop: 'layers',
      severity: uncertain ? 'warning' : 'error',
      certainty: uncertain ? 'possible' : 'certain',
      title: `the policy of S3 gateway endpoint ${endpoint.VpcEndpointId} does not allow the ECR layer bucket`,
      detail: `Image layers come from ${bucket}; the endpoint policy ${decision.decision === 'explicit-deny' ? 'denies' : 'does not allow'} s3:GetObject on it${principal.principalArn ? ` for ${principal.principalArn}` : ''}, so layer downloads get 403 after the manifest succeeded.`,
      evidence: [
        { label: 'endpoint', value: endpoint.VpcEndpointId ?? '' },
        { label: 'resource', value: resource },
        ...decision.deniedBy.map((ref) => ({ label: 'denied by', value: formatStatementRef(ref) })),
        ...decision.undecided.map((ref) => ({
          label: 'condition not decidable',
          value: formatStatementRef(ref),
        })),
      ],
      fixes: [
        {
          kind: 'iam-policy',
          summary: `add this statement to the endpoint policy of ${endpoint.VpcEndpointId}`,
          content: JSON.stringify(statement, null, 2),
        },
        {
          kind: 'aws-cli',
          summary:
            'after merging it into the current policy (aws ec2 describe-vpc-endpoints shows it), apply it',
          content: `aws ec2 modify-vpc-endpoint --vpc-endpoint-id ${endpoint.VpcEndpointId} --region ${facts.region} --policy-document file://endpoint-policy.json`,
        },
      ],
    },
  ];
}

/** An ECR interface endpoint the image's pull goes through must allow the token and the image calls. */
function ecrEndpointFindings(
  facts: Facts,
  image: ImageFacts,
  endpoint: VpcEndpoint,
  principal: Principal,
): Finding[] {
  const ecr = image.ecr;
  if (!ecr || ecr.region !== facts.region || !image.repository) return [];
  if (endpoint.VpcEndpointType !== 'Interface' || !endpoint.PrivateDnsEnabled) return [];
  const document = parse(endpoint.PolicyDocument);
  if (!document) return [];
  const repositoryArn = ecrRepositoryArn(ecr.registryId, ecr.region, image.repository);
  const checks = [
    { service: 'ecr.api', action: 'ecr:GetAuthorizationToken', resource: '*' },
    { service: 'ecr.dkr', action: 'ecr:BatchGetImage', resource: repositoryArn },
    { service: 'ecr.dkr', action: 'ecr:GetDownloadUrlForLayer', resource: repositoryArn },
  ];
  const denied = checks.filter(
    (c) =>
      endpoint.ServiceName === `com.amazonaws.${facts.region}.${c.service}` &&
      evaluateResource(
        { name: `vpc-endpoint:${endpoint.VpcEndpointId}`, kind: 'endpoint', document },
        { action: c.action, resource: c.resource, ...principal },
      ).decision !== 'allowed',
  );
  if (denied.length === 0) return [];
  const principalArn = principal.principalArn;
  return [
    {
      id: 'ecr-endpoint-policy-denies',
      cause: 'auth-ecr-permission',
      hop: denied.some((c) => c.service === 'ecr.api') ? 'registry-auth' : 'manifest',
      severity: 'error',
      certainty: 'certain',
      title: `the policy of endpoint ${endpoint.VpcEndpointId} (${endpoint.ServiceName}) blocks the pull`,
      detail: `The endpoint policy does not allow ${denied.map((c) => c.action).join(', ')}${principalArn ? ` for ${principalArn}` : ''} on ${image.repository}.`,
      evidence: [
        { label: 'endpoint', value: endpoint.VpcEndpointId ?? '' },
        { label: 'image', value: image.reference },
        ...denied.map((c) => ({ label: c.action, value: `not allowed on ${c.resource}` })),
      ],
      fixes: [
        {
          kind: 'iam-policy',
          summary: `add this statement to the endpoint policy of ${endpoint.VpcEndpointId}`,
          content: JSON.stringify(
            {
              Sid: 'AllowImagePulls',
              Effect: 'Allow',
              Principal: principalArn ? { AWS: principalArn } : '*',
              Action: denied.map((c) => c.action),
              Resource: [...new Set(denied.map((c) => c.resource))],
            },
            null,
            2,
          ),
        },
      ],
    },
  ];
}
