/**
 * Injected faults: status, reset and delay faults when a matching request arrives, truncate and wrong-digest
 * faults when one is about to receive content (`sendContent`, `serveBlob`).
 */
import { commonHeaders, defaultCodeForStatus, errorBody, parseRange, send, type Context } from './http.ts';
import type { Fault, FaultAction, FaultMatch, RequestKind } from './types.ts';

interface ActiveFault {
  match: FaultMatch;
  action: FaultAction;
  remaining: number;
}

function isBodyFault(action: FaultAction): boolean {
  return (
    action === 'truncate' ||
    action === 'wrong-digest' ||
    (typeof action === 'object' && 'trickleMs' in action)
  );
}

function faultName(action: FaultAction): string {
  if (typeof action === 'string') return action;
  if ('trickleMs' in action) return 'trickle';
  return 'delayMs' in action ? 'delay' : 'status';
}

/** The faults injected so far, and the delays under way. */
export class FakeFaults {
  private readonly faults: ActiveFault[] = [];
  private readonly sleepers = new Set<{ timer: NodeJS.Timeout; wake: () => void }>();

  /** Adds a fault; faults are consumed in the order added, per matching request. */
  inject(fault: Fault): void {
    this.faults.push({ match: fault.match, action: fault.action, remaining: fault.times ?? 1 });
  }

  /** Ends every delay fault at once, for closing. */
  wakeSleepers(): void {
    for (const sleeper of this.sleepers) {
      clearTimeout(sleeper.timer);
      sleeper.wake();
    }
    this.sleepers.clear();
  }

  private faultMatches(fault: ActiveFault, ctx: Context, kind: RequestKind): boolean {
    const { match } = fault;
    if (fault.remaining <= 0) return false;
    if (match.method && match.method.toUpperCase() !== ctx.req.method) return false;
    if (match.kind && match.kind !== kind) return false;
    if (match.server && match.server !== ctx.server) return false;
    if (match.pathIncludes && !(ctx.req.url ?? '').includes(match.pathIncludes)) return false;
    return true;
  }

  private takeFault(ctx: Context, body: boolean): FaultAction | undefined {
    const fault = this.faults.find(
      (f) => isBodyFault(f.action) === body && this.faultMatches(f, ctx, ctx.record.kind),
    );
    if (!fault) return undefined;
    fault.remaining -= 1;
    ctx.record.fault = faultName(fault.action);
    return fault.action;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const sleeper = {
        timer: setTimeout(() => {
          this.sleepers.delete(sleeper);
          resolve();
        }, ms),
        wake: resolve,
      };
      this.sleepers.add(sleeper);
    });
  }

  /** Applies a status, reset or delay fault; returns false when the request has been answered. */
  async arrivalFault(ctx: Context): Promise<boolean> {
    const action = this.takeFault(ctx, false);
    if (action === undefined) return true;
    if (action === 'reset') {
      ctx.record.status = 0;
      ctx.req.socket.destroy();
      return false;
    }
    if (typeof action === 'object' && 'delayMs' in action) {
      await this.sleep(action.delayMs);
      return true;
    }
    if (typeof action === 'object' && 'status' in action) {
      const headers: Record<string, string> = {};
      if (action.retryAfter !== undefined) headers['Retry-After'] = String(action.retryAfter);
      let body = action.body;
      if (body === undefined) {
        const code = defaultCodeForStatus[action.status] ?? 'UNKNOWN';
        body = errorBody(code, `injected fault: ${action.status}`);
      }
      let json = true;
      try {
        JSON.parse(body);
      } catch {
        json = false;
      }
      headers['Content-Type'] = json ? 'application/json' : 'text/plain';
      send(ctx, action.status, headers, body);
      return false;
    }
    return true;
  }

  /** Sends manifest or blob bytes; the place where truncate and wrong-digest faults apply. */
  sendContent(ctx: Context, status: number, headers: Record<string, string>, bytes: Buffer): void {
    const head = ctx.req.method === 'HEAD';
    const fault = head ? undefined : this.takeFault(ctx, true);
    let body = bytes;
    if (fault === 'wrong-digest') {
      body = Buffer.from(bytes);
      for (let i = 0; i < body.length; i++) body[i] = body[i]! ^ 0xff;
    }
    ctx.record.status = status;
    ctx.res.writeHead(status, { ...commonHeaders(ctx), ...headers, 'Content-Length': String(bytes.length) });
    if (head) {
      ctx.res.end();
    } else if (typeof fault === 'object' && 'trickleMs' in fault) {
      const pieces = 20;
      const size = Math.ceil(body.length / pieces);
      let sent = 0;
      const next = (): void => {
        if (ctx.res.destroyed) return;
        const piece = body.subarray(sent, sent + size);
        sent += piece.length;
        if (sent >= body.length) ctx.res.end(piece);
        else ctx.res.write(piece, () => setTimeout(next, fault.trickleMs / pieces));
      };
      next();
    } else if (fault === 'truncate') {
      const half = body.subarray(0, Math.floor(body.length / 2));
      if (half.length > 0) ctx.res.write(half, () => ctx.res.destroy());
      else {
        ctx.res.flushHeaders();
        setTimeout(() => ctx.res.destroy(), 10);
      }
    } else {
      ctx.res.end(body);
    }
  }

  serveBlob(ctx: Context, data: Buffer, digest: string): void {
    const headers: Record<string, string> = {
      'Content-Type': 'application/octet-stream',
      'Docker-Content-Digest': digest,
      'Accept-Ranges': 'bytes',
      ETag: `"${digest}"`,
    };
    const range = parseRange(ctx.req.headers.range, data.length);
    if (range === 'bad') {
      send(ctx, 416, { 'Content-Range': `bytes */${data.length}` });
    } else if (range) {
      headers['Content-Range'] = `bytes ${range.start}-${range.end}/${data.length}`;
      this.sendContent(ctx, 206, headers, data.subarray(range.start, range.end + 1));
    } else {
      this.sendContent(ctx, 200, headers, data);
    }
  }
}
