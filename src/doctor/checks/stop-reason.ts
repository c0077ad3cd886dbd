/** The task's own error text, read by `explain`: what ECS said, before doctor says why. */
import { explain } from '../../explain/index.ts';
import type { Check, Finding } from '../types.ts';

export const stopReasonCheck: Check = (facts) => {
  const findings: Finding[] = [];
  const seen = new Set<string>();
  for (const reason of facts.stopReasons) {
    if (seen.has(reason.text)) continue;
    seen.add(reason.text);
    const result = explain(reason.text);
    const [first, ...others] = result.causes;
    if (!first) continue;
    const pullRelated = first.id !== 'unknown';
    if (!pullRelated && !/pull|image|secret|log|registry/i.test(reason.text)) continue;
    findings.push({
      id: 'stop-reason',
      cause: first.id,
      hop: 'stop-reason',
      severity: pullRelated ? 'error' : 'info',
      certainty:
        first.confidence === 'high' ? 'certain' : first.confidence === 'medium' ? 'likely' : 'possible',
      title: withImage(
        first.summary,
        facts.images.map((image) => image.reference),
      ),
      detail: `${reason.task} stopped with: ${result.message}`,
      evidence: [
        { label: 'task', value: reason.task },
        ...Object.entries(first.evidence).map(([label, value]) => ({
          label,
          value: Array.isArray(value) ? value.join(', ') : String(value),
        })),
        ...others.map((cause) => ({ label: 'also possible', value: `${cause.id}: ${cause.summary}` })),
      ],
      fixes: first.fixes.map((summary) => ({ kind: 'text' as const, summary })),
    });
  }
  return findings;
};

/** explain writes `<image>` when the message names none; doctor knows the task's image when it has one. */
function withImage(summary: string, references: string[]): string {
  const [only] = references;
  return references.length === 1 && only ? summary.replaceAll('<image>', only) : summary;
}
