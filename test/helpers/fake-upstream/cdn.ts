/** The CDN that blob GETs are redirected to: signed URLs only, and it refuses an Authorization header. */
import { timingSafeEqual } from 'node:crypto';
import type { FakeAuth } from './auth.ts';
import type { FakeContent } from './content.ts';
import type { FakeFaults } from './faults.ts';
import { send, type Context } from './http.ts';

/** Answers one request to the CDN server. */
export function handleCdn(ctx: Context, content: FakeContent, auth: FakeAuth, faults: FakeFaults): void {
  if (ctx.req.headers.authorization !== undefined) {
    return send(
      ctx,
      400,
      { 'Content-Type': 'application/xml' },
      '<?xml version="1.0" encoding="UTF-8"?><Error><Code>InvalidArgument</Code><Message>Only one auth mechanism allowed; the signed URL and an Authorization header were both given</Message></Error>',
    );
  }
  if (ctx.req.method !== 'GET' && ctx.req.method !== 'HEAD') return send(ctx, 405, { Allow: 'GET, HEAD' });
  const m =
    /^\/registry-v2\/docker\/registry\/v2\/blobs\/(sha256|sha512)\/[a-f0-9]{2}\/([a-f0-9]+)\/data$/.exec(
      ctx.url.pathname,
    );
  const verify = /^(\d+)-([\w-]+)$/.exec(ctx.url.searchParams.get('verify') ?? '');
  if (!m) return send(ctx, 404, { 'Content-Type': 'text/plain' }, 'not found');
  const digest = `${m[1]}:${m[2]}`;
  const expected = verify ? Buffer.from(auth.sign(`${digest}:${verify[1]}`)) : undefined;
  const given = verify ? Buffer.from(verify[2]!) : undefined;
  if (
    !verify ||
    !expected ||
    !given ||
    expected.length !== given.length ||
    !timingSafeEqual(expected, given) ||
    Number(verify[1]) < Date.now()
  ) {
    return send(ctx, 403, { 'Content-Type': 'text/plain' }, 'signature invalid or expired');
  }
  for (const target of content.repositories.values()) {
    const data = target.blobs.get(digest);
    if (data) return faults.serveBlob(ctx, data, digest);
  }
  send(ctx, 404, { 'Content-Type': 'text/plain' }, 'not found');
}
