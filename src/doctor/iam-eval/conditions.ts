/** Condition blocks: the request's context keys, and IAM's condition operators over them. */
import { splitArn } from '../../shared/arn.ts';
import { ipInCidr, parseCidr, parseIp } from '../../shared/ip.ts';
import type { AccessRequest } from '../iam-eval.ts';
import type { PolicyStatement } from '../types.ts';
import {
  and,
  not,
  or,
  patternMatch,
  substituteVariables,
  toList,
  unmark,
  type Context,
  type Tri,
} from './matching.ts';
import type { RequestPrincipal } from './principals.ts';

export function buildContext(request: AccessRequest, principal: RequestPrincipal): Context {
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

export function evaluateConditions(statement: PolicyStatement, variables: boolean, context: Context): Tri {
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
