/**
 * The wait before a retry: exponential, capped, and jittered so that clients that failed together do not
 * retry together. One rule for every retry loop (the registry transport, doctor's AWS calls).
 */

export interface BackoffOptions {
  /** The wait before the first retry, before jitter; each further retry doubles it. */
  baseDelayMs: number;
  /** Upper bound of one wait before jitter; unbounded when absent. */
  maxDelayMs?: number;
}

/**
 * Milliseconds to wait before retry number `attempt` (1-based): base·2^(attempt-1), capped at `maxDelayMs`,
 * then a random point between half of that and all of it (`random` returns [0, 1), as `Math.random`).
 */
export function backoffDelay(
  attempt: number,
  options: BackoffOptions,
  random: () => number = Math.random,
): number {
  const doubled = options.baseDelayMs * 2 ** Math.max(0, attempt - 1);
  const ceiling = Math.min(options.maxDelayMs ?? Number.POSITIVE_INFINITY, doubled);
  return Math.round(ceiling * (0.5 + random() / 2));
}
