/**
 * The distribution API's route table. Repository names contain '/', so each route anchors on its last
 * fixed segment: the name is everything before it. Nothing is percent-decoded; names and references
 * are validated by the handlers.
 */

export type RouteName =
  'base' | 'catalog' | 'tags' | 'manifest' | 'blob' | 'upload-start' | 'upload' | 'referrers';

export interface Route {
  route: RouteName;
  name?: string;
  reference?: string;
}

const table: { route: RouteName; pattern: RegExp }[] = [
  { route: 'tags', pattern: /^\/v2\/(.+)\/tags\/list$/ },
  { route: 'manifest', pattern: /^\/v2\/(.+)\/manifests\/([^/]+)$/ },
  { route: 'upload-start', pattern: /^\/v2\/(.+)\/blobs\/uploads\/?$/ },
  { route: 'upload', pattern: /^\/v2\/(.+)\/blobs\/uploads\/([^/]+)$/ },
  { route: 'blob', pattern: /^\/v2\/(.+)\/blobs\/([^/]+)$/ },
  { route: 'referrers', pattern: /^\/v2\/(.+)\/referrers\/([^/]+)$/ },
];

export const allowedMethods: Record<RouteName, string[]> = {
  base: ['GET', 'HEAD'],
  catalog: ['GET'],
  tags: ['GET'],
  manifest: ['GET', 'HEAD', 'PUT', 'DELETE'],
  blob: ['GET', 'HEAD', 'DELETE'],
  'upload-start': ['POST'],
  upload: ['GET', 'PATCH', 'PUT', 'DELETE'],
  referrers: ['GET'],
};

export function matchRoute(path: string): Route | undefined {
  if (path === '/v2/' || path === '/v2') return { route: 'base' };
  if (path === '/v2/_catalog') return { route: 'catalog' };
  if (!path.startsWith('/v2/')) return undefined;
  for (const { route, pattern } of table) {
    const match = pattern.exec(path);
    if (match) {
      const result: Route = { route, name: match[1]! };
      if (match[2] !== undefined) result.reference = match[2];
      return result;
    }
  }
  return undefined;
}
