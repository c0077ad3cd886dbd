/**
 * Permissions: is every action this workload needs allowed to the role that needs it, and, for another
 * account's repository, does the repository policy let that role in? The simulator's answer is used when
 * doctor could call it; otherwise the fetched policy documents are evaluated. Each finding names the role,
 * the missing actions, the resource, the statement that denies (if one does) and the policy to add.
 */
import {
  combineDecisions,
  evaluateIdentity,
  evaluateResource,
  formatStatementRef,
  type AccessDecision,
} from '../iam-eval.ts';
import { arnAccount } from '../../shared/arn.ts';
import { compileGlob } from '../../shared/glob.ts';
import { ECR_PULL_ACTIONS, ecrRepositoryArn } from '../images.ts';
import { executionRequirements, pullRoleRequirements, type Requirement } from '../requirements.ts';
import type {
  CallFailure,
  Check,
  Evidence,
  Finding,
  Fix,
  Hop,
  ImageFacts,
  Lookup,
  PolicyDocument,
  RoleFacts,
} from '../types.ts';

interface Verdict {
  requirement: Requirement;
  decision: 'allowed' | 'implicit-deny' | 'explicit-deny' | 'undecided';
  /** Statements that decided it (deny) or could not be decided (conditions). */
  statements: string[];
  source: 'simulation' | 'policies';
}

interface Group {
  id: string;
  cause: string;
  hop: Hop;
  title: (role: string) => string;
}

function groupOf(action: string, workload: 'task' | 'build'): Group {
  if (action === 'ecr:GetAuthorizationToken') {
    return {
      id: 'role-no-ecr-auth-token',
      cause: 'auth-ecr-token',
      hop: 'registry-auth',
      title: (r) => `${r} may not call ecr:GetAuthorizationToken`,
    };
  }
  if (action === 'ecr:BatchImportUpstreamImage' || action === 'ecr:CreateRepository') {
    return {
      id: 'role-no-pull-through',
      cause: 'auth-ecr-permission',
      hop: 'manifest',
      title: (r) => `${r} may not fill the ECR pull-through cache`,
    };
  }
  if (action === 'ecr:GetDownloadUrlForLayer' || action === 'ecr:BatchCheckLayerAvailability') {
    return {
      id: 'role-no-ecr-pull',
      cause: 'auth-ecr-permission',
      hop: 'layers',
      title: (r) => `${r} may not download image layers`,
    };
  }
  if (action.startsWith('ecr:')) {
    return {
      id: 'role-no-ecr-pull',
      cause: 'auth-ecr-permission',
      hop: 'manifest',
      title: (r) => `${r} may not pull from ECR`,
    };
  }
  if (action === 'kms:Decrypt') {
    return {
      id: 'role-no-kms-decrypt',
      cause: 'secrets-access',
      hop: 'secrets',
      title: (r) => `${r} may not decrypt with the secret's KMS key`,
    };
  }
  if (action.startsWith('secretsmanager:') || action.startsWith('ssm:')) {
    return {
      id: 'role-no-secret-access',
      cause: 'secrets-access',
      hop: 'secrets',
      title: (r) => `${r} may not read the ${workload}'s secrets`,
    };
  }
  if (action === 'logs:CreateLogGroup') {
    return {
      id: 'role-no-create-log-group',
      cause: 'logs-access',
      hop: 'logs',
      title: (r) => `${r} may not create the log group (awslogs-create-group=true)`,
    };
  }
  return {
    id: 'role-no-logs',
    cause: 'logs-access',
    hop: 'logs',
    title: (r) => `${r} may not write to CloudWatch Logs`,
  };
}

function judge(role: RoleFacts, requirements: Requirement[]): Verdict[] | undefined {
  if (role.simulation?.state === 'found' && role.simulation.value.length > 0) {
    const answers = role.simulation.value;
    return requirements.map((requirement) => {
      const answer = answers.find(
        (a) =>
          a.action.toLowerCase() === requirement.action.toLowerCase() &&
          (a.resource === requirement.resource || a.resource === '*'),
      );
      if (!answer) return { requirement, decision: 'undecided', statements: [], source: 'simulation' };
      if (answer.decision === 'implicitDeny' && answer.missingContext?.length) {
        return {
          requirement,
          decision: 'undecided',
          statements: answer.missingContext.map((key) => `needs condition key ${key}`),
          source: 'simulation',
        };
      }
      return {
        requirement,
        decision:
          answer.decision === 'allowed'
            ? 'allowed'
            : answer.decision === 'explicitDeny'
              ? 'explicit-deny'
              : 'implicit-deny',
        statements: answer.matchedStatements,
        source: 'simulation',
      };
    });
  }
  if (role.policies.state !== 'found') return undefined;
  const policies = role.policies.value;
  const boundary = role.permissionsBoundary?.state === 'found' ? role.permissionsBoundary.value : undefined;
  return requirements.map((requirement) => {
    const decision = evaluateIdentity(
      policies,
      { action: requirement.action, resource: requirement.resource, principalArn: role.arn },
      boundary,
    );
    return fromDecision(requirement, decision);
  });
}

function fromDecision(requirement: Requirement, decision: AccessDecision): Verdict {
  if (
    decision.decision === 'implicit-deny' &&
    decision.missingAllowFrom.includes('boundary') &&
    !decision.missingAllowFrom.includes('identity')
  ) {
    return {
      requirement,
      decision: 'implicit-deny',
      statements: ['the permissions boundary does not allow it'],
      source: 'policies',
    };
  }
  if (decision.decision === 'explicit-deny') {
    return {
      requirement,
      decision: 'explicit-deny',
      statements: decision.deniedBy.map(formatStatementRef),
      source: 'policies',
    };
  }
  if (decision.decision === 'allowed')
    return { requirement, decision: 'allowed', statements: [], source: 'policies' };
  if (decision.undecided.length > 0) {
    return {
      requirement,
      decision: 'undecided',
      statements: decision.undecided.map(formatStatementRef),
      source: 'policies',
    };
  }
  return { requirement, decision: 'implicit-deny', statements: [], source: 'policies' };
}

/** A policy that grants exactly the given actions on the given resources. */
export function grantPolicy(sid: string, requirements: Requirement[]): string {
  const byResource = new Map<string, Set<string>>();
  for (const r of requirements) {
    const actions = byResource.get(r.resource) ?? new Set<string>();
    actions.add(r.action);
    byResource.set(r.resource, actions);
  }
  const statements = [...byResource].map(([resource, actions], index) => ({
    Sid: byResource.size === 1 ? sid : `${sid}${index + 1}`,
    Effect: 'Allow',
    Action: [...actions].sort(),
    Resource: resource,
  }));
  return JSON.stringify({ Version: '2012-10-17', Statement: statements }, null, 2);
}

/**
 * Resources the role's own Allow statements grant `action` on: when the needed one is not among them, they
 * show where a statement meant for it points instead (another secret, a name without its random suffix).
 */
function allowedElsewhere(role: RoleFacts, action: string): string[] {
  if (role.policies.state !== 'found') return [];
  const resources = new Set<string>();
  for (const policy of role.policies.value) {
    const statement = policy.document.Statement;
    for (const entry of Array.isArray(statement) ? statement : [statement]) {
      if (entry.Effect !== 'Allow' || entry.Action === undefined) continue;
      const actions = Array.isArray(entry.Action) ? entry.Action : [entry.Action];
      if (!actions.some((pattern) => compileGlob(pattern, { kind: 'flat', ignoreCase: true }).test(action))) {
        continue;
      }
      const listed = entry.Resource === undefined ? [] : [entry.Resource].flat();
      for (const resource of listed) if (resource !== '*') resources.add(resource);
    }
  }
  return [...resources];
}

const secretActions = new Set(['secretsmanager:GetSecretValue', 'ssm:GetParameters', 'kms:Decrypt']);

function roleFindings(
  lookup: Lookup<RoleFacts> | undefined,
  label: string,
  requirements: Requirement[],
  workload: 'task' | 'build' = 'task',
): Finding[] {
  if (requirements.length === 0 || !lookup) return [];
  if (lookup.state === 'failed') return [unreadableRole(lookup.failure, label)];
  if (lookup.state === 'missing') return [missingRole(lookup.detail, label, requirements, workload)];
  const role = lookup.value;
  const verdicts = judge(role, requirements);
  if (!verdicts) return [unjudgedRole(role)];
  const groups = new Map<string, { group: Group; verdicts: Verdict[] }>();
  for (const verdict of verdicts) {
    if (verdict.decision === 'allowed') continue;
    const group = groupOf(verdict.requirement.action, workload);
    const entry = groups.get(group.id) ?? { group, verdicts: [] };
    entry.verdicts.push(verdict);
    groups.set(group.id, entry);
  }
  return [...groups.values()].map(({ group, verdicts: denied }) => deniedFinding(role, label, group, denied));
}

function unreadableRole(failure: CallFailure, label: string): Finding {
  return {
    id: 'role-unchecked',
    cause: 'unknown',
    hop: 'registry-auth',
    severity: 'unchecked',
    certainty: 'possible',
    title: `could not read the ${label}`,
    detail: `${failure.service}:${failure.operation} failed (${failure.code}), so its permissions were not checked.`,
    evidence: [{ label: 'error', value: failure.message }],
    fixes: [
      {
        kind: 'text',
        summary: `allow the identity running doctor ${failure.service}:${failure.operation} (docs/doctor.md lists the read-only policy)`,
      },
    ],
  };
}

function missingRole(
  detail: string,
  label: string,
  requirements: Requirement[],
  workload: 'task' | 'build',
): Finding {
  return {
    id: 'role-missing',
    cause: requirements.some((r) => r.action.startsWith('ecr:')) ? 'auth-ecr-token' : 'secrets-access',
    hop: 'registry-auth',
    severity: 'error',
    certainty: 'certain',
    title: `the ${label} does not exist`,
    detail,
    evidence: [],
    fixes: [
      {
        kind: 'text',
        summary:
          workload === 'build'
            ? 'point the project at an existing service role (one codebuild.amazonaws.com may assume), or create it'
            : 'create the role with the AmazonECSTaskExecutionRolePolicy managed policy, or point the task definition at an existing one',
      },
    ],
  };
}

/** Neither the simulator nor the policy documents could be read: nothing can be said of the role. */
function unjudgedRole(role: RoleFacts): Finding {
  const failure = role.policies.state === 'failed' ? role.policies.failure : undefined;
  return {
    id: 'role-unchecked',
    cause: 'unknown',
    hop: 'registry-auth',
    severity: 'unchecked',
    certainty: 'possible',
    title: `could not read the policies of ${role.name}`,
    detail: `Neither the IAM simulator nor the role's policy documents were readable${failure ? ` (${failure.operation}: ${failure.code})` : ''}.`,
    evidence: [{ label: 'role', value: role.arn }],
    fixes: [
      {
        kind: 'text',
        summary:
          'allow doctor iam:SimulatePrincipalPolicy, or iam:ListRolePolicies, iam:GetRolePolicy, iam:ListAttachedRolePolicies, iam:GetPolicy and iam:GetPolicyVersion',
      },
    ],
  };
}

/** One finding per group of needed actions the role is not allowed, with the statement that grants them. */
function deniedFinding(role: RoleFacts, label: string, group: Group, denied: Verdict[]): Finding {
  const explicit = denied.filter((v) => v.decision === 'explicit-deny');
  const undecided = denied.every((v) => v.decision === 'undecided');
  const actions = [...new Set(denied.map((v) => v.requirement.action))];
  const evidence = deniedEvidence(role, denied, actions);
  if (undecided)
    evidence.push(
      ...denied.flatMap((v) => v.statements.map((s) => ({ label: 'condition not decidable', value: s }))),
    );
  const policy = grantPolicy(
    sidFor(group.id),
    denied.map((v) => v.requirement),
  );
  const fixes: Fix[] = [
    { kind: 'iam-policy', summary: `add this statement to ${role.name}`, content: policy },
    {
      kind: 'aws-cli',
      summary: 'or attach it as an inline policy',
      content: `aws iam put-role-policy --role-name ${role.name} --policy-name pullsafe-${group.id} --policy-document '${JSON.stringify(JSON.parse(policy))}'`,
    },
  ];
  if (explicit.length > 0) {
    fixes.unshift({
      kind: 'text',
      summary: `remove or narrow the explicit deny: ${[...new Set(explicit.flatMap((v) => v.statements))].join(', ')}`,
    });
  }
  return {
    id: group.id,
    cause: group.cause,
    hop: group.hop,
    severity: undecided ? 'warning' : 'error',
    certainty: undecided ? 'possible' : 'certain',
    title: group.title(role.name),
    detail: `${role.name} (${label}) lacks ${actions.join(', ')}${explicit.length > 0 ? ': an explicit deny blocks it' : undecided ? ': only statements with conditions doctor cannot decide would allow it' : ': no statement allows it'}.`,
    evidence,
    fixes,
  };
}

/** Each denied action with its resource and reason, the statements that denied it, and where it is allowed. */
function deniedEvidence(role: RoleFacts, denied: Verdict[], actions: string[]): Evidence[] {
  return [
    { label: 'role', value: role.arn },
    ...denied.map((v) => ({
      label: v.requirement.action,
      value: `${v.decision} on ${v.requirement.resource} (needed for ${v.requirement.reason})`,
    })),
    ...denied
      .filter((v) => v.decision === 'explicit-deny')
      .flatMap((v) => v.statements.map((s) => ({ label: 'denied by', value: s }))),
    ...denied
      .filter((v) => v.decision === 'implicit-deny' && v.statements.length > 0)
      .flatMap((v) => v.statements.map((s) => ({ label: 'why', value: `${v.requirement.action}: ${s}` }))),
    ...actions
      .filter((action) => secretActions.has(action))
      .flatMap((action) => {
        const elsewhere = allowedElsewhere(role, action);
        return elsewhere.length > 0
          ? [{ label: `${action} is allowed only on`, value: elsewhere.slice(0, 5).join(', ') }]
          : [];
      }),
    {
      label: 'judged from',
      value:
        denied[0]?.source === 'simulation'
          ? 'iam:SimulatePrincipalPolicy'
          : 'the role\u2019s policy documents',
    },
  ];
}

function sidFor(id: string): string {
  return id
    .split('-')
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join('')
    .replace(/^RoleNo/, 'Allow');
}

/** Cross-account ECR: the repository policy must let the pulling role in as well. */
function repositoryPolicyFindings(images: ImageFacts[], role: RoleFacts | undefined): Finding[] {
  if (!role) return [];
  return images.flatMap((image) => {
    const ecr = image.ecr;
    if (!ecr || !ecr.crossAccount || !image.repository) return [];
    const repository = { name: image.repository, registryId: ecr.registryId, region: ecr.region };
    const policy = ecr.repositoryPolicy;
    if (!policy || policy.state === 'failed') return [unreadableRepositoryPolicy(repository, policy)];
    return repositoryPolicyDenies(repository, policy, role) ?? [];
  });
}

interface CrossAccountRepository {
  name: string;
  registryId: string;
  region: string;
}

function unreadableRepositoryPolicy(
  repository: CrossAccountRepository,
  policy: Lookup<PolicyDocument> | undefined,
): Finding {
  return {
    id: 'repository-policy-unchecked',
    cause: 'auth-ecr-permission',
    hop: 'manifest',
    severity: 'unchecked',
    certainty: 'possible',
    title: `could not read the policy of ${repository.name} in account ${repository.registryId}`,
    detail:
      'A cross-account pull needs the repository policy to allow the pulling role; doctor could not read it.',
    evidence: [
      {
        label: 'repository',
        value: ecrRepositoryArn(repository.registryId, repository.region, repository.name),
      },
      ...(policy?.state === 'failed'
        ? [{ label: 'error', value: `${policy.failure.code}: ${policy.failure.message}` }]
        : []),
    ],
    fixes: [
      {
        kind: 'text',
        summary: `run doctor with credentials of account ${repository.registryId}, or check the repository policy there`,
      },
    ],
  };
}

/** The pull actions a repository policy (or its absence) does not allow the role, and the statements that deny them. */
function deniedByRepositoryPolicy(
  repository: CrossAccountRepository,
  policy: Lookup<PolicyDocument>,
  role: RoleFacts,
): { denied: string[]; statements: string[] } {
  const repositoryArn = ecrRepositoryArn(repository.registryId, repository.region, repository.name);
  const principalAccount = arnAccount(role.arn);
  const denied: string[] = [];
  const statements: string[] = [];
  for (const action of ECR_PULL_ACTIONS) {
    const decision =
      policy.state === 'found'
        ? evaluateResource(
            { name: `repository:${repository.name}`, kind: 'resource', document: policy.value },
            {
              action,
              resource: repositoryArn,
              principalArn: role.arn,
              ...(principalAccount ? { principalAccount } : {}),
            },
          )
        : undefined;
    const combined = decision
      ? combineDecisions(
          { decision: 'allowed', allowedBy: [], deniedBy: [], undecided: [], missingAllowFrom: [] },
          decision,
          true,
        )
      : undefined;
    if (!combined || combined.decision !== 'allowed') {
      denied.push(action);
      if (combined) statements.push(...combined.deniedBy.map(formatStatementRef));
    }
  }
  return { denied, statements };
}

function repositoryPolicyDenies(
  repository: CrossAccountRepository,
  policy: Lookup<PolicyDocument>,
  role: RoleFacts,
): Finding | undefined {
  const { denied, statements } = deniedByRepositoryPolicy(repository, policy, role);
  if (denied.length === 0) return undefined;
  const { name, registryId, region } = repository;
  const statement = {
    Sid: 'AllowCrossAccountPull',
    Effect: 'Allow',
    Principal: { AWS: role.arn },
    Action: ECR_PULL_ACTIONS,
  };
  return {
    id: policy.state === 'missing' ? 'repository-policy-missing' : 'repository-policy-denies',
    cause: 'auth-ecr-permission',
    hop: 'manifest',
    severity: 'error',
    certainty: 'certain',
    title:
      policy.state === 'missing'
        ? `${name} in account ${registryId} has no repository policy, so ${role.name} cannot pull across accounts`
        : `the policy of ${name} in account ${registryId} does not let ${role.name} pull`,
    detail: `Cross-account pulls need both the role's own permissions and the repository policy. The repository policy does not allow ${denied.join(', ')} to ${role.arn}.`,
    evidence: [
      { label: 'repository', value: ecrRepositoryArn(registryId, region, name) },
      { label: 'principal', value: role.arn },
      ...denied.map((action) => ({ label: action, value: 'not allowed by the repository policy' })),
      ...statements.map((s) => ({ label: 'denied by', value: s })),
    ],
    fixes: [
      {
        kind: 'repository-policy',
        summary: `add this statement to the policy of ${name} (account ${registryId})`,
        content: JSON.stringify(statement, null, 2),
      },
      {
        kind: 'aws-cli',
        summary:
          policy.state === 'missing'
            ? 'set it as the repository policy'
            : 'merge it into the existing policy, then set it',
        content: `aws ecr set-repository-policy --registry-id ${registryId} --repository-name ${name} --region ${region} --policy-text '${JSON.stringify({ Version: '2012-10-17', Statement: [statement] })}'`,
      },
    ],
  };
}

export const iamCheck: Check = (facts) => {
  const findings: Finding[] = [];
  const ecrImages = facts.images.filter((image) => image.kind === 'ecr');
  const pullNeeds = pullRoleRequirements(facts.images);
  const executionNeeds = executionRequirements(facts.secrets, facts.logs, facts.accountId);
  const pullIsExecution = facts.launchType !== 'EC2';
  const executionLabel = 'task execution role';
  const pullLabel =
    facts.launchType === 'CODEBUILD'
      ? 'CodeBuild service role'
      : facts.launchType === 'EC2'
        ? 'container instance role'
        : executionLabel;

  if (facts.taskDefinition && !facts.taskDefinition.executionRoleArn) {
    const needsOne = executionNeeds.length > 0 || (pullIsExecution && ecrImages.length > 0);
    if (needsOne) {
      findings.push({
        id: 'execution-role-missing',
        cause: ecrImages.length > 0 ? 'auth-ecr-token' : 'secrets-access',
        hop: 'registry-auth',
        severity: 'error',
        certainty: 'certain',
        title: 'the task definition has no execution role',
        detail:
          'Fargate tasks pulling from ECR, and any task using secrets, repositoryCredentials or awslogs, need an execution role.',
        evidence: [{ label: 'task definition', value: facts.taskDefinition.taskDefinitionArn ?? '' }],
        fixes: [
          {
            kind: 'task-definition-patch',
            summary: 'set an execution role (one with AmazonECSTaskExecutionRolePolicy attached)',
            content: JSON.stringify(
              {
                executionRoleArn: `arn:aws:iam::${facts.accountId ?? '<account-id>'}:role/ecsTaskExecutionRole`,
              },
              null,
              2,
            ),
          },
        ],
      });
    }
  }

  if (facts.launchType === 'CODEBUILD') {
    // With CODEBUILD pull credentials, CodeBuild's own principal pulls the environment image (see the
    // codebuild check); what the build pulls itself, it pulls with the service role's ECR token.
    const rolePulls = facts.project?.environment?.imagePullCredentialsType === 'SERVICE_ROLE';
    const environmentNeeds = pullRoleRequirements(facts.images.filter((image) => !image.build));
    const buildNeeds = pullRoleRequirements(facts.images.filter((image) => image.build));
    findings.push(
      ...roleFindings(
        facts.pullRole,
        pullLabel,
        [...(rolePulls ? environmentNeeds : []), ...buildNeeds, ...executionNeeds],
        'build',
      ),
    );
  } else if (pullIsExecution) {
    findings.push(...roleFindings(facts.executionRole, executionLabel, [...pullNeeds, ...executionNeeds]));
  } else {
    findings.push(...roleFindings(facts.pullRole, pullLabel, pullNeeds));
    findings.push(...roleFindings(facts.executionRole, executionLabel, executionNeeds));
  }
  const pullRole = facts.pullRole?.state === 'found' ? facts.pullRole.value : undefined;
  findings.push(
    ...repositoryPolicyFindings(
      facts.launchType === 'CODEBUILD' ? ecrImages.filter((image) => image.build) : ecrImages,
      pullRole,
    ),
  );
  return dedupeFindings(findings);
};

function dedupeFindings(findings: Finding[]): Finding[] {
  const seen = new Set<string>();
  return findings.filter((f) => {
    const key = `${f.id} ${f.title}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
