// Writes docs/config.schema.json from the zod schema (CI fails when the file is stale).
import { writeFile } from 'node:fs/promises';
import { serveJsonSchema } from '../src/config/schema.ts';

await writeFile(new URL('../docs/config.schema.json', import.meta.url), serveJsonSchema());
