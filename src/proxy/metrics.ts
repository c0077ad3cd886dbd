/**
 * What the cache did, per upstream, for /metrics (Prometheus text) and /status (JSON): how requests were
 * answered, bytes served and fetched, what the upstream answered and how fast, and its quota.
 */

/**
 * How a request was answered: `hit` from storage, `miss` fetched for it, `coalesced` joined a fetch under
 * way, `revalidated` after one HEAD, `stale` held content because the upstream could not be asked,
 * `negative` a remembered 404, `error` the upstream's failure passed on.
 */
export type CacheResult = 'hit' | 'miss' | 'coalesced' | 'revalidated' | 'stale' | 'negative' | 'error';

const latencyBuckets = [0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30];

export class CacheMetrics {
  private readonly results = new Map<string, number>();
  private readonly served = new Map<string, number>();
  private readonly fetchedBytes = new Map<string, number>();
  private readonly peerFills = new Map<string, number>();
  private readonly peerBytes = new Map<string, number>();
  private readonly upstreamStatus = new Map<string, number>();
  private readonly latency = new Map<string, { buckets: number[]; sum: number; count: number }>();
  private readonly quotas = new Map<string, () => number | undefined>();
  private sizes: (() => { cached: number; evicted: number }) | undefined;

  size(read: () => { cached: number; evicted: number }): void {
    this.sizes = read;
  }

  request(upstream: string, result: CacheResult): void {
    increment(this.results, `upstream="${upstream}",result="${result}"`, 1);
  }

  bytesServed(upstream: string, count: number): void {
    increment(this.served, `upstream="${upstream}"`, count);
  }

  fetched(upstream: string, count: number): void {
    increment(this.fetchedBytes, `upstream="${upstream}"`, count);
  }

  /** A fill streamed between replicas: `relayed` from another one, or `served` to another one. */
  peerFill(upstream: string, direction: 'relayed' | 'served'): void {
    increment(this.peerFills, `upstream="${upstream}",direction="${direction}"`, 1);
  }

  /** Bytes of fills relayed from other replicas. */
  peerRelayed(upstream: string, count: number): void {
    increment(this.peerBytes, `upstream="${upstream}"`, count);
  }

  upstreamRequest(upstream: string, method: string, status: number | 'error', seconds: number): void {
    increment(this.upstreamStatus, `upstream="${upstream}",method="${method}",status="${status}"`, 1);
    const key = `upstream="${upstream}"`;
    let entry = this.latency.get(key);
    if (!entry) {
      entry = { buckets: latencyBuckets.map(() => 0), sum: 0, count: 0 };
      this.latency.set(key, entry);
    }
    latencyBuckets.forEach((bound, index) => {
      if (seconds <= bound) entry.buckets[index]!++;
    });
    entry.sum += seconds;
    entry.count++;
  }

  quota(upstream: string, remaining: () => number | undefined): void {
    this.quotas.set(upstream, remaining);
  }

  render(): string[] {
    const lines: string[] = [];
    const family = (name: string, type: string, help: string, values: Map<string, number>): void => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [labels, value] of values) lines.push(`${name}{${labels}} ${value}`);
    };
    family(
      'pullsafe_cache_requests_total',
      'counter',
      'Proxied manifest and blob requests by upstream and how they were answered.',
      this.results,
    );
    family(
      'pullsafe_cache_served_bytes_total',
      'counter',
      'Blob bytes sent to clients from upstream fills and storage.',
      this.served,
    );
    family(
      'pullsafe_cache_fetched_bytes_total',
      'counter',
      'Blob bytes fetched from each upstream.',
      this.fetchedBytes,
    );
    family(
      'pullsafe_cache_peer_fills_total',
      'counter',
      'Fills streamed between replicas: relayed from the replica filling them, or served to another replica.',
      this.peerFills,
    );
    family(
      'pullsafe_cache_peer_relayed_bytes_total',
      'counter',
      'Blob bytes relayed from another replica instead of fetched upstream.',
      this.peerBytes,
    );
    family(
      'pullsafe_upstream_requests_total',
      'counter',
      'Requests the cache made upstream, by method and status ("error": no answer).',
      this.upstreamStatus,
    );
    lines.push(
      '# HELP pullsafe_upstream_request_duration_seconds Time to an upstream answer (headers).',
      '# TYPE pullsafe_upstream_request_duration_seconds histogram',
    );
    for (const [labels, entry] of this.latency) {
      latencyBuckets.forEach((bound, index) =>
        lines.push(
          `pullsafe_upstream_request_duration_seconds_bucket{${labels},le="${bound}"} ${entry.buckets[index]}`,
        ),
      );
      lines.push(`pullsafe_upstream_request_duration_seconds_bucket{${labels},le="+Inf"} ${entry.count}`);
      lines.push(`pullsafe_upstream_request_duration_seconds_sum{${labels}} ${entry.sum}`);
      lines.push(`pullsafe_upstream_request_duration_seconds_count{${labels}} ${entry.count}`);
    }
    lines.push(
      '# HELP pullsafe_upstream_quota_remaining Pulls left as the upstream last reported (RateLimit-Remaining).',
      '# TYPE pullsafe_upstream_quota_remaining gauge',
    );
    for (const [upstream, remaining] of this.quotas) {
      const value = remaining();
      if (value !== undefined)
        lines.push(`pullsafe_upstream_quota_remaining{upstream="${upstream}"} ${value}`);
    }
    if (this.sizes) {
      const { cached, evicted } = this.sizes();
      lines.push(
        '# HELP pullsafe_cache_size_bytes Bytes of cached blobs, as of the last measure plus fills since.',
        '# TYPE pullsafe_cache_size_bytes gauge',
        `pullsafe_cache_size_bytes ${cached}`,
        '# HELP pullsafe_cache_evicted_bytes_total Bytes of cached blobs evicted to stay under the size limit.',
        '# TYPE pullsafe_cache_evicted_bytes_total counter',
        `pullsafe_cache_evicted_bytes_total ${evicted}`,
      );
    }
    return lines;
  }

  /** The same figures as plain data, by upstream. */
  snapshot(): Record<string, Record<string, unknown>> {
    const byUpstream: Record<string, Record<string, unknown>> = {};
    const entry = (upstream: string): Record<string, unknown> => (byUpstream[upstream] ??= {});
    for (const [labels, value] of this.results) {
      const { upstream, result } = parseLabels(labels);
      const results = (entry(upstream!).requests ??= {}) as Record<string, number>;
      results[result!] = value;
    }
    for (const [labels, value] of this.served) entry(parseLabels(labels).upstream!).bytesServed = value;
    for (const [labels, value] of this.fetchedBytes)
      entry(parseLabels(labels).upstream!).bytesFetched = value;
    for (const [labels, value] of this.upstreamStatus) {
      const { upstream, method, status } = parseLabels(labels);
      const statuses = (entry(upstream!).upstreamRequests ??= {}) as Record<string, number>;
      statuses[`${method} ${status}`] = value;
    }
    for (const [upstream, remaining] of this.quotas) {
      const value = remaining();
      if (value !== undefined) entry(upstream).quotaRemaining = value;
    }
    return byUpstream;
  }
}

function increment(map: Map<string, number>, key: string, by: number): void {
  map.set(key, (map.get(key) ?? 0) + by);
}

function parseLabels(labels: string): Record<string, string> {
  const result: Record<string, string> = {};
  for (const match of labels.matchAll(/(\w+)="([^"]*)"/g)) result[match[1]!] = match[2]!;
  return result;
}
