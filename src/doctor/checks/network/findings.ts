/** Network findings as drafts, merged across subnets and services before they are worded. */
import { list } from '../../text.ts';
import { hopOrder } from '../../types.ts';
import type { Certainty, Evidence, Finding, Fix, Hop, Severity } from '../../types.ts';
import type { Target } from './targets.ts';

interface Draft {
  id: string;
  cause: string;
  severity: Severity;
  certainty: Certainty;
  hops: Set<Hop>;
  targets: string[];
  subnets: string[];
  /** Address ranges the finding is about, gathered across merges (NACL findings). */
  peers: string[];
  title: (targets: string, peers: string) => string;
  detail: (targets: string, subnets: string, peers: string) => string;
  evidence: Evidence[];
  fixes: Fix[];
}

export type DraftSpec = Omit<Draft, 'hops' | 'targets' | 'subnets' | 'peers'> & { peers?: string[] };

const severityRank: Record<Severity, number> = { error: 0, warning: 1, unchecked: 2, info: 3 };
const certaintyRank: Record<Certainty, number> = { certain: 0, likely: 1, possible: 2 };

/**
 * The network findings of one run, merged by key: one finding names every target and subnet it applies to,
 * at the worst severity and the firmest certainty seen.
 */
export class Findings {
  readonly drafts = new Map<string, Draft>();

  add(key: string, spec: DraftSpec, target: Target | undefined, subnetId: string | undefined): void {
    let draft = this.drafts.get(key);
    if (draft === undefined) {
      draft = { ...spec, hops: new Set(), targets: [], subnets: [], peers: [], evidence: [], fixes: [] };
      this.drafts.set(key, draft);
    } else {
      if (severityRank[spec.severity] < severityRank[draft.severity]) draft.severity = spec.severity;
      if (certaintyRank[spec.certainty] < certaintyRank[draft.certainty]) draft.certainty = spec.certainty;
    }
    if (target !== undefined) {
      draft.hops.add(target.hop);
      if (!draft.targets.includes(target.name)) draft.targets.push(target.name);
    }
    if (subnetId !== undefined && !draft.subnets.includes(subnetId)) draft.subnets.push(subnetId);
    for (const peer of spec.peers ?? []) if (!draft.peers.includes(peer)) draft.peers.push(peer);
    for (const item of spec.evidence) {
      if (!draft.evidence.some((seen) => seen.label === item.label && seen.value === item.value)) {
        draft.evidence.push(item);
      }
    }
    for (const fix of spec.fixes) {
      if (!draft.fixes.some((seen) => seen.summary === fix.summary && seen.content === fix.content)) {
        draft.fixes.push(fix);
      }
    }
  }

  result(fallbackHop: Hop): Finding[] {
    return [...this.drafts.values()].map((draft) => {
      const targets = list(draft.targets);
      const subnets = list(draft.subnets);
      const peers = list(draft.peers);
      return {
        id: draft.id,
        cause: draft.cause,
        hop: hopOrder.find((hop) => draft.hops.has(hop)) ?? fallbackHop,
        severity: draft.severity,
        certainty: draft.certainty,
        title: draft.title(targets, peers),
        detail: draft.detail(targets, subnets, peers),
        evidence: [...draft.subnets.map((value) => ({ label: 'subnet', value })), ...draft.evidence],
        fixes: draft.fixes,
      };
    });
  }
}

/** A finding's words, given the targets, subnets and peer ranges it ends up covering. */
export type Wording = Pick<Draft, 'title' | 'detail'>;
