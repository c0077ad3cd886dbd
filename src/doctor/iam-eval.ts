/**
 * An IAM policy evaluator over fetched policy documents, following IAM's documented evaluation logic:
 * an explicit deny wins, otherwise something must allow, and a permissions boundary (when given) must allow
 * too. It is the fallback when `iam:SimulatePrincipalPolicy` cannot be called, and the only evaluator for
 * resource policies (ECR repository policies, VPC endpoint policies), which the simulator does not cover.
 *
 * It never guesses: a statement whose conditions, policy variables or principal cannot be decided from what
 * the request carries is reported as `undecided`, and neither allows nor denies.
 *
 * Not modelled: service control policies, resource control policies, session policies, and the nuance that a
 * same-account resource policy naming a role ARN is not limited by that role's permissions boundary.
 *
 * The parts are in `iam-eval/`: matching (three-valued logic, wildcards, policy variables), principals, and
 * conditions.
 */
import { buildContext, evaluateConditions } from './iam-eval/conditions.ts';
import { and, matchesAction, matchesResource, not, type Context, type Tri } from './iam-eval/matching.ts';
import {
  describePrincipal,
  exemptedByNotPrincipal,
  matchesPrincipal,
  type RequestPrincipal,
} from './iam-eval/principals.ts';
import type { NamedPolicy, PolicyDocument, PolicyStatement } from './types.ts';

export interface AccessRequest {
  /** `service:Action`, e.g. `ecr:BatchGetImage`. */
  action: string;
  /** The resource ARN, or `*` for actions without resource-level permissions. */
  resource: string;
  /**
   * Who asks, for resource and endpoint policies: an IAM ARN (`arn:aws:iam::123456789012:role/x`), an
   * assumed-role session (`arn:aws:sts::123456789012:assumed-role/x/session`) or a service principal
   * (`codebuild.amazonaws.com`).
   */
  principalArn?: string;
  /** The principal's account; derived from `principalArn` when absent. */
  principalAccount?: string;
  /**
   * Condition keys whose values are known, matched case-insensitively. An empty array means the key is known
   * to be absent from the request; a key not listed at all is unknown, and conditions on it are undecided.
   * `aws:PrincipalAccount`, `aws:PrincipalArn` (IAM ARNs only) and `aws:PrincipalIsAWSService` are filled
   * from the principal when not given.
   */
  context?: Record<string, string | string[]>;
}

export interface StatementRef {
  policy: string;
  kind: NamedPolicy['kind'];
  sid?: string;
  /** Position of the statement in the document's `Statement` array, 0-based (0 for a lone object). */
  index: number;
  effect: PolicyStatement['Effect'];
}

export type Decision = 'allowed' | 'implicit-deny' | 'explicit-deny';

/** A layer of the evaluation that must allow for the request to be allowed. */
export type PolicyLayer = 'identity' | 'boundary' | 'resource';

export interface AccessDecision {
  decision: Decision;
  allowedBy: StatementRef[];
  deniedBy: StatementRef[];
  /**
   * Statements that match action/resource/principal but carry conditions that could not be decided from the
   * context: the decision is then uncertain. Only statements that could change the decision are kept: undecided
   * denies unless the decision is already an explicit deny, and undecided allows of the layers that did not
   * allow.
   */
  undecided: StatementRef[];
  /** For an implicit deny: the layers in which no statement allowed the request (why it is denied). */
  missingAllowFrom: PolicyLayer[];
}

/**
 * Parses a policy document as IAM returns it (URL-encoded JSON from GetRolePolicy and GetPolicyVersion) or as
 * plain JSON (ECR GetRepositoryPolicy, EC2 endpoint policies). Throws an Error naming what is wrong.
 */
export function parsePolicyDocument(text: string): PolicyDocument {
  const trimmed = text.trim();
  if (trimmed === '') throw new Error('policy document is empty');
  let json = trimmed;
  if (!trimmed.startsWith('{')) {
    try {
      json = decodeURIComponent(trimmed).trim();
    } catch (error) {
      throw new Error('policy document is neither JSON nor valid URL-encoded JSON', { cause: error });
    }
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`policy document is not valid JSON: ${reason}`, { cause: error });
  }
  return validateDocument(parsed);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isStringOrStrings(value: unknown): value is string | string[] {
  return (
    typeof value === 'string' || (Array.isArray(value) && value.every((item) => typeof item === 'string'))
  );
}

function validateDocument(value: unknown): PolicyDocument {
  if (!isRecord(value)) throw new Error('policy document must be a JSON object');
  if (value['Version'] !== undefined && typeof value['Version'] !== 'string') {
    throw new Error('policy document Version must be a string');
  }
  const statement = value['Statement'];
  if (statement === undefined) throw new Error('policy document has no Statement');
  const statements = Array.isArray(statement) ? statement : [statement];
  statements.forEach((item, index) => validateStatement(item, index));
  return value as unknown as PolicyDocument;
}

function validateStatement(value: unknown, index: number): void {
  const where = `statement ${index}`;
  if (!isRecord(value)) throw new Error(`${where} must be a JSON object`);
  if (value['Effect'] !== 'Allow' && value['Effect'] !== 'Deny') {
    throw new Error(`${where} Effect must be "Allow" or "Deny"`);
  }
  if (value['Sid'] !== undefined && typeof value['Sid'] !== 'string') {
    throw new Error(`${where} Sid must be a string`);
  }
  for (const key of ['Action', 'NotAction', 'Resource', 'NotResource']) {
    if (value[key] !== undefined && !isStringOrStrings(value[key])) {
      throw new Error(`${where} ${key} must be a string or an array of strings`);
    }
  }
  if ((value['Action'] === undefined) === (value['NotAction'] === undefined)) {
    throw new Error(`${where} must have exactly one of Action or NotAction`);
  }
  if (value['Resource'] !== undefined && value['NotResource'] !== undefined) {
    throw new Error(`${where} cannot have both Resource and NotResource`);
  }
  if (value['Principal'] !== undefined && value['NotPrincipal'] !== undefined) {
    throw new Error(`${where} cannot have both Principal and NotPrincipal`);
  }
  for (const key of ['Principal', 'NotPrincipal']) {
    const principal = value[key];
    if (principal === undefined || principal === '*') continue;
    if (!isRecord(principal) || !Object.values(principal).every(isStringOrStrings)) {
      throw new Error(`${where} ${key} must be "*" or an object of strings or arrays of strings`);
    }
  }
  const condition = value['Condition'];
  if (condition !== undefined) {
    if (!isRecord(condition) || !Object.values(condition).every(isRecord)) {
      throw new Error(`${where} Condition must map operators to objects of keys`);
    }
  }
}

/** `policy#sid`, or `policy#index` for a statement without a Sid. */
export function formatStatementRef(ref: StatementRef): string {
  return `${ref.policy}#${ref.sid !== undefined && ref.sid !== '' ? ref.sid : String(ref.index)}`;
}

// ---------------------------------------------------------------------------------------------------------
// Evaluation

interface LayerResult {
  allowedBy: StatementRef[];
  deniedBy: StatementRef[];
  undecidedAllows: StatementRef[];
  undecidedDenies: StatementRef[];
}

function statementsOf(document: PolicyDocument): PolicyStatement[] {
  return Array.isArray(document.Statement) ? document.Statement : [document.Statement];
}

function evaluateLayer(policies: NamedPolicy[], request: AccessRequest, withPrincipal: boolean): LayerResult {
  const result: LayerResult = { allowedBy: [], deniedBy: [], undecidedAllows: [], undecidedDenies: [] };
  const principal = describePrincipal(request);
  const context = buildContext(request, principal);
  for (const policy of policies) {
    const variables = policy.document.Version === '2012-10-17';
    statementsOf(policy.document).forEach((statement, index) => {
      const applies = statementApplies(statement, request, principal, context, variables, withPrincipal);
      if (applies === false) return;
      const ref: StatementRef = { policy: policy.name, kind: policy.kind, index, effect: statement.Effect };
      if (statement.Sid !== undefined) ref.sid = statement.Sid;
      const deny = statement.Effect === 'Deny';
      if (applies === true) (deny ? result.deniedBy : result.allowedBy).push(ref);
      else (deny ? result.undecidedDenies : result.undecidedAllows).push(ref);
    });
  }
  return result;
}

function statementApplies(
  statement: PolicyStatement,
  request: AccessRequest,
  principal: RequestPrincipal,
  context: Context,
  variables: boolean,
  withPrincipal: boolean,
): Tri {
  if (!matchesAction(statement, request.action)) return false;
  const parts: Tri[] = [matchesResource(statement, request.resource, variables, context)];
  if (withPrincipal) {
    if (statement.Principal !== undefined) parts.push(matchesPrincipal(statement.Principal, principal));
    else if (statement.NotPrincipal !== undefined) {
      parts.push(not(exemptedByNotPrincipal(statement.NotPrincipal, principal)));
    } else parts.push(false); // a resource policy statement without a principal grants nobody anything
  }
  if (and(parts) === false) return false;
  parts.push(evaluateConditions(statement, variables, context));
  return and(parts);
}

/** Combines layers that must all allow (identity and boundary; identity and a cross-account resource). */
function combineRequired(layers: AccessDecision[]): AccessDecision {
  const deniedBy = layers.flatMap((decision) => decision.deniedBy);
  const allowedBy = layers.flatMap((decision) => decision.allowedBy);
  const failing = layers.filter((decision) => decision.decision !== 'allowed');
  const undecidedDenies = layers.flatMap((decision) => decision.undecided.filter(isDeny));
  if (deniedBy.length > 0) {
    return { decision: 'explicit-deny', allowedBy, deniedBy, undecided: [], missingAllowFrom: [] };
  }
  if (failing.length === 0) {
    return { decision: 'allowed', allowedBy, deniedBy, undecided: undecidedDenies, missingAllowFrom: [] };
  }
  return {
    decision: 'implicit-deny',
    allowedBy,
    deniedBy,
    undecided: [
      ...undecidedDenies,
      ...failing.flatMap((decision) => decision.undecided.filter((ref) => !isDeny(ref))),
    ],
    missingAllowFrom: unique(failing.flatMap((decision) => decision.missingAllowFrom)),
  };
}

function isDeny(ref: StatementRef): boolean {
  return ref.effect === 'Deny';
}

function unique<T>(values: T[]): T[] {
  return [...new Set(values)];
}

function decide(result: LayerResult, layer: PolicyLayer): AccessDecision {
  const { allowedBy, deniedBy } = result;
  if (deniedBy.length > 0) {
    return { decision: 'explicit-deny', allowedBy, deniedBy, undecided: [], missingAllowFrom: [] };
  }
  if (allowedBy.length > 0) {
    return {
      decision: 'allowed',
      allowedBy,
      deniedBy,
      undecided: result.undecidedDenies,
      missingAllowFrom: [],
    };
  }
  return {
    decision: 'implicit-deny',
    allowedBy,
    deniedBy,
    undecided: [...result.undecidedDenies, ...result.undecidedAllows],
    missingAllowFrom: [layer],
  };
}

/**
 * Evaluates identity policies (inline and managed) of a role for one request, and its permissions boundary
 * when given: the boundary must allow too, and a deny in it is an explicit deny. Principal elements are
 * ignored (identity policies have none).
 */
export function evaluateIdentity(
  policies: NamedPolicy[],
  request: AccessRequest,
  boundary?: NamedPolicy,
): AccessDecision {
  const identity = decide(evaluateLayer(policies, request, false), 'identity');
  if (boundary === undefined) return identity;
  const bounded = decide(evaluateLayer([boundary], request, false), 'boundary');
  return combineRequired([identity, bounded]);
}

/**
 * Evaluates a resource policy (ECR repository policy, VPC endpoint policy) for one request, matching the
 * request's principal against `Principal`/`NotPrincipal`.
 */
export function evaluateResource(policy: NamedPolicy, request: AccessRequest): AccessDecision {
  return decide(evaluateLayer([policy], request, true), 'resource');
}

/**
 * Same-account: identity OR resource policy allows (no explicit deny anywhere). Cross-account: both must
 * allow; a missing resource policy (`undefined`) then denies.
 */
export function combineDecisions(
  identity: AccessDecision,
  resource: AccessDecision | undefined,
  crossAccount: boolean,
): AccessDecision {
  const noResourcePolicy: AccessDecision = {
    decision: 'implicit-deny',
    allowedBy: [],
    deniedBy: [],
    undecided: [],
    missingAllowFrom: ['resource'],
  };
  if (crossAccount) {
    return combineRequired([identity, resource ?? noResourcePolicy]);
  }
  if (resource === undefined) return identity;
  const allowedBy = [...identity.allowedBy, ...resource.allowedBy];
  const deniedBy = [...identity.deniedBy, ...resource.deniedBy];
  const undecidedDenies = [...identity.undecided, ...resource.undecided].filter(isDeny);
  if (deniedBy.length > 0) {
    return { decision: 'explicit-deny', allowedBy, deniedBy, undecided: [], missingAllowFrom: [] };
  }
  if (identity.decision === 'allowed' || resource.decision === 'allowed') {
    return { decision: 'allowed', allowedBy, deniedBy, undecided: undecidedDenies, missingAllowFrom: [] };
  }
  return {
    decision: 'implicit-deny',
    allowedBy,
    deniedBy,
    undecided: [...identity.undecided, ...resource.undecided],
    missingAllowFrom: unique([...identity.missingAllowFrom, ...resource.missingAllowFrom]),
  };
}
