/**
 * `explain`: from the text of a failed pull to the causes in the catalogue, most specific first, each with
 * its evidence and fixes that carry the names from the message. Pure and offline.
 *
 * Ordering promise: a definite answer from a server (rate limit, platform, media type, not found, denied)
 * comes before a transport failure, and a transport failure comes before the step it interrupted (e.g. a
 * `dial tcp … i/o timeout` while fetching the ECR token is `network-*` first, `auth-ecr-token` after).
 */
import { catalogue } from './catalogue.ts';
import type { Cause, EvidenceValue } from './cause.ts';
import type { Candidate, Context, Detector } from './detectors/detector.ts';
import { rateLimit } from './detectors/rate-limit.ts';
import {
  referenceInvalid,
  execFormat,
  platformMismatch,
  mediaType,
  imageNotFound,
} from './detectors/image.ts';
import { diskFull, pullTimeout } from './detectors/host.ts';
import { logsGroupMissing, logsAccess, logsNetwork } from './detectors/logs.ts';
import { secretsNotFound, secretsAccess, secretsNetwork } from './detectors/secrets.ts';
import { ecrToken, ecrPermission, registryCredentials } from './detectors/auth.ts';
import { dns, tls, s3Layers, vpcEndpoint, noRoute, interrupted } from './detectors/network.ts';
import { readMessage, stripWrappers, type Extracted } from './evidence.ts';
import type { S3Range } from './ip-class.ts';
import { wording } from './wording.ts';

export interface ExplainResult {
  /** Most specific first; `[{ id: 'unknown', … }]` when nothing matched. */
  causes: Cause[];
  /** All evidence found in the message. */
  extracted: Extracted;
  /** The core of the evidence lines: wrappers stripped, credentials redacted, whitespace collapsed. */
  message: string;
  /**
   * The input's lines that a cause was read from, redacted, at most `evidenceLineLimit` of them (the last
   * ones), each cut to `evidenceLineLength` characters; when no line matched, the input's last lines.
   */
  lines: string[];
  /** How many lines the input had. */
  inputLines: number;
}

/** Bounds on what is shown of the input: a 6 MB build log gives a few lines, not 6 MB. */
export const evidenceLineLimit = 12;
export const evidenceLineLength = 1000;

export interface ExplainOptions {
  /** Amazon S3 prefixes to classify `dial tcp` addresses with, instead of the embedded table. */
  s3Ranges?: readonly S3Range[];
}

/** Explains a pull error. Empty input gives `unknown` with nothing extracted. */
export function explain(text: string, options: ExplainOptions = {}): ExplainResult {
  const read = readMessage(text, options.s3Ranges);
  const x = read.extracted;
  const t = read.text;
  const ctx: Context = {
    text: t,
    x,
    transport: wording.transport.test(t) || x.sdkStatusCode === 0,
    secrets:
      /unable to retrieve secrets? from (?:asm|ssm)|secrets ?manager|secretsmanager|ssm:|parameter store|GetSecretValue|GetParameters?\b|failed to fetch secret|asm fetching/i.test(
        t,
      ),
    logs: /log group|\blogs:|logging driver|logger args|cloudwatch log/i.test(t),
    ecrAuth: wording.ecrAuth.test(t) || /api\.ecr\./i.test(t),
    layers:
      /starport-layer-bucket/.test(t) ||
      x.ipClass === 'amazon-s3' ||
      x.layerUrlRedacted === true ||
      (x.hosts ?? []).some((host) => /(?:^|\.)s3[.-]([a-z0-9-]+\.)?amazonaws\.com(?:\.cn)?$/.test(host)),
    ecrHost: /\.dkr\.ecr\.|api\.ecr\.|ecr:/.test(t),
  };

  const candidates: Candidate[] = [];
  for (const detect of detectors) {
    for (const candidate of detect(ctx)) {
      if (!candidates.some((existing) => existing.id === candidate.id)) candidates.push(candidate);
    }
  }
  candidates.sort((a, b) => a.rank - b.rank);
  const causes: Cause[] = candidates.map(({ rank: _rank, ...cause }) => cause);
  if (!causes.length) causes.push(unknownCause(x));
  const all = t ? t.split(/\r?\n/) : [];
  const lines = evidenceLines(all);
  const message = stripWrappers(lines.join('\n')) || lines.join(' ');
  return { causes, extracted: x, message, lines, inputLines: all.length };
}

/**
 * The lines worth showing: those matching a wording the detectors read, without repeats, the last
 * `evidenceLineLimit` of them (a log ends with its failure); when none matches, the last three lines.
 */
function evidenceLines(all: string[]): string[] {
  const patterns = Object.values(wording);
  const seen = new Set<string>();
  const matching: string[] = [];
  const nonEmpty: string[] = [];
  for (const raw of all) {
    const line = raw.trim();
    if (!line) continue;
    nonEmpty.push(line);
    if (seen.has(line) || !patterns.some((pattern) => pattern.test(line))) continue;
    seen.add(line);
    matching.push(line);
  }
  const chosen = matching.length ? matching.slice(-evidenceLineLimit) : nonEmpty.slice(-3);
  return chosen.map(shorten);
}

/** A line cut to `evidenceLineLength` characters, keeping its start (the wrappers) and its end (the answer). */
function shorten(line: string): string {
  if (line.length <= evidenceLineLength) return line;
  const head = Math.floor(evidenceLineLength * 0.3);
  const tail = evidenceLineLength - head - 3;
  return `${line.slice(0, head)} … ${line.slice(-tail)}`;
}

function unknownCause(x: Extracted): Cause {
  const evidence: Record<string, EvidenceValue> = {};
  for (const [key, value] of Object.entries(x)) {
    if (value !== undefined && key !== 'wrappers') evidence[key] = value as EvidenceValue;
  }
  return {
    id: 'unknown',
    summary: catalogue.unknown.title,
    meaning: catalogue.unknown.meaning,
    confidence: 'low',
    rationale: 'no catalogue wording matched',
    evidence,
    fixes: [
      'run `pullsafe doctor --cluster <cluster> --task <task>` to check the roles, network and image of the task directly',
      'if the message is from a pull, please report it so the catalogue can learn its wording',
    ],
  };
}

/** Every detector, in the order their causes are listed when two have the same rank. */
const detectors: Detector[] = [
  rateLimit,
  referenceInvalid,
  execFormat,
  platformMismatch,
  mediaType,
  diskFull,
  logsGroupMissing,
  logsAccess,
  logsNetwork,
  secretsNotFound,
  secretsAccess,
  secretsNetwork,
  ecrToken,
  ecrPermission,
  registryCredentials,
  imageNotFound,
  dns,
  tls,
  s3Layers,
  vpcEndpoint,
  noRoute,
  interrupted,
  pullTimeout,
];
