import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeJsonReport } from '../../src/cli/io';
import { compareRuns, readRunFile } from '../../src/core/compare';
import { makeBaseline } from '../../src/core/baseline';
import { ClipLensError } from '../../src/core/errors';
import type { EvalReport, ReportSample } from '../../src/core/report';
import { attachSamples, INLINE_SAMPLES_LIMIT, joinedParquet, parquetOfColumns, parquetOnWorker, partOnWorker, readReportFile, sidecarPart, sidecarRows, utf8Values, readSamplesSidecar, reportForFile, samplesOf, samplesParquet, sidecarColumns, sidecarRowsHere, sidecarFileOf } from '../../src/core/reportSamples';
import { writeReport } from '../../src/extension/reportFile';
import { jsonReport } from '../../src/core/reportExport';
import { hash, makeReport, many } from './reportFixtures';

const tmpDir = () => fs.mkdtempSync(path.join(os.tmpdir(), 'clip-lens-sidecar-'));

/** A report whose samples use every field: splits, label lines, errors, probabilities, missing hashes, short top-K. */
function richReport(): EvalReport {
  const r = makeReport(['cat', 'dog', 'fox'], [...many('cat', 4, 3, 'dog'), ...many('dog', 3, 2, 'fox')], { issues: [3] });
  const s = r.samples as ReportSample[];
  s[0] = { ...s[0], split: 'train', source: { file: 'labels.csv', line: 2 }, probabilities: [0.7, 0.2000000000000001, 0.1] };
  s[1] = { ...s[1], split: 'val', predicted: [{ class: 'cat', score: 0.123456789012345 }, { class: 'fox', score: 1e-9 }] };
  s[2] = { path: 'cat/broken.png', label: 'cat', predicted: [], error: { code: 'image-unreadable', message: 'bad PNG: ünïcode' } };
  delete s[4].contentHash;
  s[5] = { ...s[5], label: 'not-a-class' };
  r.dataset.splits = ['train', 'val'];
  return r;
}

test('the sidecar gives back every sample exactly (all fields, unicode, doubles)', async () => {
  const r = richReport();
  const dir = tmpDir();
  const file = path.join(dir, 'x.samples.parquet');
  fs.writeFileSync(file, await samplesParquet(r));
  const table = await readSamplesSidecar(file, r.dataset.classes, r.samples!.length);
  assert.deepEqual(table.toArray(), r.samples);
  assert.equal(table.indexOfPath('cat/broken.png'), 2);
  assert.equal(table.at(99), undefined);
  assert.deepEqual(table.slice(5, 100), r.samples!.slice(5));
});

test('a sidecar written from columns (a table read back, or a large evaluation) is the same file as from the objects', async () => {
  const r = richReport();
  const dir = tmpDir();
  const file = path.join(dir, 'x.samples.parquet');
  const fromObjects = await samplesParquet(r);
  fs.writeFileSync(file, fromObjects);
  const table = await readSamplesSidecar(file, r.dataset.classes, r.samples!.length);
  assert.ok(table.columns, 'a sidecar table views columns');
  const columnar = { ...r } as EvalReport;
  delete columnar.samples;
  attachSamples(columnar, table);
  const fromColumns = await samplesParquet(columnar);
  assert.deepEqual(Buffer.from(fromColumns), Buffer.from(fromObjects));
  const again = path.join(dir, 'y.samples.parquet');
  fs.writeFileSync(again, fromColumns);
  assert.deepEqual((await readSamplesSidecar(again, r.dataset.classes, r.samples!.length)).toArray(), r.samples);
});

test('a large report\'s sidecar is encoded on a worker thread (sidecarWorker.ts): the same bytes as on this thread', async () => {
  const r = richReport();
  const columns = sidecarColumns(r);
  const here = await parquetOfColumns(columns);
  assert.deepEqual(Buffer.from(await parquetOnWorker(columns, false)), Buffer.from(here));
  assert.deepEqual(Buffer.from(await samplesParquet(r)), Buffer.from(here));
  // A sample table's own columns (a large evaluation's) are posted as they are and spread out on the worker.
  const file = path.join(tmpDir(), 'x.samples.parquet');
  fs.writeFileSync(file, here);
  const columnar = { ...r } as EvalReport;
  delete columnar.samples;
  attachSamples(columnar, await readSamplesSidecar(file, r.dataset.classes, r.samples!.length));
  const posted = sidecarColumns(columnar);
  assert.ok('labelNames' in posted.samples, 'the table\'s columns, not spread out');
  assert.deepEqual(Buffer.from(await parquetOnWorker(posted, false)), Buffer.from(here));
  // A column the encoder refuses fails on the worker as it does here.
  const bad = { ...columns, samples: { ...columns.samples, srcLine: new Int32Array(1) } };
  await assert.rejects(parquetOfColumns(bad));
  await assert.rejects(parquetOnWorker(bad, false));
});

test('a large sidecar encoded in two parts (the later row groups on a worker, the first here, joined) is the file one encoding makes, byte for byte', async () => {
  const n = 150_123; // three row groups of 50,000 and a short one
  const r = makeReport(['a', 'b', 'c'], [...many('a', 60_000, 50_000, 'b'), ...many('b', 50_000, 40_000, 'c'), ...many('c', n - 110_000, 3, 'a')], { issues: [5, 70_001, 150_000] });
  const s = r.samples as ReportSample[];
  s[7] = { path: 'a/broken.png', label: 'a', predicted: [], error: { code: 'image-unreadable', message: 'bad PNG' } };
  s[120_007] = { path: 'c/broken.png', label: 'c', predicted: [], error: { code: 'image-unreadable', message: 'truncated' } };
  // Probabilities in the first row group only: every part still has the column (its rows null).
  s[3] = { ...s[3], probabilities: [0.5, 0.25, 0.25] };
  s[60_001] = { ...s[60_001], split: 'val', source: { file: 'labels.csv', line: 9 } };
  const fromObjects = sidecarColumns(r);
  const whole = await parquetOfColumns(fromObjects);
  // The same rows as a sample table's columns (a large evaluation's form).
  const file = path.join(tmpDir(), 'x.samples.parquet');
  fs.writeFileSync(file, whole);
  const columnar = { ...r } as EvalReport;
  delete columnar.samples;
  attachSamples(columnar, await readSamplesSidecar(file, r.dataset.classes, n));
  const fromTable = sidecarColumns(columnar);
  assert.ok('labelNames' in fromTable.samples && !('labelNames' in fromObjects.samples));
  for (const columns of [fromObjects, fromTable]) {
    for (const split of [0, 50_000, 100_000, 150_000]) {
      const joined = await joinedParquet(columns, split, sidecarPart(sidecarRows(columns, split, n)));
      assert.deepEqual(Buffer.from(joined), Buffer.from(whole), `split at ${split}`);
    }
  }
  // The later part made on a worker (posted as its own rows, answered with its bytes and metadata).
  const joined = await joinedParquet(fromTable, 50_000, partOnWorker(sidecarRows(fromTable, 50_000, n), false));
  assert.deepEqual(Buffer.from(joined), Buffer.from(whole));
  // And it reads back as the report's samples.
  const back = path.join(tmpDir(), 'back.samples.parquet');
  fs.writeFileSync(back, joined);
  const table = await readSamplesSidecar(back, r.dataset.classes, n);
  for (const i of [3, 7, 60_001, 120_007, n - 1]) assert.deepEqual(table.at(i), s[i]);
});

test('utf8Values: the UTF-8 bytes of each string from one buffer; nulls kept; a string holding NUL encoded alone', () => {
  const values = ['a/b.png', null, 'ünï/cödé 🐱.jpg', '', 'x'];
  const out = utf8Values(values);
  assert.deepEqual(out.map((b) => (b === null ? null : Buffer.from(b).toString('utf8'))), values);
  const withNul = ['a\0b', null, 'c'];
  assert.deepEqual(utf8Values(withNul).map((b) => (b === null ? null : Buffer.from(b).toString('utf8'))), withNul);
  assert.deepEqual(utf8Values([]), []);
});

test('--samples auto: small reports keep samples inline and get the sidecar too; inline and sidecar compare the same', async () => {
  const r = richReport();
  const dir = tmpDir();
  const auto = path.join(dir, 'auto.json');
  const side = path.join(dir, 'side.json');
  const inline = path.join(dir, 'inline.json');
  await writeJsonReport(r, auto, 'auto');
  await writeJsonReport(r, side, 'sidecar');
  await writeJsonReport(r, inline, 'inline');
  const autoJson = JSON.parse(fs.readFileSync(auto, 'utf8')) as EvalReport;
  assert.deepEqual(autoJson.samples, r.samples, 'inline samples unchanged (the outside contract)');
  assert.equal(autoJson.samplesFile, 'auto.samples.parquet');
  assert.ok(fs.existsSync(sidecarFileOf(auto)));
  const sideJson = JSON.parse(fs.readFileSync(side, 'utf8')) as EvalReport;
  assert.equal(sideJson.samples, undefined);
  assert.equal(sideJson.samplesFile, 'side.samples.parquet');
  const inlineJson = JSON.parse(fs.readFileSync(inline, 'utf8')) as EvalReport;
  assert.equal(inlineJson.samplesFile, undefined);
  assert.ok(!fs.existsSync(sidecarFileOf(inline)));

  // One accessor, same samples from either place.
  const fromSide = await readReportFile(side);
  const fromInline = await readReportFile(inline);
  assert.deepEqual(samplesOf(fromSide).toArray(), samplesOf(fromInline).toArray());
  // The panel's JSON export is self-contained: samples inline, no sidecar name that would not resolve.
  const exported = JSON.parse(jsonReport(fromSide)) as EvalReport;
  assert.deepEqual(exported.samples, r.samples);
  assert.equal(exported.samplesFile, undefined);
  // compare: identical output whichever way each side keeps its samples.
  const other = makeReport(['cat', 'dog', 'fox'], [...many('cat', 4, 4, 'dog'), ...many('dog', 3, 1, 'fox')]);
  const otherFile = path.join(dir, 'other.json');
  await writeJsonReport(other, otherFile, 'sidecar');
  const viaSidecar = compareRuns(await readRunFile(side), await readRunFile(otherFile), ['a', 'b']);
  const viaInline = compareRuns(await readRunFile(inline), makeBaseline(other), ['a', 'b']);
  assert.deepEqual(viaSidecar, viaInline);
  assert.ok(viaInline.samples.common > 0);
});

test('a large report (200,000 samples) keeps its JSON small: samples only in the sidecar, read back through the accessor', async () => {
  const n = 200_000;
  assert.ok(n > INLINE_SAMPLES_LIMIT);
  const r = makeReport(['a', 'b', 'c'], [...many('a', n / 2, n / 2 - 7, 'b'), ...many('b', n / 4, n / 4, 'a'), ...many('c', n / 4, 3, 'a')]);
  const dir = tmpDir();
  const file = path.join(dir, 'big.json');
  await writeJsonReport(r, file);
  const size = fs.statSync(file).size;
  assert.ok(size < 20_000, `JSON of ${size} bytes`);
  const json = JSON.parse(fs.readFileSync(file, 'utf8')) as EvalReport;
  assert.equal(json.samples, undefined);
  assert.equal(json.samplesFile, 'big.samples.parquet');
  const sidecarBytes = fs.statSync(sidecarFileOf(file)).size;
  assert.ok(sidecarBytes < 200 * n, `sidecar of ${sidecarBytes} bytes`);
  const back = await readReportFile(file);
  const t = samplesOf(back);
  assert.equal(t.length, n);
  for (const i of [0, 1, n / 2 - 1, n / 2, n - 1]) assert.deepEqual(t.at(i), r.samples![i]);
  assert.deepEqual(makeBaseline(back), makeBaseline(r));
  // The extension's report writer follows the same rule.
  const saved = path.join(dir, 'saved.json');
  await writeReport(saved, r);
  assert.ok(fs.statSync(saved).size < 20_000);
  assert.equal(samplesOf(await readReportFile(saved)).at(n - 1)?.path, r.samples![n - 1].path);
});

test('a missing, corrupt or foreign sidecar is a clear error naming the file', async () => {
  const r = richReport();
  const dir = tmpDir();
  const file = path.join(dir, 'r.json');
  await writeJsonReport(r, file, 'sidecar');
  const sidecar = sidecarFileOf(file);
  const good = fs.readFileSync(sidecar);

  fs.rmSync(sidecar);
  await assert.rejects(readReportFile(file), (e: unknown) => e instanceof ClipLensError && e.code === 'report-sidecar-missing' && e.message.includes('r.samples.parquet'));
  await assert.rejects(readRunFile(file, 'shown/r.json'), (e: unknown) => e instanceof ClipLensError && e.message.startsWith(path.join('shown', 'r.samples.parquet')));

  fs.writeFileSync(sidecar, Buffer.from('PAR1 this is not parquet PAR1'));
  await assert.rejects(readReportFile(file), (e: unknown) => e instanceof ClipLensError && e.code === 'report-sidecar-bad' && e.message.includes('r.samples.parquet'));

  const other = makeReport(['cat', 'dog', 'fox'], many('cat', 3, 3, 'dog'));
  fs.writeFileSync(sidecar, await samplesParquet(other));
  await assert.rejects(readReportFile(file), /r\.samples\.parquet: has 3 samples, the report 7: it belongs to another report/);

  fs.writeFileSync(sidecar, good);
  assert.equal(samplesOf(await readReportFile(file)).length, 7);

  const json = JSON.parse(fs.readFileSync(file, 'utf8')) as EvalReport;
  fs.writeFileSync(file, JSON.stringify({ ...json, samplesFile: '../elsewhere.parquet' }));
  await assert.rejects(readReportFile(file), /must name a file next to the report/);
  assert.throws(() => samplesOf(json), /the report's samples are in r\.samples\.parquet, which was not read/);
});

test('reportForFile keeps the key order of the report and names the sidecar relative to the report', () => {
  const r = makeReport(['a'], many('a', 2, 2, 'a'));
  const { json, sidecar } = reportForFile(r, '/x/y/run.json', 'auto');
  assert.deepEqual(Object.keys(json), [...Object.keys(r), 'samplesFile']);
  assert.equal(sidecar, '/x/y/run.samples.parquet');
  assert.equal(hash('a').length, 64);
});

test('the sidecar carries each sample\'s label issue (rank, score, suggested class) for readers of the Parquet alone', async () => {
  const r = richReport();
  r.labelIssues = [
    { index: 3, given: 'cat', suggested: 'dog', score: 0.015625, rank: 1, path: r.samples![3]!.path },
    { index: 6, given: 'dog', suggested: 'fox', score: 0.25, rank: 2, path: r.samples![6]!.path },
  ];
  const { parquetReadObjects } = await import('hyparquet');
  const bytes = await samplesParquet(r);
  const rows = await parquetReadObjects({ file: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer, columns: ['path', 'label_issue_rank', 'label_issue_score', 'label_issue_suggested'] });
  assert.equal(rows.length, r.samples!.length);
  rows.forEach((row, i) => {
    const li = r.labelIssues.find((x) => x.index === i);
    assert.equal(row.path, r.samples![i]!.path);
    assert.equal(row.label_issue_rank, li ? li.rank : 0);
    assert.equal(row.label_issue_score, li ? li.score : null);
    assert.equal(row.label_issue_suggested, li ? r.dataset.classes.indexOf(li.suggested) : -1);
  });
  // Still read back exactly through the accessor (the columns are extra).
  const file = path.join(tmpDir(), 'x.samples.parquet');
  fs.writeFileSync(file, bytes);
  assert.deepEqual((await readSamplesSidecar(file, r.dataset.classes, r.samples!.length)).toArray(), r.samples);
  // An issue naming a sample the report does not have is refused, naming it.
  r.labelIssues = [{ index: 99, given: 'cat', suggested: 'dog', score: 0.5, rank: 1 }];
  await assert.rejects(samplesParquet(r), (e: unknown) => e instanceof ClipLensError && /label issue 1 names sample 99/.test(e.message));
});

test('sidecarRowsHere: the JSON report goes first on this thread, so the more label issues, the fewer rows here (10-50%)', () => {
  const n = 1_000_000;
  // The measured cases (docs/benchmarks.md): random rows (548,000 issues) and aligned ones (60,000).
  const many = sidecarRowsHere(n, 548_000);
  const few = sidecarRowsHere(n, 60_000);
  assert.ok(many > 0.25 * n && many < 0.35 * n, `many issues: ${many}`);
  assert.ok(few > 0.35 * n && few < 0.5 * n && few > many, `few issues: ${few}`);
  let last = Infinity;
  for (let issues = 0; issues <= n; issues += 50_000) {
    const here = sidecarRowsHere(n, issues);
    assert.ok(here <= last && here >= 0.1 * n && here <= 0.5 * n, `${issues} issues: ${here}`);
    last = here;
  }
  // A smaller sidecar whose JSON would outlast the worker's whole part: the least share here.
  assert.equal(sidecarRowsHere(100_000, 100_000), 10_000);
});
