/** The principal of a request, and whether a statement's `Principal` or `NotPrincipal` names it. */
import { parseIamPrincipalArn, type IamPrincipalArn } from '../../shared/arn.ts';
import type { AccessRequest } from '../iam-eval.ts';
import { or, toList, type Tri } from './matching.ts';

export interface RequestPrincipal {
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

export function describePrincipal(request: AccessRequest): RequestPrincipal {
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

export function matchesPrincipal(
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
export function exemptedByNotPrincipal(
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
