export { explain, type ExplainOptions, type ExplainResult } from './explain.ts';
export type { Cause, Confidence, EvidenceValue } from './cause.ts';
export { catalogue, causeIds, isCauseId, type CatalogueEntry, type CauseId } from './catalogue.ts';
export { readMessage, type DeniedBy, type Extracted, type ReadMessage } from './evidence.ts';
export {
  classifyIp,
  s3RangesFromIpRanges,
  type IpClass,
  type IpClassification,
  type S3Range,
} from './ip-class.ts';
