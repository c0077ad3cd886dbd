/**
 * doctor: collect facts (read-only AWS calls or a snapshot), run every check over them, and order the
 * findings into a report grouped by hop. Checks are pure; this module only sequences them.
 */
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
import { stopReasonCheck } from './checks/stop-reason.ts';
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
  /** Ordered: by hop, then findings that match the stop reason, then severity and certainty. */
  findings: Finding[];
  /** Diagnostic calls that failed: what doctor could not check. */
  failures: CallFailure[];
  summary: Record<Severity, number>;
  /** True when any finding is an error or a warning: the CLI exits 1. */
  problems: boolean;
}

const severityRank: Record<Severity, number> = { error: 0, warning: 1, unchecked: 2, info: 3 };
const certaintyRank = { certain: 0, likely: 1, possible: 2 } as const;

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
  const stopCauses = new Set(findings.filter((f) => f.id === 'stop-reason').map((f) => f.cause));
  for (const finding of findings) {
    if (finding.id !== 'stop-reason' && stopCauses.has(finding.cause)) finding.matchesStopReason = true;
  }
  findings.sort(
    (a, b) =>
      hopOrder.indexOf(a.hop) - hopOrder.indexOf(b.hop) ||
      Number(Boolean(b.matchesStopReason)) - Number(Boolean(a.matchesStopReason)) ||
      severityRank[a.severity] - severityRank[b.severity] ||
      certaintyRank[a.certainty] - certaintyRank[b.certainty],
  );
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
