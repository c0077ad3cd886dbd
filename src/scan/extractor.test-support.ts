/** What the extractor tests of ECS, CloudFormation and Terraform share. */
import assert from 'node:assert/strict';
import type { FoundReference } from './types.ts';

export const digest = `sha256:${'b'.repeat(64)}`;

export type Expected = Pick<FoundReference, 'line' | 'column' | 'offset' | 'text'> & Partial<FoundReference>;

/** Checks every reference against the file (offset, line, column computed independently) and the expectations. */
export function check(content: string, found: FoundReference[], expected: Expected[]): void {
  for (const reference of found) {
    assert.equal(content.slice(reference.offset, reference.offset + reference.text.length), reference.text);
    const before = content.slice(0, reference.offset).split('\n');
    assert.equal(reference.line, before.length, `line of ${reference.text}`);
    assert.equal(
      reference.column,
      (before[before.length - 1] ?? '').length + 1,
      `column of ${reference.text}`,
    );
  }
  assert.equal(found.length, expected.length, JSON.stringify(found, null, 2));
  expected.forEach((want, index) => {
    const got = found[index]!;
    for (const [key, value] of Object.entries(want)) {
      assert.deepEqual(got[key as keyof FoundReference], value, `${key} of reference ${index}`);
    }
  });
}
