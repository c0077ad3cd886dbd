/** The Distribution API endpoints of the fake upstream: manifests, blobs, uploads, tags, referrers. */
import { randomUUID } from 'node:crypto';
import type { FakeAuth } from './auth.ts';
import { digestOf, referencedContent, referrerOf, type FakeContent } from './content.ts';
import type { FakeFaults } from './faults.ts';
import {
  DIGEST_PATTERN,
  NAME_PATTERN,
  OCI_INDEX,
  readBody,
  send,
  sendError,
  TAG_PATTERN,
  type Context,
  type FakeUrls,
  type Route,
} from './http.ts';
import type { FakeQuota } from './rate-limit.ts';
import type { FakeUpstreamOptions, RateLimitOptions } from './types.ts';

const CDN_URL_LIFETIME_MS = 20 * 60 * 1000;

interface Upload {
  repository: string;
  chunks: Buffer[];
  size: number;
}

export interface RegistryParts {
  options: FakeUpstreamOptions;
  urls: FakeUrls;
  content: FakeContent;
  faults: FakeFaults;
  auth: FakeAuth;
  quota: FakeQuota;
}

/** Answers requests to the registry server, by their route (`routeRegistry`). */
export class FakeRegistry {
  private readonly options: FakeUpstreamOptions;
  private readonly urls: FakeUrls;
  private readonly content: FakeContent;
  private readonly faults: FakeFaults;
  private readonly auth: FakeAuth;
  private readonly quota: FakeQuota;
  private readonly rateLimit: RateLimitOptions | undefined;
  private readonly uploads = new Map<string, Upload>();

  constructor(parts: RegistryParts) {
    this.options = parts.options;
    this.urls = parts.urls;
    this.content = parts.content;
    this.faults = parts.faults;
    this.auth = parts.auth;
    this.quota = parts.quota;
    this.rateLimit = parts.options.rateLimit;
  }

  private handleManifest(ctx: Context, name: string, reference: string): Promise<void> | void {
    const method = ctx.req.method;
    if (method === 'PUT') return this.putManifest(ctx, name, reference);
    if (method !== 'GET' && method !== 'HEAD') {
      return sendError(ctx, 405, 'UNSUPPORTED', `${method} is not supported on manifests`);
    }
    const principal = this.auth.authorize(ctx, { name, actions: ['pull'] });
    if (!principal) return;
    const source = this.quota.rateSource(ctx, principal);
    if (this.rateLimit && method === 'GET') {
      const state = this.quota.quotaOf(source);
      if (state.used >= this.rateLimit.limit) {
        const retryAfter = Math.max(
          1,
          Math.ceil((state.windowStart + this.rateLimit.windowSeconds * 1000 - Date.now()) / 1000),
        );
        return sendError(
          ctx,
          429,
          'TOOMANYREQUESTS',
          'You have reached your pull rate limit. You may increase the limit by authenticating and upgrading: https://www.docker.com/increase-rate-limit',
          undefined,
          { ...this.quota.rateHeaders(source), 'Retry-After': String(retryAfter) },
        );
      }
    }
    if (!this.content.repositories.has(name)) {
      return sendError(
        ctx,
        404,
        'NAME_UNKNOWN',
        'repository name not known to registry',
        { name },
        this.quota.rateHeaders(source),
      );
    }
    const manifest = this.content.findManifest(name, reference);
    if (!manifest) {
      return sendError(
        ctx,
        404,
        'MANIFEST_UNKNOWN',
        'manifest unknown',
        { name, reference },
        this.quota.rateHeaders(source),
      );
    }
    if (this.rateLimit && method === 'GET') this.quota.quotaOf(source).used += 1;
    this.faults.sendContent(
      ctx,
      200,
      {
        ...this.quota.rateHeaders(source),
        'Content-Type': manifest.mediaType,
        'Docker-Content-Digest': manifest.digest,
        ETag: `"${manifest.digest}"`,
      },
      manifest.bytes,
    );
  }

  private async putManifest(ctx: Context, name: string, reference: string): Promise<void> {
    if (!this.auth.authorize(ctx, { name, actions: ['pull', 'push'] })) return;
    const isDigest = DIGEST_PATTERN.test(reference);
    if (!isDigest && !TAG_PATTERN.test(reference)) {
      return sendError(ctx, 400, 'TAG_INVALID', 'invalid tag', { tag: reference });
    }
    const bytes = await readBody(ctx.req);
    let doc: unknown;
    try {
      doc = JSON.parse(bytes.toString('utf8'));
    } catch {
      return sendError(ctx, 400, 'MANIFEST_INVALID', 'manifest is not valid JSON');
    }
    const declared = (doc as Record<string, unknown> | null)?.mediaType;
    const mediaType =
      ctx.req.headers['content-type']?.split(';')[0]?.trim() ||
      (typeof declared === 'string' ? declared : undefined);
    if (!mediaType) return sendError(ctx, 400, 'MANIFEST_INVALID', 'manifest media type unknown');
    if (isDigest && digestOf(bytes, reference.slice(0, reference.indexOf(':'))) !== reference) {
      return sendError(ctx, 400, 'DIGEST_INVALID', 'manifest digest did not match', { digest: reference });
    }
    const target = this.content.repositories.get(name);
    const { blobs, manifests } = referencedContent(doc);
    for (const digest of blobs) {
      if (!target?.blobs.has(digest)) {
        return sendError(ctx, 400, 'MANIFEST_BLOB_UNKNOWN', 'blob unknown to registry', { digest });
      }
    }
    for (const digest of manifests) {
      if (!target?.manifests.has(digest)) {
        return sendError(ctx, 400, 'MANIFEST_BLOB_UNKNOWN', 'manifest unknown to registry', { digest });
      }
    }
    const digest = this.content.storeManifest(name, reference, mediaType, bytes);
    const headers: Record<string, string> = {
      Location: `${this.urls.base}/v2/${name}/manifests/${digest}`,
      'Docker-Content-Digest': digest,
    };
    const referrer = referrerOf(mediaType, digest, bytes);
    if (referrer) headers['OCI-Subject'] = referrer.subject;
    send(ctx, 201, headers);
  }

  private handleBlob(ctx: Context, name: string, digest: string): void {
    const method = ctx.req.method;
    if (method !== 'GET' && method !== 'HEAD') {
      return sendError(ctx, 405, 'UNSUPPORTED', `${method} is not supported on blobs`);
    }
    if (!this.auth.authorize(ctx, { name, actions: ['pull'] })) return;
    if (!DIGEST_PATTERN.test(digest))
      return sendError(ctx, 400, 'DIGEST_INVALID', 'invalid digest', { digest });
    const target = this.content.repositories.get(name);
    if (!target)
      return sendError(ctx, 404, 'NAME_UNKNOWN', 'repository name not known to registry', { name });
    const data = target.blobs.get(digest);
    if (!data) return sendError(ctx, 404, 'BLOB_UNKNOWN', 'blob unknown to registry', { digest });
    if (method === 'GET' && this.options.blobRedirect) {
      const expires = Date.now() + CDN_URL_LIFETIME_MS;
      const [algorithm, hex] = digest.split(':') as [string, string];
      const location =
        `${this.urls.cdn}/registry-v2/docker/registry/v2/blobs/${algorithm}/${hex.slice(0, 2)}/${hex}/data` +
        `?verify=${expires}-${this.auth.sign(`${digest}:${expires}`)}`;
      return send(ctx, 307, { Location: location });
    }
    this.faults.serveBlob(ctx, data, digest);
  }

  private uploadLocation(name: string, uuid: string, size: number): string {
    const state = Buffer.from(JSON.stringify({ name, uuid, offset: size })).toString('base64url');
    return `${this.urls.base}/v2/${name}/blobs/uploads/${uuid}?_state=${state}`;
  }

  private uploadHeaders(name: string, uuid: string, size: number): Record<string, string> {
    return {
      Location: this.uploadLocation(name, uuid, size),
      Range: `0-${Math.max(0, size - 1)}`,
      'Docker-Upload-UUID': uuid,
    };
  }

  /** Verifies and stores finished upload bytes; answers 201 or DIGEST_INVALID. */
  private finishBlob(ctx: Context, name: string, expected: string | null, data: Buffer): void {
    if (!expected || !DIGEST_PATTERN.test(expected)) {
      return sendError(ctx, 400, 'DIGEST_INVALID', 'digest parameter missing or invalid', {
        digest: expected,
      });
    }
    const actual = digestOf(data, expected.slice(0, expected.indexOf(':')));
    if (actual !== expected) {
      return sendError(ctx, 400, 'DIGEST_INVALID', 'provided digest did not match uploaded content', {
        digest: expected,
      });
    }
    this.content.repo(name, true)!.blobs.set(expected, data);
    send(ctx, 201, {
      Location: `${this.urls.base}/v2/${name}/blobs/${expected}`,
      'Docker-Content-Digest': expected,
    });
  }

  private async handleUpload(ctx: Context, name: string, uuid: string | undefined): Promise<void> {
    const method = ctx.req.method ?? '';
    const params = ctx.url.searchParams;
    if (uuid === undefined) {
      if (method !== 'POST') return sendError(ctx, 405, 'UNSUPPORTED', `${method} is not supported here`);
      const principal = this.auth.authorize(ctx, { name, actions: ['pull', 'push'] });
      if (!principal) return;
      const mount = params.get('mount');
      const from = params.get('from');
      if (
        mount &&
        from &&
        !this.options.ignoreMounts &&
        NAME_PATTERN.test(from) &&
        this.auth.canPull(principal, from)
      ) {
        const source = this.content.repositories.get(from)?.blobs.get(mount);
        if (source) {
          this.content.repo(name, true)!.blobs.set(mount, source);
          return send(ctx, 201, {
            Location: `${this.urls.base}/v2/${name}/blobs/${mount}`,
            'Docker-Content-Digest': mount,
          });
        }
      }
      const digest = params.get('digest');
      if (digest && !mount) return this.finishBlob(ctx, name, digest, await readBody(ctx.req));
      const id = randomUUID();
      this.uploads.set(id, { repository: name, chunks: [], size: 0 });
      return send(ctx, 202, this.uploadHeaders(name, id, 0));
    }
    if (!this.auth.authorize(ctx, { name, actions: ['pull', 'push'] })) return;
    const upload = this.uploads.get(uuid);
    if (!upload || upload.repository !== name) {
      return sendError(ctx, 404, 'BLOB_UPLOAD_UNKNOWN', 'blob upload unknown to registry', { uuid });
    }
    if (method === 'GET') return send(ctx, 204, this.uploadHeaders(name, uuid, upload.size));
    if (method === 'DELETE') {
      this.uploads.delete(uuid);
      return send(ctx, 204, {});
    }
    if (method !== 'PATCH' && method !== 'PUT') {
      return sendError(ctx, 405, 'UNSUPPORTED', `${method} is not supported on uploads`);
    }
    const contentRange = ctx.req.headers['content-range'];
    if (contentRange) {
      const m = /^(?:bytes )?(\d+)-(\d+)(?:\/\d+|\/\*)?$/.exec(contentRange);
      if (!m || Number(m[1]) !== upload.size) {
        return send(ctx, 416, this.uploadHeaders(name, uuid, upload.size));
      }
    }
    const chunk = await readBody(ctx.req);
    upload.chunks.push(chunk);
    upload.size += chunk.length;
    if (method === 'PATCH') return send(ctx, 202, this.uploadHeaders(name, uuid, upload.size));
    this.uploads.delete(uuid);
    this.finishBlob(ctx, name, params.get('digest'), Buffer.concat(upload.chunks));
  }

  private handleTags(ctx: Context, name: string): void {
    if (ctx.req.method !== 'GET' && ctx.req.method !== 'HEAD') {
      return sendError(ctx, 405, 'UNSUPPORTED', 'tags/list is read-only');
    }
    if (!this.auth.authorize(ctx, { name, actions: ['pull'] })) return;
    const target = this.content.repositories.get(name);
    if (!target)
      return sendError(ctx, 404, 'NAME_UNKNOWN', 'repository name not known to registry', { name });
    const nParam = ctx.url.searchParams.get('n');
    const last = ctx.url.searchParams.get('last');
    let tags = [...target.tags.keys()].sort();
    if (last !== null) tags = tags.filter((t) => t > last);
    const headers: Record<string, string> = { 'Content-Type': 'application/json' };
    if (nParam !== null) {
      const n = Number(nParam);
      if (!/^\d+$/.test(nParam) || n > 10_000) {
        return sendError(ctx, 400, 'PAGINATION_NUMBER_INVALID', 'invalid number of results requested', {
          n: nParam,
        });
      }
      if (tags.length > n) {
        tags = tags.slice(0, n);
        const lastTag = tags[tags.length - 1];
        if (lastTag !== undefined) {
          headers.Link = `</v2/${name}/tags/list?n=${n}&last=${encodeURIComponent(lastTag)}>; rel="next"`;
        }
      }
    }
    send(ctx, 200, headers, JSON.stringify({ name, tags }));
  }

  private handleReferrers(ctx: Context, name: string, digest: string): void {
    if (ctx.req.method !== 'GET' && ctx.req.method !== 'HEAD') {
      return sendError(ctx, 405, 'UNSUPPORTED', 'referrers is read-only');
    }
    if (!this.auth.authorize(ctx, { name, actions: ['pull'] })) return;
    if (!DIGEST_PATTERN.test(digest))
      return sendError(ctx, 400, 'DIGEST_INVALID', 'invalid digest', { digest });
    const target = this.content.repositories.get(name);
    if (!target)
      return sendError(ctx, 404, 'NAME_UNKNOWN', 'repository name not known to registry', { name });
    const artifactType = ctx.url.searchParams.get('artifactType');
    let manifests = target.referrers.get(digest) ?? [];
    const headers: Record<string, string> = { 'Content-Type': OCI_INDEX };
    if (artifactType !== null) {
      manifests = manifests.filter((d) => d.artifactType === artifactType);
      headers['OCI-Filters-Applied'] = 'artifactType';
    }
    send(ctx, 200, headers, JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests }));
  }

  async routeRegistry(ctx: Context, route: Route): Promise<void> {
    if (route.kind === 'token') return this.auth.handleToken(ctx);
    if (route.kind === 'base') {
      if (ctx.req.method !== 'GET' && ctx.req.method !== 'HEAD') {
        return sendError(ctx, 405, 'UNSUPPORTED', 'method not allowed');
      }
      if (!this.auth.authorize(ctx)) return;
      return send(ctx, 200, { 'Content-Type': 'application/json' }, '{}');
    }
    if (route.kind === 'other' || route.name === undefined) {
      return sendError(ctx, 404, 'NOT_FOUND', 'no such endpoint');
    }
    if (!NAME_PATTERN.test(route.name)) {
      return sendError(ctx, 400, 'NAME_INVALID', 'invalid repository name', { name: route.name });
    }
    switch (route.kind) {
      case 'manifest':
        return this.handleManifest(ctx, route.name, route.reference ?? '');
      case 'blob':
        return this.handleBlob(ctx, route.name, route.reference ?? '');
      case 'upload':
        return this.handleUpload(ctx, route.name, route.uuid);
      case 'tags':
        return this.handleTags(ctx, route.name);
      case 'referrers':
        return this.handleReferrers(ctx, route.name, route.reference ?? '');
    }
  }
}
