/** Getting in: the ECR token, ECR permissions, registry credentials (`auth-*`). */
import { wording } from '../wording.ts';
import { make, type Candidate, type Context } from './detector.ts';
import {
  common,
  credentialsFix,
  deniedFixes,
  ecrRepositoryName,
  iamEvidence,
  imageLabel,
  isInstanceRole,
  pullThroughLibraryTrap,
  pullerOf,
  putRolePolicy,
  regionOf,
  repositoryArn,
  roleOf,
} from './fixes.ts';

export function ecrToken(ctx: Context): Candidate[] {
  const { text, x } = ctx;
  if (!ctx.ecrAuth && x.iamAction !== 'ecr:GetAuthorizationToken') return [];
  const denied =
    x.iamAction === 'ecr:GetAuthorizationToken' ||
    (/GetAuthorizationToken/.test(text) && /AccessDenied/.test(text) && x.sdkStatusCode !== 0);
  if (denied) {
    const role = roleOf(x);
    const fixes =
      x.deniedBy && x.deniedBy !== 'identity-based'
        ? deniedFixes(x, 'ecr:GetAuthorizationToken', '*', 'ecr')
        : [
            `allow ecr:GetAuthorizationToken on "*" (it has no resource-level permissions) to role ${role}: ${putRolePolicy(role, 'pullsafe-ecr-token', { Effect: 'Allow', Action: ['ecr:GetAuthorizationToken'], Resource: '*' })}`,
          ];
    fixes.push(
      isInstanceRole(x)
        ? `role ${role} is the container instance role (session ${x.roleSession}): on EC2 it pulls; attach AmazonEC2ContainerServiceforEC2Role or AmazonEC2ContainerRegistryReadOnly`
        : `or attach the managed policy: \`aws iam attach-role-policy --role-name ${role} --policy-arn arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy\``,
    );
    return [
      make(
        'auth-ecr-token',
        20,
        'high',
        `Role ${role} may not call ecr:GetAuthorizationToken`,
        'ECR refused the token call: a definite answer',
        { ...iamEvidence(x), iamAction: 'ecr:GetAuthorizationToken', region: x.region },
        fixes,
      ),
    ];
  }
  if (!wording.ecrAuth.test(text)) return [];
  return [
    make(
      'auth-ecr-token',
      70,
      ctx.transport ? 'low' : 'medium',
      `The ECR authorization token could not be fetched${x.region ? ` in ${x.region}` : ''}`,
      ctx.transport
        ? 'the token call never got an answer: the network cause above is the real one'
        : 'the token step failed without a reason in the message',
      { ...common(x), sdkStatusCode: x.sdkStatusCode, requestId: x.requestId },
      ctx.transport
        ? [
            `fix the network path to api.ecr.${regionOf(x)}.amazonaws.com first (see the cause above); the role's permissions are not in question yet`,
          ]
        : [
            `check that the pull role has ecr:GetAuthorizationToken on "*" and that api.ecr.${regionOf(x)}.amazonaws.com is reachable`,
          ],
    ),
  ];
}

export function ecrPermission({ text, x }: Context): Candidate[] {
  const action =
    x.iamAction?.startsWith('ecr:') && x.iamAction !== 'ecr:GetAuthorizationToken' ? x.iamAction : undefined;
  const forbiddenOnEcr = x.httpStatus === 403 && /\.dkr\.ecr\./.test(text);
  if (!action && !forbiddenOnEcr) return [];
  if (/ecr:(BatchImportUpstreamImage|CreateRepository)/.test(text) && !action) return [];
  const trap = pullThroughLibraryTrap(x);
  const role = roleOf(x);
  const resource = repositoryArn(x);
  const fixes: string[] = [];
  if (action) fixes.push(...deniedFixes(x, action, resource, 'ecr'));
  else {
    fixes.push(
      `allow the pull actions to role ${role}: ${putRolePolicy(role, 'pullsafe-ecr-pull', { Effect: 'Allow', Action: ['ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchCheckLayerAvailability'], Resource: resource })}`,
    );
    fixes.push(
      `for a cross-account repository, its repository policy must allow the pulling role too (\`aws ecr get-repository-policy --repository-name ${ecrRepositoryName(x) ?? '<repository>'} --region ${regionOf(x)}\`)`,
    );
  }
  if (/pull-through|upstream|docker-hub|ecr-public/.test(x.repository ?? '') || trap) {
    fixes.push(
      `pull-through cache: the first pull also needs ecr:BatchImportUpstreamImage and ecr:CreateRepository for role ${role}`,
    );
  }
  if (trap)
    fixes.unshift(
      `official Docker Hub images need the library/ segment behind the pull-through prefix: use ${trap}`,
    );
  fixes.push(
    'the full set a pull needs: ecr:GetAuthorizationToken ("*"), ecr:BatchCheckLayerAvailability, ecr:GetDownloadUrlForLayer, ecr:BatchGetImage (all in AmazonECSTaskExecutionRolePolicy)',
  );
  if (isInstanceRole(x))
    fixes.push(
      `role ${role} is the container instance role (session ${x.roleSession}): on the EC2 launch type it pulls, not the execution role`,
    );
  return [
    make(
      'auth-ecr-permission',
      trap ? 25 : 20,
      action ? 'high' : 'medium',
      action
        ? `Role ${role} may not call ${action} on ${ecrRepositoryName(x) ?? resource}${x.deniedBy ? ` (denied by ${x.deniedBy.replace(/-/g, ' ')} policy)` : ''}`
        : `ECR answered 403 Forbidden for ${imageLabel(x)}`,
      action
        ? 'ECR named the denied action: a definite answer'
        : '403 from an ECR host means a policy denied the pull',
      { ...common(x), ...iamEvidence(x), repository: ecrRepositoryName(x), httpStatus: x.httpStatus },
      fixes,
    ),
  ];
}

export function registryCredentials({ text, x }: Context): Candidate[] {
  const strong = wording.credentials.test(text);
  const weak = wording.credentialsWeak.test(text) && !x.iamAction;
  if (!strong && !weak) return [];
  const ecr = x.registry ? /\.dkr\.ecr\./.test(x.registry) : false;
  const puller = pullerOf(x);
  const fixes: string[] = [];
  if (ecr) {
    const login = `\`aws ecr get-login-password --region ${regionOf(x)} | docker login --username AWS --password-stdin ${x.registry}\``;
    switch (puller) {
      case 'ecs':
        fixes.push(
          `the ECS agent logs in to ECR with the pull role (the execution role; on EC2 without one, the container instance role): check it may call ecr:GetAuthorizationToken; by hand: ${login}`,
        );
        break;
      case 'codebuild-environment':
        fixes.push(
          "set the project's `imagePullCredentialsType: SERVICE_ROLE` and allow the service role to pull from the repository (ecr:GetAuthorizationToken, ecr:BatchGetImage, ecr:GetDownloadUrlForLayer, ecr:BatchCheckLayerAvailability)",
        );
        break;
      case 'kubernetes':
        fixes.push(
          "on EKS the kubelet logs in to ECR with the node's role: attach AmazonEC2ContainerRegistryReadOnly to it; elsewhere, a pull secret refreshed every 12 hours (`imagePullSecrets`)",
        );
        break;
      default:
        fixes.push(
          `log in to ECR before pulling${puller === 'codebuild-buildspec' ? ' (a buildspec pre_build command)' : ''}: ${login}`,
        );
    }
  } else {
    fixes.push(credentialsFix(x, puller));
    if (puller === 'ecs')
      fixes.push(
        'for a customer-managed KMS key on the secret, the execution role also needs kms:Decrypt on it',
      );
  }
  if (/expired/.test(text))
    fixes.unshift('the token expired: refresh it (ECR tokens last 12 hours) and retry');
  if (/unmarshal secret value of authorization data/.test(text)) {
    const secret = x.secretArns?.[0] ?? '<secret-arn>';
    fixes.unshift(
      `the secret's value is not the JSON ECS reads: store it as \`{"username":"…","password":"…"}\` (\`aws secretsmanager put-secret-value --secret-id ${secret} --secret-string '{"username":"USER","password":"TOKEN"}'\`)`,
    );
  }
  return [
    make(
      'auth-registry-credentials',
      strong ? 25 : 35,
      strong ? 'high' : 'low',
      `${x.registry ?? 'The registry'} refused the credentials for ${imageLabel(x)}`,
      strong
        ? 'the registry answered that the credentials are missing or wrong'
        : 'a private repository answers like a missing one until you log in',
      { ...common(x), httpStatus: x.httpStatus, secretArns: x.secretArns },
      fixes,
    ),
  ];
}
