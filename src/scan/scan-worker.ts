/**
 * A scan worker: receives batches of units (see `scan.ts`), scans them with the built-in extractors named in
 * the batch, and answers with the results in unit order.
 */
import { parentPort } from 'node:worker_threads';
import { allExtractors } from './extractors.ts';
import { scanUnit, type WorkerBatch } from './scan.ts';
import type { Extractor } from './types.ts';

const port = parentPort;
if (port) {
  const byKinds = new Map<string, Extractor[]>();
  port.on('message', (batch: WorkerBatch) => {
    const key = batch.kinds.join(',');
    let extractors = byKinds.get(key);
    if (!extractors) {
      extractors = batch.kinds.flatMap((kind) =>
        allExtractors.filter((extractor) => extractor.kind === kind),
      );
      byKinds.set(key, extractors);
    }
    const results = batch.units.map((unit) => scanUnit(batch.root, unit, extractors, batch.maxBytes));
    // JSON is cheaper to send than a structured clone of thousands of small objects, and loses nothing
    // here: references hold only strings, numbers and booleans, with absent rather than undefined fields.
    port.postMessage({ id: batch.id, results: JSON.stringify(results) });
  });
}
