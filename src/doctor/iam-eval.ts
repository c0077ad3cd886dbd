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
 */
import { compileGlob } from '../shared/glob.ts';
import { ipInCidr, parseCidr, parseIp } from '../shared/ip.ts';
import { parseIamPrincipalArn, splitArn, type IamPrincipalArn } from '../shared/arn.ts';
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
// Matching

/** Three-valued answer: a statement part that cannot be decided from the request is `unknown`. */
type Tri = true | false | 'unknown';

function and(values: Tri[]): Tri {
  if (values.includes(false)) return false;
  return values.includes('unknown') ? 'unknown' : true;
}

function or(values: Tri[]): Tri {
  if (values.includes(true)) return true;
  return values.includes('unknown') ? 'unknown' : false;
}

function not(value: Tri): Tri {
  return value === 'unknown' ? 'unknown' : !value;
}

function toList(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

const globCache = new Map<string, RegExp>();

/** IAM wildcard match: `*` any run of characters (including `:` and `/`), `?` exactly one. */
function globMatch(pattern: string, value: string, ignoreCase: boolean): boolean {
  const cacheKey = `${ignoreCase ? 'i' : 's'}${pattern}`;
  let regex = globCache.get(cacheKey);
  if (regex === undefined) {
    regex = compileGlob(pattern, { kind: 'flat', ignoreCase });
    globCache.set(cacheKey, regex);
  }
  return regex.test(value);
}

/** Marks a character produced by `${*}`, `${?}` or `${$}`: it must match literally, not as a wildcard. */
const literalMark = '\uE000';
const literalMarkSplit = new RegExp(`(${literalMark}.)`, 's');

/** The special policy variables that stand for a literal character. */
const literalVariables: Record<string, string> = { '*': '*', '?': '?', $: '$' };

/**
 * Substitutes `${key}` policy variables (and `${key, 'default'}`) from the context. Returns undefined when one
 * cannot be resolved. Only documents of Version 2012-10-17 have variables; older ones are literal. The
 * `${*}`, `${?}` and `${$}` forms become characters that must match literally, so they are marked with
 * `literalMark` for `patternMatch`.
 */
function substituteVariables(text: string, variables: boolean, context: Context): string | undefined {
  if (!variables || !text.includes('${')) return text;
  let unresolved = false;
  const result = text.replace(/\$\{([^}]*)\}/g, (_whole, inner: string) => {
    const literal = literalVariables[inner.trim()];
    if (literal !== undefined) return `${literalMark}${literal}`;
    const match = /^\s*([^,\s]+)\s*(?:,\s*'([^']*)'\s*)?$/.exec(inner);
    const key = match?.[1];
    if (key === undefined) {
      unresolved = true;
      return '';
    }
    const values = context.get(key.toLowerCase());
    if (values !== undefined && values.length === 1 && values[0] !== undefined) return values[0];
    if (values?.length === 0 && match?.[2] !== undefined) return match[2];
    unresolved = true;
    return '';
  });
  return unresolved ? undefined : result;
}

/** A wildcard match in which characters marked by `substituteVariables` as literal are not wildcards. */
function patternMatch(pattern: string, value: string, ignoreCase: boolean): boolean {
  if (!pattern.includes(literalMark)) return globMatch(pattern, value, ignoreCase);
  const escaped = pattern
    .split(literalMarkSplit)
    .map((part) => {
      if (part.startsWith(literalMark)) return part.slice(1).replace(/[\\^$.|+()[\]{}*?]/g, '\\$&');
      return part
        .split('')
        .map((char) => (char === '*' ? '.*' : char === '?' ? '.' : char.replace(/[\\^$.|+()[\]{}]/g, '\\$&')))
        .join('');
    })
    .join('');
  return new RegExp(`^${escaped}$`, ignoreCase ? 'is' : 's').test(value);
}

function unmark(text: string): string {
  return text.split(literalMark).join('');
}

type Context = Map<string, string[]>;

function matchesAction(statement: PolicyStatement, action: string): boolean {
  if (statement.NotAction !== undefined) {
    return !toList(statement.NotAction).some((pattern) => globMatch(pattern, action, true));
  }
  return toList(statement.Action).some((pattern) => globMatch(pattern, action, true));
}

function matchesResource(
  statement: PolicyStatement,
  resource: string,
  variables: boolean,
  context: Context,
): Tri {
  const negated = statement.NotResource !== undefined;
  const patterns = toList(negated ? statement.NotResource : statement.Resource);
  // Resource policies (ECR repository policies) omit Resource: the resource is the one the policy is on.
  if (!negated && statement.Resource === undefined) return true;
  const results = patterns.map((pattern): Tri => {
    const resolved = substituteVariables(pattern, variables, context);
    if (resolved === undefined) return 'unknown';
    return patternMatch(resolved, resource, false);
  });
  const any = or(results);
  return negated ? not(any) : any;
}

// ---------------------------------------------------------------------------------------------------------
// Principals

interface RequestPrincipal {
  account?: string;
  partition?: string;
  /** The ARN as given (IAM ARN or sts session ARN). */
  arn?: string;
  /** For roles and role sessions: the role's name (role names are unique within an account, paths aside). */
  roleName?: string;
  /** For role sessions: the session ARN. */
  sessionArn?: string;
  service?: string;
}

/** An IAM or STS ARN naming an account id, as principals are named; undefined for anything else. */
function principalArn(text: string): (IamPrincipalArn & { account: string }) | undefined {
  const parsed = parseIamPrincipalArn(text);
  return parsed?.account === undefined ? undefined : { ...parsed, account: parsed.account };
}

/** `arn:PARTITION:iam::ACCOUNT:role/PATH/NAME`, with the role's name. */
function roleArn(text: string): (IamPrincipalArn & { account: string; roleName: string }) | undefined {
  const parsed = principalArn(text);
  return parsed?.service === 'iam' && parsed.kind === 'role' && parsed.roleName !== undefined
    ? { ...parsed, roleName: parsed.roleName }
    : undefined;
}

/** The account of `arn:PARTITION:iam::ACCOUNT:root`. */
function rootAccount(text: string): string | undefined {
  const parsed = principalArn(text);
  return parsed?.service === 'iam' && parsed.kind === 'root' ? parsed.account : undefined;
}
const servicePattern = /^[a-z0-9.-]+\.amazonaws\.com(?:\.cn)?$/i;

function describePrincipal(request: AccessRequest): RequestPrincipal {
  const principal: RequestPrincipal = {};
  const arn = request.principalArn;
  if (arn !== undefined) {
    const iam = principalArn(arn);
    if (iam) {
      principal.partition = iam.partition;
      principal.account = iam.account;
      if (iam.service === 'sts' && iam.kind === 'assumed-role') {
        principal.roleName = iam.roleName;
        principal.sessionArn = arn;
      } else if (iam.service === 'iam' && iam.kind === 'role') {
        principal.roleName = iam.roleName;
      }
      principal.arn = arn;
    } else if (servicePattern.test(arn)) {
      principal.service = arn.toLowerCase();
    } else {
      principal.arn = arn;
    }
  }
  if (request.principalAccount !== undefined) principal.account = request.principalAccount;
  return principal;
}

/** Whether one `Principal` entry (`AWS`, `Service`, … with one value) names the request's principal. */
function principalEntryMatches(type: string, value: string, principal: RequestPrincipal): Tri {
  const known = principal.arn !== undefined || principal.service !== undefined;
  if (type === 'AWS') {
    if (value === '*') return true;
    if (principal.service !== undefined) return false;
    const account = /^\d{12}$/.test(value) ? value : rootAccount(value);
    if (account !== undefined) {
      return principal.account === undefined ? 'unknown' : principal.account === account;
    }
    const valueAccount = principalArn(value)?.account;
    if (valueAccount !== undefined && principal.account !== undefined && valueAccount !== principal.account) {
      return false;
    }
    if (!known) return 'unknown';
    const role = roleArn(value);
    if (role && principal.roleName !== undefined) {
      return (
        role.partition === principal.partition &&
        role.account === principal.account &&
        role.roleName === principal.roleName
      );
    }
    return value === principal.arn;
  }
  if (type === 'Service') {
    if (principal.service !== undefined) return value.toLowerCase() === principal.service;
    return known ? false : 'unknown';
  }
  // Federated and CanonicalUser principals are not modelled: they never name an IAM role or a service.
  return known ? false : 'unknown';
}

function matchesPrincipal(
  principalElement: '*' | Record<string, string | string[]>,
  principal: RequestPrincipal,
): Tri {
  if (principalElement === '*') return true;
  const results: Tri[] = [];
  for (const [type, values] of Object.entries(principalElement)) {
    for (const value of toList(values)) results.push(principalEntryMatches(type, value, principal));
  }
  return or(results);
}

/**
 * Whether a `NotPrincipal` element exempts the request's principal. IAM checks every identity in the
 * principal's chain, so an IAM principal is exempt only when its account is listed as well as its own ARN,
 * and a role session only when the session ARN itself is listed (the role ARN alone does not exempt it).
 */
function exemptedByNotPrincipal(
  element: '*' | Record<string, string | string[]>,
  principal: RequestPrincipal,
): Tri {
  if (element === '*') return true;
  const entries = Object.entries(element).flatMap(([type, values]) =>
    toList(values).map((value) => ({ type, value })),
  );
  if (principal.service !== undefined) {
    return entries.some(
      (entry) => entry.type === 'Service' && entry.value.toLowerCase() === principal.service,
    );
  }
  const awsValues = entries.filter((entry) => entry.type === 'AWS').map((entry) => entry.value);
  const accountListed = (account: string): boolean =>
    awsValues.some((value) => value === account || rootAccount(value) === account);
  if (principal.account === undefined) return entries.length === 0 ? false : 'unknown';
  if (!accountListed(principal.account)) return false;
  if (principal.arn === undefined) return 'unknown';
  if (principal.sessionArn !== undefined) return awsValues.includes(principal.sessionArn);
  return awsValues.some((value) => {
    const role = roleArn(value);
    if (role && principal.roleName !== undefined) {
      return role.account === principal.account && role.roleName === principal.roleName;
    }
    return value === principal.arn;
  });
}

// ---------------------------------------------------------------------------------------------------------
// Conditions

function buildContext(request: AccessRequest, principal: RequestPrincipal): Context {
  const context: Context = new Map();
  for (const [key, value] of Object.entries(request.context ?? {})) {
    context.set(key.toLowerCase(), toList(value));
  }
  const derive = (key: string, value: string | undefined): void => {
    if (value !== undefined && !context.has(key)) context.set(key, [value]);
  };
  derive('aws:principalaccount', principal.account);
  if (principal.sessionArn === undefined && principal.arn?.startsWith('arn:') === true) {
    derive('aws:principalarn', principal.arn);
  }
  if (principal.service !== undefined) derive('aws:principalisawsservice', 'true');
  else if (principal.arn !== undefined) derive('aws:principalisawsservice', 'false');
  return context;
}

type ValueTest = (requestValue: string, policyValue: string) => boolean;

/** Matches ARNs segment by segment: wildcards in ARN operators do not cross the first five `:` separators. */
function arnMatch(requestValue: string, policyValue: string): boolean {
  const requestParts = splitArn(requestValue);
  const policyParts = splitArn(policyValue);
  if (!policyParts || !requestParts || !requestValue.startsWith('arn:')) return false;
  return policyParts.every((part, index) => patternMatch(part, requestParts[index] ?? '', false));
}

interface OperatorSpec {
  test: ValueTest;
  /** Negated operators hold when no policy value matches. */
  negated: boolean;
  /** Policy values may contain policy variables. */
  variables: boolean;
}

const numeric =
  (compare: (a: number, b: number) => boolean): ValueTest =>
  (requestValue, policyValue) => {
    const a = Number(requestValue);
    const b = Number(policyValue);
    return requestValue.trim() !== '' && !Number.isNaN(a) && !Number.isNaN(b) && compare(a, b);
  };

const operators: Record<string, OperatorSpec> = {
  stringequals: { test: (r, p) => r === p, negated: false, variables: true },
  stringnotequals: { test: (r, p) => r === p, negated: true, variables: true },
  stringequalsignorecase: {
    test: (r, p) => r.toLowerCase() === p.toLowerCase(),
    negated: false,
    variables: true,
  },
  stringnotequalsignorecase: {
    test: (r, p) => r.toLowerCase() === p.toLowerCase(),
    negated: true,
    variables: true,
  },
  stringlike: { test: (r, p) => patternMatch(p, r, false), negated: false, variables: true },
  stringnotlike: { test: (r, p) => patternMatch(p, r, false), negated: true, variables: true },
  arnequals: { test: arnMatch, negated: false, variables: true },
  arnlike: { test: arnMatch, negated: false, variables: true },
  arnnotequals: { test: arnMatch, negated: true, variables: true },
  arnnotlike: { test: arnMatch, negated: true, variables: true },
  bool: { test: (r, p) => r.toLowerCase() === p.toLowerCase(), negated: false, variables: true },
  numericequals: { test: numeric((a, b) => a === b), negated: false, variables: false },
  numericnotequals: { test: numeric((a, b) => a === b), negated: true, variables: false },
  numericlessthan: { test: numeric((a, b) => a < b), negated: false, variables: false },
  numericlessthanequals: { test: numeric((a, b) => a <= b), negated: false, variables: false },
  numericgreaterthan: { test: numeric((a, b) => a > b), negated: false, variables: false },
  numericgreaterthanequals: { test: numeric((a, b) => a >= b), negated: false, variables: false },
};

/**
 * `IpAddress`/`NotIpAddress`, IPv4 or IPv6: an address is never in a range of the other family. Undecided
 * when the address or the range is not one.
 */
function ipTest(requestValue: string, cidr: string): Tri {
  const address = parseIp(requestValue);
  const range = parseCidr(cidr);
  return address === undefined || range === undefined ? 'unknown' : ipInCidr(address, range);
}

function policyValues(raw: string | string[] | boolean | number): string[] {
  if (Array.isArray(raw)) return raw.map(String);
  return [String(raw)];
}

/** Evaluates one operator/key pair of a Condition block. */
function evaluateConditionEntry(
  operatorName: string,
  key: string,
  raw: string | string[] | boolean | number,
  variables: boolean,
  context: Context,
): Tri {
  let name = operatorName.toLowerCase();
  let setOperator: 'any' | 'all' | undefined;
  if (name.startsWith('foranyvalue:')) {
    setOperator = 'any';
    name = name.slice('foranyvalue:'.length);
  } else if (name.startsWith('forallvalues:')) {
    setOperator = 'all';
    name = name.slice('forallvalues:'.length);
  }
  let ifExists = false;
  if (name.endsWith('ifexists')) {
    ifExists = true;
    name = name.slice(0, -'ifexists'.length);
  }
  const requestValues = context.get(key.toLowerCase());
  // A key we know nothing about: whether the request carries it, and with what value, is undecided.
  if (requestValues === undefined) return 'unknown';
  const rawValues = policyValues(raw);

  if (name === 'null') {
    if (setOperator !== undefined || ifExists) return 'unknown';
    const wantsAbsent = rawValues.map((value) => value.toLowerCase() === 'true');
    return or(wantsAbsent.map((absent) => absent === (requestValues.length === 0)));
  }

  const isIp = name === 'ipaddress' || name === 'notipaddress';
  const spec = operators[name];
  if (spec === undefined && !isIp) return 'unknown';
  const negated = isIp ? name === 'notipaddress' : (spec?.negated ?? false);

  // Resolve policy variables in the values; one that cannot be resolved leaves the entry undecided.
  const resolved: string[] = [];
  for (const value of rawValues) {
    const substituted =
      isIp || spec?.variables !== true ? value : substituteVariables(value, variables, context);
    if (substituted === undefined) return 'unknown';
    resolved.push(substituted);
  }
  const valueMatches = (requestValue: string): Tri => {
    if (isIp) return or(resolved.map((cidr) => ipTest(requestValue, cidr)));
    const test = spec?.test;
    if (test === undefined) return 'unknown';
    const usesPattern = name === 'stringlike' || name === 'stringnotlike' || name.startsWith('arn');
    return resolved.some((policyValue) =>
      test(requestValue, usesPattern ? policyValue : unmark(policyValue)),
    );
  };
  // For one request value: does it satisfy the operator (a negated operator: matches no policy value)?
  const satisfied = (requestValue: string): Tri => {
    const matches = valueMatches(requestValue);
    return negated ? not(matches) : matches;
  };

  if (requestValues.length === 0) {
    if (ifExists) return true;
    if (setOperator === 'all') return true;
    if (setOperator === 'any') return false;
    return negated;
  }
  if (setOperator === 'all') return and(requestValues.map(satisfied));
  if (setOperator === 'any') return or(requestValues.map(satisfied));
  // A multi-valued key under a single-valued operator: any value may satisfy a positive operator; a negated
  // operator needs no value to match.
  if (negated) return and(requestValues.map(satisfied));
  return or(requestValues.map(satisfied));
}

function evaluateConditions(statement: PolicyStatement, variables: boolean, context: Context): Tri {
  const condition = statement.Condition;
  if (condition === undefined) return true;
  const results: Tri[] = [];
  for (const [operatorName, entries] of Object.entries(condition)) {
    for (const [key, raw] of Object.entries(entries)) {
      results.push(evaluateConditionEntry(operatorName, key, raw, variables, context));
    }
  }
  return and(results);
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
