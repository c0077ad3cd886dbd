/**
 * Registry failures as `PullsafeError`s that also carry what a caller may act on: the HTTP status, the
 * registry's own error code, `Retry-After` and the quota. Messages name the image (or repository), the
 * registry host and the HTTP status; they never contain header values, tokens or passwords.
 */
import { PullsafeError, redact, type PullsafeErrorCode } from '../errors/index.ts';
import type { RateLimit } from './ratelimit.ts';

export interface RegistryErrorDetails {
  /** Registry as in the image reference, e.g. `docker.io`. */
  registry: string;
  /** The host that answered (or did not), e.g. `registry-1.docker.io` or `auth.docker.io`. */
  host: string;
  repository?: string;
  /** Tag or digest, when the operation was about one. */
  reference?: string;
  /** HTTP status, when there was an answer. */
  status?: number;
  /** The first `code` of the registry's error body, e.g. `MANIFEST_UNKNOWN`, `TOOMANYREQUESTS`. */
  registryCode?: string;
  retryAfterSeconds?: number;
  rateLimit?: RateLimit;
}

export class RegistryError extends PullsafeError {
  readonly registry: string;
  readonly host: string;
  readonly repository: string | undefined;
  readonly reference: string | undefined;
  readonly status: number | undefined;
  readonly registryCode: string | undefined;
  readonly retryAfterSeconds: number | undefined;
  readonly rateLimit: RateLimit | undefined;

  constructor(
    code: PullsafeErrorCode,
    message: string,
    details: RegistryErrorDetails,
    options: { hint?: string; cause?: unknown } = {},
  ) {
    super(code, redact(message), {
      ...(options.hint !== undefined ? { hint: redact(options.hint) } : {}),
      ...(options.cause !== undefined ? { cause: options.cause } : {}),
    });
    this.name = 'RegistryError';
    this.registry = details.registry;
    this.host = details.host;
    this.repository = details.repository;
    this.reference = details.reference;
    this.status = details.status;
    this.registryCode = details.registryCode;
    this.retryAfterSeconds = details.retryAfterSeconds;
    this.rateLimit = details.rateLimit;
  }
}

export function isRegistryError(value: unknown): value is RegistryError {
  return value instanceof RegistryError;
}
