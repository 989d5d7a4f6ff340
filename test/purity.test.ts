import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';

/**
 * The replication core and the state machine must stay deterministic and free of I/O, so the
 * simulator can run them: no node:* or I/O-layer imports, no clock, no Math.random, no timers,
 * no await.
 */
const root = join(import.meta.dirname, '..', '..', 'src');
const forbidden: [RegExp, string][] = [
  [/from\s+['"]node:/, 'imports node:*'],
  [/require\(/, 'uses require()'],
  [/from\s+['"][^'"]*\/(storage|net|server|cli|engine|sim|client)\//, 'imports an I/O layer'],
  [/\bDate\b/, 'uses Date'],
  [/Math\.random/, 'uses Math.random'],
  [/\b(setTimeout|setInterval|setImmediate|queueMicrotask|process\.nextTick)\b/, 'uses a timer'],
  [/\bawait\b|\basync\b/, 'uses async/await'],
  [/\bperformance\.now\b/, 'reads a clock'],
];

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) => (d.isDirectory() ? sources(join(dir, d.name)) : d.name.endsWith('.ts') ? [join(dir, d.name)] : []));
}

/** Strips comments so that prose about timers is not mistaken for code. */
function code(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
}

export function findImpurities(files: readonly string[]): string[] {
  const problems: string[] = [];
  for (const file of files) {
    const lines = code(readFileSync(file, 'utf8')).split('\n');
    lines.forEach((line, k) => {
      for (const [pattern, what] of forbidden) if (pattern.test(line)) problems.push(`${file}:${k + 1} ${what}: ${line.trim()}`);
    });
  }
  return problems;
}

describe('purity of src/core and src/kv', () => {
  it('no file imports I/O or reads a clock, a random source or a timer', () => {
    const files = [...sources(join(root, 'core')), ...sources(join(root, 'kv'))];
    assert.ok(files.length >= 6, `found only ${files.length} files under ${root}`);
    assert.deepEqual(findImpurities(files), []);
  });

  it('the check catches each forbidden thing (it can fail)', () => {
    const dir = join(import.meta.dirname, '..', '..', 'test', 'fixtures');
    const problems = findImpurities([join(dir, 'impure.ts.txt')]);
    for (const what of ['imports node:*', 'imports an I/O layer', 'uses Date', 'uses Math.random', 'uses a timer', 'uses async/await']) {
      assert.ok(problems.some((p) => p.includes(what)), `missed: ${what}`);
    }
  });
});
