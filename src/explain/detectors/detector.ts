/** What a detector reads (the message, its evidence and what it is about) and what it returns. */
import { catalogue, type CauseId } from '../catalogue.ts';
import type { Cause, Confidence, EvidenceValue } from '../cause.ts';
import type { Extracted } from '../evidence.ts';

/** A cause with its place: a lower rank is more specific, and comes first. */
export interface Candidate extends Cause {
  rank: number;
}

export interface Context {
  text: string;
  x: Extracted;
  /** The request never got an answer (timeout, refused, cancelled, SDK StatusCode 0). */
  transport: boolean;
  secrets: boolean;
  logs: boolean;
  ecrAuth: boolean;
  layers: boolean;
  /** The message is about the ECR API/registry (auth call or dkr host). */
  ecrHost: boolean;
}

export type Detector = (ctx: Context) => Candidate[];

/** A candidate; evidence without a value (undefined, an empty list) is left out. */
export function make(
  id: CauseId,
  rank: number,
  confidence: Confidence,
  summary: string,
  rationale: string,
  evidence: Record<string, EvidenceValue | undefined>,
  fixes: string[],
): Candidate {
  const kept: Record<string, EvidenceValue> = {};
  for (const [key, value] of Object.entries(evidence)) {
    if (value === undefined) continue;
    if (Array.isArray(value) && !value.length) continue;
    kept[key] = value;
  }
  return { id, summary, meaning: catalogue[id].meaning, confidence, rationale, evidence: kept, fixes, rank };
}
