export {
  PullThroughCache,
  type BlobSource,
  type CacheOptions,
  type CacheRoute,
  type ManifestOutcome,
} from './cache.ts';
export { CacheMetrics, type CacheResult } from './metrics.ts';
export { peerFillPrefix, peerTokenHeader, type PeerOptions } from './peers.ts';
export { Upstream, UpstreamFailure, type UpstreamOptions } from './upstream.ts';
export {
  LocalCoordinator,
  RedisCoordinator,
  type Coordinator,
  type Lease,
  type RedisLike,
} from './coordination.ts';
export {
  RedisLinkRemovals,
  type RedisLinkRemovalOptions,
  type RedisPublisherLike,
  type RedisSubscriberLike,
} from './link-channel.ts';
