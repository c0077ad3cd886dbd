/**
 * Manifest and index validation for pushes. The bytes are never re-serialised: callers store exactly what
 * was sent, and this module only reads them to learn the kind, the references that must exist, and the
 * referrers metadata (subject, artifactType, annotations).
 */
import { z } from 'zod';
import { OciError } from './errors.ts';
import { isDigest, type Digest } from './digest.ts';
import { jsonNestsDeeperThan } from './json-depth.ts';
import { bareMediaType, isSchema1, manifestKinds, mediaTypes, type ManifestKind } from './mediatypes.ts';

const descriptorSchema = z.object({
  mediaType: z.string().min(1).max(255),
  digest: z.string().refine(isDigest, 'must be a sha256 or sha512 digest'),
  size: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  urls: z.array(z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
  artifactType: z.string().optional(),
  platform: z
    .object({
      architecture: z.string(),
      os: z.string(),
      variant: z.string().optional(),
      'os.version': z.string().optional(),
      'os.features': z.array(z.string()).optional(),
      features: z.array(z.string()).optional(),
    })
    .optional(),
});

export type Descriptor = z.infer<typeof descriptorSchema> & { digest: Digest };

const imageSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  artifactType: z.string().optional(),
  config: descriptorSchema,
  layers: z.array(descriptorSchema),
  subject: descriptorSchema.optional(),
  annotations: z.record(z.string(), z.string()).optional(),
});

const indexSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  artifactType: z.string().optional(),
  manifests: z.array(descriptorSchema),
  subject: descriptorSchema.optional(),
  annotations: z.record(z.string(), z.string()).optional(),
});

export interface ParsedManifest {
  mediaType: string;
  kind: ManifestKind;
  /** Blobs an image manifest needs in the repository (config and distributable layers). */
  blobs: Descriptor[];
  /** Manifests an index needs in the repository. */
  manifests: Descriptor[];
  subject?: Descriptor;
  /** For the referrers API: the artifactType field, else the config media type of an image manifest. */
  artifactType?: string;
  annotations?: Record<string, string>;
}

const genericContentTypes = new Set(['', 'application/json', 'application/octet-stream', 'text/plain']);

/**
 * How deeply a manifest may nest arrays and objects. Real manifests and indexes stop at about 5 (index →
 * manifests → descriptor → platform → os.features); the bound only keeps the parser from spending seconds
 * on millions of nested brackets.
 */
export const maxManifestDepth = 64;

/**
 * Validates a pushed manifest. `contentType` is the request's Content-Type. Throws MANIFEST_INVALID with a
 * detail a user can act on; text nested deeper than `maxManifestDepth` is refused before it is parsed.
 */
export function parseManifest(bytes: Uint8Array, contentType: string | undefined): ParsedManifest {
  if (jsonNestsDeeperThan(bytes, maxManifestDepth)) {
    throw new OciError('MANIFEST_INVALID', `manifest nests deeper than ${maxManifestDepth} levels`, {
      limit: maxManifestDepth,
    });
  }
  let document: unknown;
  try {
    document = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch (error) {
    throw new OciError('MANIFEST_INVALID', 'manifest is not valid JSON', {
      reason: (error as Error).message,
    });
  }
  if (typeof document !== 'object' || document === null || Array.isArray(document)) {
    throw new OciError('MANIFEST_INVALID', 'manifest must be a JSON object');
  }
  const fields = document as Record<string, unknown>;
  const headerType = bareMediaType(contentType ?? '');
  const bodyType = typeof fields.mediaType === 'string' ? fields.mediaType : undefined;

  if (
    fields.schemaVersion === 1 ||
    isSchema1(headerType) ||
    (bodyType !== undefined && isSchema1(bodyType))
  ) {
    throw new OciError(
      'MANIFEST_INVALID',
      'Docker schema 1 manifests are not supported; convert the image with `skopeo copy --format v2s2` or push it again with a current client',
      { mediaType: bodyType ?? headerType },
    );
  }

  let mediaType: string;
  if (bodyType !== undefined && !genericContentTypes.has(headerType) && bodyType !== headerType) {
    throw new OciError('MANIFEST_INVALID', 'Content-Type does not match the manifest mediaType field', {
      contentType: headerType,
      mediaType: bodyType,
    });
  }
  if (bodyType !== undefined) mediaType = bodyType;
  else if (!genericContentTypes.has(headerType)) mediaType = headerType;
  else if (Array.isArray(fields.manifests)) mediaType = mediaTypes.ociIndex;
  else mediaType = mediaTypes.ociManifest;

  const kind = manifestKinds.get(mediaType);
  if (!kind) {
    throw new OciError('MANIFEST_INVALID', `unsupported manifest media type: ${mediaType.slice(0, 255)}`, {
      supported: [...manifestKinds.keys()],
    });
  }
  if (kind === 'image' && Array.isArray(fields.manifests)) {
    throw new OciError('MANIFEST_INVALID', 'an image manifest cannot carry a manifests list', { mediaType });
  }

  if (kind === 'image') {
    const result = imageSchema.safeParse(document);
    if (!result.success) throw invalid(result.error);
    const manifest = result.data;
    const parsed: ParsedManifest = {
      mediaType,
      kind,
      blobs: [manifest.config, ...manifest.layers] as Descriptor[],
      manifests: [],
      artifactType: manifest.artifactType ?? manifest.config.mediaType,
    };
    if (manifest.subject) parsed.subject = manifest.subject as Descriptor;
    if (manifest.annotations) parsed.annotations = manifest.annotations;
    return parsed;
  }
  const result = indexSchema.safeParse(document);
  if (!result.success) throw invalid(result.error);
  const index = result.data;
  const parsed: ParsedManifest = { mediaType, kind, blobs: [], manifests: index.manifests as Descriptor[] };
  if (index.artifactType) parsed.artifactType = index.artifactType;
  if (index.subject) parsed.subject = index.subject as Descriptor;
  if (index.annotations) parsed.annotations = index.annotations;
  return parsed;
}

function invalid(error: z.ZodError): OciError {
  const issues = error.issues.slice(0, 5).map((issue) => ({
    path: issue.path.join('.'),
    message: issue.message,
  }));
  const first = issues[0];
  return new OciError(
    'MANIFEST_INVALID',
    first ? `manifest invalid at ${first.path || '(root)'}: ${first.message}` : 'manifest invalid',
    { issues },
  );
}

/** Picks the manifest a client that cannot read indexes should get: linux/amd64, as distribution does. */
export function defaultPlatformManifest(indexBytes: Uint8Array): Descriptor | undefined {
  try {
    const parsed = parseManifest(indexBytes, undefined);
    return parsed.manifests.find(
      (entry) => entry.platform?.os === 'linux' && entry.platform.architecture === 'amd64',
    );
  } catch {
    return undefined;
  }
}
