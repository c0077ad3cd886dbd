/**
 * The workload's own error text, read by `explain`: what ECS said, or what a failed CodeBuild build's phase
 * messages and log said, before doctor says why.
 */
import { explain } from '../../explain/index.ts';
import type { Check, Facts, Finding } from '../types.ts';

export const stopReasonCheck: Check = (facts) => {
  const findings: Finding[] = stoppedTasksUnchecked(facts);
  const seen = new Set<string>();
  for (const reason of facts.stopReasons) {
    if (seen.has(reason.text)) continue;
    seen.add(reason.text);
    const result = explain(reason.text);
    const [first, ...others] = result.causes;
    if (!first) continue;
    const pullRelated = first.id !== 'unknown';
    if (!pullRelated && !/pull|image|secret|log|registry/i.test(reason.text)) continue;
    const build = reason.build;
    // A build's words are log lines: they are listed as evidence rather than run together here.
    const said = build
      ? `Build ${reason.task} failed${build.phase ? ` in phase ${build.phase}` : ''}${build.statusCode ? ` (${build.statusCode})` : ''}; ${result.lines.length === 1 ? 'this line of its phase messages and log says' : `these ${result.lines.length} lines of its phase messages and log say`} why.`
      : `${reason.task} stopped with: ${result.message}`;
    findings.push({
      id: 'stop-reason',
      cause: first.id,
      hop: 'stop-reason',
      severity: pullRelated ? 'error' : 'info',
      certainty:
        first.confidence === 'high' ? 'certain' : first.confidence === 'medium' ? 'likely' : 'possible',
      title: withImage(
        build ? inBuildTerms(first.summary) : first.summary,
        facts.images.map((image) => image.reference),
      ),
      detail: said,
      evidence: [
        { label: build ? 'build' : 'task', value: reason.task },
        ...(build?.phase ? [{ label: 'failed phase', value: build.phase }] : []),
        ...(build?.statusCode ? [{ label: 'status code', value: build.statusCode }] : []),
        ...Object.entries(first.evidence).map(([label, value]) => ({
          label,
          value: Array.isArray(value) ? value.join(', ') : String(value),
        })),
        ...others.map((cause) => ({ label: 'also possible', value: `${cause.id}: ${cause.summary}` })),
        // A build's log is long: the lines explain read its causes from.
        ...(build ? result.lines.map((line) => ({ label: 'log', value: line })) : []),
      ],
      fixes: first.fixes
        // explain's "run pullsafe doctor on the task" is this very report for a build, and CodeBuild never
        // gives a build a public IP.
        .filter((summary) => !(build && /pullsafe doctor|assignPublicIp/.test(summary)))
        .map((summary) => ({ kind: 'text' as const, summary: build ? inBuildTerms(summary) : summary })),
    });
  }
  return findings;
};

/**
 * What the tasks' own words point at: the causes explain names (not `unknown`), and the secrets and
 * parameters the messages name. A finding about either explains the stop reason, whatever its hop.
 */
export function stopReasonClues(facts: Facts): { causes: Set<string>; resources: Set<string> } {
  const causes = new Set<string>();
  const resources = new Set<string>();
  for (const reason of facts.stopReasons) {
    const result = explain(reason.text);
    const first = result.causes[0];
    if (first !== undefined && first.id !== 'unknown') causes.add(first.id);
    for (const arn of [...(result.extracted.secretArns ?? []), ...(result.extracted.parameterArns ?? [])])
      resources.add(arn);
  }
  return { causes, resources };
}

/**
 * A service's stopped tasks that could not be listed or read: their stop reasons are unknown, which is not
 * the same as "no task failed".
 */
function stoppedTasksUnchecked(facts: Facts): Finding[] {
  if (facts.subject.kind !== 'service') return [];
  const failure = facts.failures.find(
    (f) => f.service === 'ecs' && (f.operation === 'ListTasks' || f.operation === 'DescribeTasks'),
  );
  if (failure === undefined) return [];
  const call = `${failure.service}:${failure.operation}`;
  return [
    {
      id: 'stop-reason-unchecked',
      cause: 'unknown',
      hop: 'stop-reason',
      severity: 'unchecked',
      certainty: 'certain',
      title: `could not read the stopped tasks of service ${facts.subject.name}`,
      detail: `${call} failed (${failure.code}), so the stop reasons of its recent tasks were not read; the checks below ran on the service's configuration alone.`,
      evidence: [{ label: call, value: `${failure.code}: ${failure.message}` }],
      fixes: [
        {
          kind: 'text',
          summary: `allow the identity running doctor ${call} (docs/doctor.md lists the read-only policy)`,
        },
      ],
    },
  ];
}

/**
 * explain speaks of a task and its execution role; in CodeBuild the build runs and its service role reads
 * the secrets.
 */
function inBuildTerms(summary: string): string {
  return summary.replace(/^Execution role /, 'CodeBuild service role ').replace(/\bthe task\b/g, 'the build');
}

/** explain writes `<image>` when the message names none; doctor knows the task's image when it has one. */
function withImage(summary: string, references: string[]): string {
  const [only] = references;
  return references.length === 1 && only ? summary.replaceAll('<image>', only) : summary;
}
