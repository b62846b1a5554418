import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { ClipLensError } from '../../src/core/errors';
import { JsonSyntaxError, MAX_JSON_DEPTH, lineColumnFinder, parseJsonTree, parseJsonTreeOrNull } from '../../src/core/jsonWithPositions';
import { ignoredSampleEdit, readProjectConfig } from '../../src/core/projectConfig';

const nested = (depth: number, open = '{"a":', close = '}') => open.repeat(depth) + '1' + close.repeat(depth);

test('nesting up to MAX_JSON_DEPTH parses; one level more is a JsonSyntaxError at the bracket that goes too deep', () => {
  assert.equal(parseJsonTree(nested(MAX_JSON_DEPTH)).type, 'object');
  assert.equal(parseJsonTree(nested(MAX_JSON_DEPTH, '[', ']')).type, 'array');
  for (const [open, close] of [['{"a":', '}'], ['[', ']'], ['[{"a":', '}]']] as const) {
    const text = nested(MAX_JSON_DEPTH + 1, open, close);
    assert.throws(
      () => parseJsonTree(text),
      (e: unknown) => e instanceof JsonSyntaxError && e.message === `nested deeper than ${MAX_JSON_DEPTH} levels`,
    );
  }
  // The offset is the (MAX_JSON_DEPTH + 1)-th opening bracket.
  try {
    parseJsonTree(nested(MAX_JSON_DEPTH + 10, '[', ']'));
    assert.fail('expected a JsonSyntaxError');
  } catch (e) {
    assert.ok(e instanceof JsonSyntaxError);
    assert.equal(e.offset, MAX_JSON_DEPTH);
  }
  // Depth counts nesting, not the number of containers: many siblings are fine.
  assert.equal(parseJsonTree(`[${Array(5000).fill('[[1]]').join(',')}]`).type, 'array');
  assert.equal(parseJsonTreeOrNull(nested(2500)), null);
});

test('a .clip-lens.json nested 2,500 deep (5 KB) is a config problem with a line, not a stack overflow', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-lens-deep-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  // Two lines, so the line number is checked: the too-deep bracket is on line 2.
  const text = '{"gate":\n' + '['.repeat(2500) + ']'.repeat(2500) + '}';
  assert.ok(text.length < 6000);
  fs.writeFileSync(path.join(dir, '.clip-lens.json'), text);
  const read = await readProjectConfig(dir);
  assert.equal(read.problems.length, 1);
  assert.deepEqual(read.problems[0], { key: '', message: `invalid JSON: nested deeper than ${MAX_JSON_DEPTH} levels`, ...lineColumnFinder(text)(9 + MAX_JSON_DEPTH - 1) });
  assert.equal(read.problems[0]!.line, 2);
  // Editing it is refused with a ClipLensError naming the file and line.
  assert.throws(
    () => ignoredSampleEdit(text, 'a.png'),
    (e: unknown) => e instanceof ClipLensError && e.code === 'config-invalid' && e.line === 2 && /nested deeper than/.test(e.message),
  );

  // The CLI, check and eval: exit 2, one line naming the file and line, no stack trace.
  const cli = path.resolve(__dirname, '../../dist/cli.js');
  for (const args of [['check', dir], ['eval', dir, '--model', path.resolve(__dirname, '../fixtures/tiny-clip'), '--no-cache']]) {
    const r = await promisify(execFile)(process.execPath, [cli, ...args]).then(
      (ok) => ({ code: 0, output: ok.stdout + ok.stderr }),
      (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, output: e.stdout + e.stderr }),
    );
    assert.equal(r.code, 2, `${args[0]}: ${r.output}`);
    assert.doesNotMatch(r.output, /RangeError|Maximum call stack|\n\s+at /);
    assert.equal(r.output.trim().split('\n').length, 1, r.output);
    assert.match(r.output, new RegExp(`\\.clip-lens\\.json:2:\\d+: invalid JSON: nested deeper than ${MAX_JSON_DEPTH} levels`));
  }
});
