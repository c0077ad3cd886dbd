/**
 * `npm run deploy:synth`: rewrites deploy/cloudformation/pullsafe.template.json from the CDK stack, formatted
 * as the repository's prettier config says. test/deploy.test.ts fails while the file and a fresh synthesis
 * differ.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { format, resolveConfig } from 'prettier';
import { synthesizeTemplate } from './pullsafe-stack.ts';

const target = fileURLToPath(new URL('../cloudformation/pullsafe.template.json', import.meta.url));
const options = (await resolveConfig(target)) ?? {};
writeFileSync(target, await format(JSON.stringify(synthesizeTemplate()), { ...options, parser: 'json' }));
process.stdout.write(`wrote ${target}\n`);
