/**
 * Failures a user can meet outside the HTTP API. Each has a stable code to match on, and a hint that says
 * what to do. The CLI maps them to exit codes (docs/cli.md).
 */
import { redactUrlCredentials } from '../shared/url-credentials.ts';

export type PullsafeErrorCode =
  | 'CONFIG_INVALID'
  | 'CONFIG_UNREADABLE'
  | 'USAGE'
  | 'LISTEN_FAILED'
  | 'STORAGE_UNAVAILABLE'
  | 'AUTH_CONFIG_INVALID'
  | 'MANIFEST_INVALID'
  | 'DIGEST_MISMATCH'
  | 'LAYOUT_INVALID'
  | 'QUOTA_RESERVE_REACHED'
  | 'REGISTRY_UNAUTHORIZED'
  | 'REGISTRY_DENIED'
  | 'REGISTRY_NOT_FOUND'
  | 'REGISTRY_REJECTED'
  | 'RATE_LIMITED'
  | 'REGISTRY_UNAVAILABLE'
  | 'CREDENTIALS_INVALID'
  | 'AWS_NO_CREDENTIALS'
  | 'AWS_CREDENTIALS_REFUSED'
  | 'AWS_ACCESS_DENIED'
  | 'AWS_NOT_FOUND'
  | 'AWS_UNAVAILABLE'
  | 'INTERNAL';

export class PullsafeError extends Error {
  readonly code: PullsafeErrorCode;
  readonly hint: string | undefined;

  constructor(code: PullsafeErrorCode, message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'PullsafeError';
    this.code = code;
    this.hint = options.hint;
  }
}

const secretKey = String.raw`(?:password|passwd|secret|token|access_token|refresh_token|x-amz-security-token|x-amz-signature|signature)`;

/**
 * A secret field is a key in a key position: `key=value` anywhere (query strings, env lines), a quoted
 * `"key": value` (JSON), or `key: value` at the start of a line or after `{` / `,` (YAML, logfmt-ish
 * dumps). Prose that merely holds the word ("fetch anonymous token: unexpected status") is left alone, and
 * a value ends at the characters that close it, so what follows it (`",` in JSON, `&` in a query) stays.
 */
const secretPatterns: [RegExp, string][] = [
  [/(authorization:\s*)(basic|bearer)\s+[^\s"',]+/gi, '$1$2 [redacted]'],
  [new RegExp(String.raw`(\b${secretKey}=)([^\s&"',;}]+)`, 'gi'), '$1[redacted]'],
  [new RegExp(String.raw`("${secretKey}"\s*:\s*)("(?:[^"\\]|\\.)*"|[^\s,}\]]+)`, 'gi'), '$1[redacted]'],
  [
    new RegExp(
      String.raw`((?:^|[\n{,])[ \t]*['"]?${secretKey}['"]?[ \t]*:[ \t]*)("[^"]*"|'[^']*'|[^\s,}]+)`,
      'gi',
    ),
    '$1[redacted]',
  ],
  [/\b(AKIA|ASIA)[A-Z0-9]{16}\b/g, '[redacted-aws-key]'],
];

/**
 * Removes credentials from text meant for logs, errors or reports: the userinfo of URLs (see
 * `shared/url-credentials.ts`), Authorization header values, `password`/`secret`/`token` fields and AWS
 * access key ids.
 */
export function redact(text: string): string {
  let result = redactUrlCredentials(text);
  for (const [pattern, replacement] of secretPatterns) result = result.replace(pattern, replacement);
  return result;
}

/** An error as fields for a JSON event or a report: its stable code, message and hint, redacted. */
export function errorFields(error: unknown): { code: string; message: string; hint?: string } {
  if (error instanceof PullsafeError) {
    return { code: error.code, message: error.message, ...(error.hint ? { hint: error.hint } : {}) };
  }
  return { code: 'INTERNAL', message: redact((error as Error)?.message ?? String(error)) };
}
