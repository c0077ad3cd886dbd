/** The JSON schema of the serve configuration, for editors; docs/config.schema.json is generated from it. */
import { z } from 'zod';
import { serveConfigSchema } from './serve.ts';

export function serveJsonSchema(): string {
  const schema = z.toJSONSchema(serveConfigSchema, { io: 'input' });
  return `${JSON.stringify({ title: 'pullsafe serve configuration', ...schema }, null, 2)}\n`;
}
