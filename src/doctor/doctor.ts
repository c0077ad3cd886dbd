/**
 * doctor: collect facts (read-only AWS calls or a snapshot), run every check over them, and order the
 * findings into a report grouped by hop. Checks are pure; this module only sequences them.
 */
import { parseArn, secretNameWithoutSuffix } from '../shared/arn.ts';
import type { AwsCaller } from './aws.ts';
import { collect, type DoctorTarget } from './collect.ts';
import { codebuildCheck } from './checks/codebuild.ts';
import { endpointPolicyCheck } from './checks/endpoint-policy.ts';
import { iamCheck } from './checks/iam.ts';
import { imageCheck } from './checks/image.ts';
import { logsCheck } from './checks/logs.ts';
import { networkCheck } from './checks/network.ts';
import { rateLimitCheck } from './checks/ratelimit.ts';
import { secretsCheck } from './checks/secrets.ts';
import { stopReasonCheck, stopReasonClues } from './checks/stop-reason.ts';
import {
  hopOrder,
  type CallFailure,
  type Check,
  type Facts,
  type Finding,
  type Severity,
  type Subject,
} from './types.ts';

export const checks: readonly { name: string; run: Check }[] = [
  { name: 'stop-reason', run: stopReasonCheck },
  { name: 'image', run: imageCheck },
  { name: 'iam', run: iamCheck },
  { name: 'network', run: networkCheck },
  { name: 'endpoint-policy', run: endpointPolicyCheck },
  { name: 'secrets', run: secretsCheck },
  { name: 'logs', run: logsCheck },
  { name: 'codebuild', run: codebuildCheck },
  { name: 'rate-limit', run: rateLimitCheck },
];

export interface DoctorReport {
  subject: Subject;
  region: string;
  accountId?: string;
  launchType: Facts['launchType'];
  /** Ordered: what the task said, then what explains it, then the rest by hop (see `byRank`). */
  findings: Finding[];
  /** Diagnostic calls that failed: what doctor could not check. */
  failures: CallFailure[];
  summary: Record<Severity, number>;
  /** True when any finding is an error or a warning: the CLI exits 1. */
  problems: boolean;
}

const severityRank: Record<Severity, number> = { error: 0, warning: 1, unchecked: 2, info: 3 };
const certaintyRank = { certain: 0, likely: 1, possible: 2 } as const;

/**
 * The report's order. First what the task said (`stop-reason`). Then every finding that explains it, whatever
 * its hop: same cause as the explained stop reason, or about a secret or parameter the message names; an
 * `unchecked` one among them (the call that would confirm the task's own words could not be made) still
 * outranks guesses from other checks. Then the rest by hop, severity and certainty.
 */
function byRank(a: Finding, b: Finding): number {
  const group = (f: Finding) => (f.id === 'stop-reason' ? 0 : f.matchesStopReason ? 1 : 2);
  const hop = hopOrder.indexOf(a.hop) - hopOrder.indexOf(b.hop);
  const severity = severityRank[a.severity] - severityRank[b.severity];
  const certainty = certaintyRank[a.certainty] - certaintyRank[b.certainty];
  const ga = group(a);
  return ga - group(b) || (ga === 1 ? severity || certainty || hop : hop || severity || certainty);
}

function explainsStopReason(
  finding: Finding,
  clues: { causes: Set<string>; resources: Set<string> },
): boolean {
  if (clues.causes.has(finding.cause)) return true;
  return finding.evidence.some((e) =>
    [...clues.resources].some((resource) => e.value === resource || sameSecret(e.value, resource)),
  );
}

/** A task definition may name a secret by name or by ARN; ECS's message names its ARN. */
function sameSecret(reference: string, arn: string): boolean {
  // `…:secret:name` (no random suffix) and `…:secret:name-AbCdEf:json-key::` name the same secret.
  if (reference.startsWith('arn:')) return arn.startsWith(`${reference}-`) || reference.startsWith(`${arn}:`);
  const parsed = parseArn(arn);
  const name = parsed?.resourceType === 'secret' ? parsed.resourceId : undefined;
  return name !== undefined && (name === reference || secretNameWithoutSuffix(name) === reference);
}

export function diagnose(facts: Facts): DoctorReport {
  const findings: Finding[] = [];
  for (const check of checks) {
    try {
      findings.push(...check.run(facts));
    } catch (error) {
      findings.push({
        id: 'check-crashed',
        cause: 'unknown',
        hop: 'stop-reason',
        severity: 'unchecked',
        certainty: 'possible',
        title: `the ${check.name} check could not run on this data`,
        detail: String((error as Error)?.message ?? error),
        evidence: [],
        fixes: [
          {
            kind: 'text',
            summary: 'this is a bug in pullsafe; please report it with the snapshot (--save-snapshot)',
          },
        ],
      });
    }
  }
  const clues = stopReasonClues(facts);
  for (const finding of findings) {
    if (finding.id !== 'stop-reason' && explainsStopReason(finding, clues)) finding.matchesStopReason = true;
  }
  findings.sort(byRank);
  const summary: Record<Severity, number> = { error: 0, warning: 0, unchecked: 0, info: 0 };
  for (const finding of findings) summary[finding.severity]++;
  return {
    subject: facts.subject,
    region: facts.region,
    ...(facts.accountId ? { accountId: facts.accountId } : {}),
    launchType: facts.launchType,
    findings,
    failures: facts.failures,
    summary,
    problems: summary.error + summary.warning > 0,
  };
}

export async function runDoctor(
  caller: AwsCaller,
  target: DoctorTarget,
  region: string,
): Promise<DoctorReport> {
  return diagnose(await collect(caller, target, region));
}
