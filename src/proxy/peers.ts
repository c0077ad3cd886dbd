/**
 * Fills shared between replicas: a client on a replica that is not filling a blob gets the bytes from the
 * replica that is, as they arrive, instead of waiting for the fill to be committed. The filling replica
 * records where it answers (`fill-at:` in the coordinator); the others GET its spool at
 * `/_pullsafe/peer/fills/UPSTREAM/DIGEST`, with a token signed by the replicas' shared key (serve's
 * `--secret-file`) that names the digest and expires within a minute. The bytes are verified against the
 * digest as they arrive, as an upstream's are. Without the shared key nothing is asked or answered, and a
 * waiting replica waits for the commit, as before.
 */
import type { Readable } from 'node:stream';
import { Agent, request } from 'undici';
import { verifiedStream } from '../client/index.ts';
import type { Digest } from '../oci/digest.ts';
import { sign, signedByAny } from '../shared/signing.ts';
import type { FillSource } from './fill.ts';

export const peerFillPrefix = '/_pullsafe/peer/fills/';
export const peerTokenHeader = 'x-pullsafe-peer';
const tokenLifetimeMs = 60_000;
/**
 * Replicas are on one network: one that does not answer within 2 s is gone (or unreachable, a security
 * group), and the waiting replica goes back to waiting for the commit rather than holding its client.
 */
const peerAgent = new Agent({ connect: { timeout: 2_000 }, keepAliveTimeout: 4_000 });

export interface PeerOptions {
  /** Keys shared by the replicas: the first signs, every one verifies. */
  keys: readonly Buffer[];
  /** Where the other replicas reach this one (`http://HOST:PORT`); set once the listener is up. */
  url?: string;
}

/** What a peer token signs: the fill and the token's expiry. */
function tokenText(upstream: string, digest: string, expiresAt: number): string {
  return `peer-fill\n${upstream}\n${digest}\n${expiresAt}`;
}

/** The token a replica sends for one fill: `EXPIRES.SIGNATURE`. */
export function peerToken(
  keys: readonly Buffer[],
  upstream: string,
  digest: string,
  now = Date.now(),
): string {
  const expiresAt = now + tokenLifetimeMs;
  return `${expiresAt}.${sign(keys, tokenText(upstream, digest, expiresAt))}`;
}

/** Whether `token` was signed by one of `keys` for this fill and has not expired. */
export function checkPeerToken(
  keys: readonly Buffer[],
  upstream: string,
  digest: string,
  token: string | undefined,
  now = Date.now(),
): boolean {
  const match = /^(\d{13})\.([\w-]{43})$/.exec(token ?? '');
  if (!match) return false;
  const expiresAt = Number(match[1]);
  if (expiresAt < now || expiresAt > now + 2 * tokenLifetimeMs) return false;
  return signedByAny(keys, tokenText(upstream, digest, expiresAt), match[2]!);
}

/**
 * The bytes of a fill under way on the replica at `peerUrl`, verified as they arrive; undefined when that
 * replica has no such fill (any answer but 200), or cannot be reached.
 */
export async function openPeerFill(
  peerUrl: string,
  keys: readonly Buffer[],
  upstream: string,
  digest: Digest,
): Promise<FillSource | undefined> {
  const url = new URL(`${peerFillPrefix}${encodeURIComponent(upstream)}/${digest}`, peerUrl);
  let answer;
  try {
    answer = await request(url, {
      method: 'GET',
      headers: { [peerTokenHeader]: peerToken(keys, upstream, digest) },
      dispatcher: peerAgent,
      headersTimeout: 10_000,
      bodyTimeout: 60_000,
    });
  } catch {
    return undefined;
  }
  if (answer.statusCode !== 200) {
    await answer.body.dump().catch(() => undefined);
    return undefined;
  }
  const length = Number(answer.headers['content-length']);
  const size = Number.isSafeInteger(length) ? length : undefined;
  const body: Readable = answer.body;
  const stream = verifiedStream(body, {
    digest,
    ...(size !== undefined ? { size } : {}),
    label: `blob ${digest} from the replica at ${url.origin}`,
  });
  return {
    size,
    stream,
    done: () => {
      if (!stream.destroyed && !stream.readableEnded) stream.destroy();
    },
  };
}
