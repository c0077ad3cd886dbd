/** A cause as `explain` reports it: a catalogue id, with what one message says about it and how to fix it. */
import type { CauseId } from './catalogue.ts';

export type Confidence = 'high' | 'medium' | 'low';

export type EvidenceValue = string | number | boolean | string[];

export interface Cause {
  /** A catalogue id (src/explain/catalogue.ts). */
  id: CauseId;
  /** One line naming what failed, with the names from the message. */
  summary: string;
  /** What the cause means. */
  meaning: string;
  /** How sure the reading is: `high` when the wording names the cause, lower when inferred. */
  confidence: Confidence;
  /** Why this cause is where it is in the list. */
  rationale: string;
  /** The evidence relevant to this cause. */
  evidence: Record<string, EvidenceValue>;
  /** Concrete steps, most direct first, with names from the message filled in. */
  fixes: string[];
}
