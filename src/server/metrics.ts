/** Prometheus metrics, rendered in the text exposition format (no client library needed for this set). */

const durationBuckets = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120];

export class Metrics {
  private readonly requests = new Map<string, number>();
  private readonly durations = new Map<string, { buckets: number[]; sum: number; count: number }>();
  bytesReceived = 0;
  bytesSent = 0;
  uploadsStarted = 0;
  uploadsCompleted = 0;
  uploadsFailed = 0;
  inFlight = 0;
  /** Refreshed by the server from storage; undefined until first measured. */
  storageBytes: number | undefined;
  storageBlobs: number | undefined;
  /** Writes are being refused for lack of space (set by the server before each render). */
  storageFull = false;
  storageFullErrors = 0;
  /** Clients that hung up before their response was complete. */
  clientAborts = 0;
  /** Promises that failed with nobody to hear it: each one a bug, logged; serving went on. */
  unhandledRejections = 0;
  gcRuns = 0;
  gcBytesSwept = 0;

  observeRequest(route: string, method: string, status: number, seconds: number): void {
    const key = `route="${route}",method="${method}",status="${status}"`;
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
    const durationKey = `route="${route}",method="${method}"`;
    let entry = this.durations.get(durationKey);
    if (!entry) {
      entry = { buckets: durationBuckets.map(() => 0), sum: 0, count: 0 };
      this.durations.set(durationKey, entry);
    }
    for (let i = 0; i < durationBuckets.length; i++) if (seconds <= durationBuckets[i]!) entry.buckets[i]!++;
    entry.sum += seconds;
    entry.count++;
  }

  render(): string {
    const lines: string[] = [];
    const metric = (name: string, type: string, help: string): void => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    };
    metric('pullsafe_http_requests_total', 'counter', 'HTTP requests by route, method and status.');
    for (const [labels, value] of this.requests)
      lines.push(`pullsafe_http_requests_total{${labels}} ${value}`);
    metric(
      'pullsafe_http_request_duration_seconds',
      'histogram',
      'Time to response end by route and method.',
    );
    for (const [labels, entry] of this.durations) {
      durationBuckets.forEach((bound, i) => {
        lines.push(
          `pullsafe_http_request_duration_seconds_bucket{${labels},le="${bound}"} ${entry.buckets[i]}`,
        );
      });
      lines.push(`pullsafe_http_request_duration_seconds_bucket{${labels},le="+Inf"} ${entry.count}`);
      lines.push(`pullsafe_http_request_duration_seconds_sum{${labels}} ${entry.sum}`);
      lines.push(`pullsafe_http_request_duration_seconds_count{${labels}} ${entry.count}`);
    }
    metric('pullsafe_http_requests_in_flight', 'gauge', 'Requests being served now.');
    lines.push(`pullsafe_http_requests_in_flight ${this.inFlight}`);
    metric('pullsafe_http_received_bytes_total', 'counter', 'Request body bytes received.');
    lines.push(`pullsafe_http_received_bytes_total ${this.bytesReceived}`);
    metric('pullsafe_http_sent_bytes_total', 'counter', 'Response body bytes sent.');
    lines.push(`pullsafe_http_sent_bytes_total ${this.bytesSent}`);
    metric('pullsafe_uploads_started_total', 'counter', 'Blob uploads started.');
    lines.push(`pullsafe_uploads_started_total ${this.uploadsStarted}`);
    metric('pullsafe_uploads_completed_total', 'counter', 'Blob uploads verified and committed.');
    lines.push(`pullsafe_uploads_completed_total ${this.uploadsCompleted}`);
    metric(
      'pullsafe_uploads_failed_total',
      'counter',
      'Blob uploads cancelled or rejected (digest mismatch).',
    );
    lines.push(`pullsafe_uploads_failed_total ${this.uploadsFailed}`);
    metric('pullsafe_storage_full', 'gauge', '1 while writes are refused because the storage is full.');
    lines.push(`pullsafe_storage_full ${this.storageFull ? 1 : 0}`);
    metric('pullsafe_storage_full_errors_total', 'counter', 'Requests refused because the storage was full.');
    lines.push(`pullsafe_storage_full_errors_total ${this.storageFullErrors}`);
    metric(
      'pullsafe_http_client_aborts_total',
      'counter',
      'Requests whose client hung up before the response was complete.',
    );
    lines.push(`pullsafe_http_client_aborts_total ${this.clientAborts}`);
    metric(
      'pullsafe_unhandled_rejections_total',
      'counter',
      'Failures nothing in pullsafe handled (a bug: see the error log); the process served on.',
    );
    lines.push(`pullsafe_unhandled_rejections_total ${this.unhandledRejections}`);
    metric('pullsafe_gc_runs_total', 'counter', 'Garbage collections run while serving (gc.interval).');
    lines.push(`pullsafe_gc_runs_total ${this.gcRuns}`);
    metric(
      'pullsafe_gc_swept_bytes_total',
      'counter',
      'Bytes of blobs removed by garbage collection while serving.',
    );
    lines.push(`pullsafe_gc_swept_bytes_total ${this.gcBytesSwept}`);
    if (this.storageBytes !== undefined) {
      metric('pullsafe_storage_blob_bytes', 'gauge', 'Bytes of committed blobs in storage.');
      lines.push(`pullsafe_storage_blob_bytes ${this.storageBytes}`);
      metric('pullsafe_storage_blobs', 'gauge', 'Committed blobs in storage.');
      lines.push(`pullsafe_storage_blobs ${this.storageBlobs ?? 0}`);
    }
    return `${lines.join('\n')}\n`;
  }
}
