/** Every extractor, in the order files are offered to them. */
import type { Extractor } from './types.ts';

export const allExtractors: Extractor[] = [];
