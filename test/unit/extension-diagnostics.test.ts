import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readDataset } from '../../src/core/dataset';
import type { EvalReport, LabelIssue, ReportSample, Warning } from '../../src/core/report';
import type { Dataset } from '../../src/core/types';
import type { GateResult } from '../../src/core/gate';
import {
  configDiagnostics,
  datasetDiagnostics,
  FILE_START,
  formatScore,
  gateDiagnostics,
  keyPathRange,
  labelIssueDiagnostics,
  labelIssueMessage,
  NOT_SHOWN_CODE,
  type PlainRange,
} from '../../src/extension/diagnosticsModel';
import { changeLabelEdit, editorLineStarts } from '../../src/extension/labelEdits';
import { applyEdits } from '../../src/core/textEdit';

/** The text a 0-based range covers. */
function textAt(text: string, r: PlainRange): string {
  const starts = editorLineStarts(text);
  return text.slice(starts[r.start.line] + r.start.character, starts[r.end.line] + r.end.character);
}

function tmpDataset(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-lens-ext-'));
  for (const [rel, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), content);
  }
  return dir;
}

/** A report for a dataset read by core, with given top-K predictions per sample path and issues by path. */
function reportFor(dataset: Dataset, predicted: Record<string, [string, number][]>, issues: { path: string; suggested: string; score: number }[], extra: Partial<EvalReport> = {}): EvalReport {
  const samples: ReportSample[] = dataset.samples.map((s) => ({
    path: s.path,
    label: s.label,
    ...(s.source ? { source: s.source } : {}),
    predicted: (predicted[s.path] ?? []).map(([c, p]) => ({ class: c, score: p })),
  }));
  const labelIssues: LabelIssue[] = issues.map((i, r) => {
    const index = samples.findIndex((s) => s.path === i.path);
    return { index, given: samples[index].label, suggested: i.suggested, score: i.score, rank: r + 1, path: i.path };
  });
  return {
    schemaVersion: 2,
    tool: { name: 'clip-lens', version: 'test' },
    createdAt: '2025-01-01T00:00:00.000Z',
    model: { id: 'test', dir: '/m', quantized: false, embeddingDim: 4, logitScale: 100, imageSize: 224 },
    templates: { name: 'simple', count: 1 },
    topK: 3,
    dataset: {
      root: dataset.root,
      format: dataset.format,
      ...(dataset.labelFile ? { labelFile: dataset.labelFile } : {}),
      classes: dataset.classes,
      counts: { samples: samples.length, evaluated: samples.length, failed: 0, perClass: {} },
    },
    samples,
    errors: dataset.problems,
    metrics: null,
    warnings: [],
    labelIssues,
    timing: { totalMs: 1, textMs: 1, imageMs: 1, imagesComputed: 0, imagesFromCache: 0, imagesPerSecond: 0 },
    ...extra,
  };
}

const CSV = ['file_name,note,label', 'a.png,plain,cat', '"b.png","two', 'lines",dog', 'c.png,"x, y", "cat" ', 'd.png,,bird', 'e.png,missing'].join('\r\n') + '\r\n';

test('label-file issues: on the label of the image line, message and severity by score', async () => {
  const root = tmpDataset({ 'labels.csv': CSV, 'a.png': 'x', 'b.png': 'x', 'c.png': 'x', 'd.png': 'x' });
  const dataset = await readDataset(path.join(root, 'labels.csv'));
  const report = reportFor(dataset, { 'a.png': [['dog', 0.91], ['cat', 0.04]], 'c.png': [['bird', 0.6], ['dog', 0.3]] }, [
    { path: 'a.png', suggested: 'dog', score: 0.04 },
    { path: 'c.png', suggested: 'bird', score: 0.07 },
  ]);
  const text = CSV;
  const diags = labelIssueDiagnostics({ report, labelFile: { text, kind: 'csv', columns: {} }, warningScore: 0.05 });
  assert.equal(diags.length, 2);
  const [a, c] = diags;
  assert.equal(a.file, path.join(root, 'labels.csv'));
  assert.equal(a.message, "CLIP predicts 'dog' (0.91) but the label is 'cat' (0.04)");
  assert.equal(a.severity, 'warning');
  assert.equal(a.code, 'label-issue');
  assert.deepEqual(a.range, { start: { line: 1, character: 12 }, end: { line: 1, character: 15 } });
  assert.equal(textAt(text, a.range), 'cat');
  assert.equal(a.issue?.line, 2);
  assert.equal(a.related, undefined, 'no related-information row doubling the entry in the Problems panel');
  assert.equal(a.link, undefined, 'label lines have real quick fixes');
  // c.png comes after a record spanning two lines; its label is quoted and padded.
  assert.equal(c.range.start.line, 4);
  assert.equal(textAt(text, c.range), '"cat"');
  assert.equal(c.severity, 'information');
  assert.equal(c.message, "CLIP predicts 'bird' (0.60) but the label is 'cat' (0.07)", 'the given label is not in the top-K: its score is the label quality');
});

test('label-file issues follow the text: fixed labels disappear, moved lines move, undo brings them back, ignored ones hide', async () => {
  const root = tmpDataset({ 'labels.csv': CSV, 'a.png': 'x', 'b.png': 'x', 'c.png': 'x', 'd.png': 'x' });
  const dataset = await readDataset(path.join(root, 'labels.csv'));
  const report = reportFor(dataset, { 'a.png': [['dog', 0.91]] }, [{ path: 'a.png', suggested: 'dog', score: 0.04 }]);
  const run = (text: string, resolved?: Set<string>) => labelIssueDiagnostics({ report, labelFile: { text, kind: 'csv', columns: {} }, warningScore: 0.05, resolved });
  const fixed = applyEdits(CSV, [changeLabelEdit(CSV, 'csv', 2, 'cat', 'dog')]);
  assert.equal(run(fixed).length, 0);
  const shifted = CSV.replace('file_name,note,label\r\n', 'file_name,note,label\r\nz.png,new,cat\r\n\r\n');
  const moved = run(shifted);
  assert.equal(moved.length, 1);
  assert.equal(moved[0].range.start.line, 3);
  assert.equal(moved[0].issue?.line, 4);
  assert.equal(run(CSV).length, 1);
  assert.equal(run(CSV, new Set(['a.png'])).length, 0);
  const gone = CSV.replace('a.png,plain,cat\r\n', '');
  assert.equal(run(gone).length, 0);
  // Without the text (unreadable file): the report's line, zero width.
  const blind = labelIssueDiagnostics({ report, labelFile: null, warningScore: 0.05 });
  assert.deepEqual(blind[0].range, { start: { line: 1, character: 0 }, end: { line: 1, character: 0 } });
});

test('JSONL issues: the label value range, explicit columns from .clip-lens.json', async () => {
  const jsonl = '{"img": "x.png", "kind": "cat", "label": "unused"}\n{"img": "y.png", "kind": "dog", "label": "unused"}\n';
  const root = tmpDataset({ 'data.jsonl': jsonl, 'x.png': '1', 'y.png': '2' });
  const columns = { imageColumn: 'img', labelColumn: 'kind' };
  const dataset = await readDataset(path.join(root, 'data.jsonl'), columns);
  const report = reportFor(dataset, { 'y.png': [['cat', 0.8]] }, [{ path: 'y.png', suggested: 'cat', score: 0.1 }]);
  const [d] = labelIssueDiagnostics({ report, labelFile: { text: jsonl, kind: 'jsonl', columns }, warningScore: 0.05 });
  assert.equal(textAt(jsonl, d.range), '"dog"');
  assert.equal(d.range.start.line, 1);
});

test('class folders: issues on the image file itself, gone when the image moved', async () => {
  const root = tmpDataset({ 'cat/1.png': 'a', 'cat/2.png': 'b', 'dog/3.png': 'c' });
  const dataset = await readDataset(root);
  const report = reportFor(dataset, { 'cat/2.png': [['dog', 0.88], ['cat', 0.1]] }, [{ path: 'cat/2.png', suggested: 'dog', score: 0.1 }]);
  const [d] = labelIssueDiagnostics({ report, warningScore: 0.05 });
  assert.equal(d.file, path.join(root, 'cat', '2.png'));
  assert.deepEqual(d.range, FILE_START);
  assert.equal(d.message, "CLIP predicts 'dog' (0.88) but the image is in the folder 'cat' (0.10)");
  assert.equal(d.issue?.samplePath, 'cat/2.png');
  // Images have no text model, so no lightbulb in the Problems panel: the code is a link to the fix instead.
  assert.deepEqual(d.link, { label: "Move to 'dog'", command: 'clipLens.applyFix', args: [report.dataset.root, 'cat/2.png'] });
  assert.equal(labelIssueDiagnostics({ report, warningScore: 0.05, imageExists: () => false }).length, 0);
});

test('dataset problems: malformed and missing lines on their lines, unreadable images, duplicates with related locations', async () => {
  const root = tmpDataset({ 'labels.csv': CSV, 'a.png': 'x', 'b.png': 'x', 'c.png': 'x' });
  const dataset = await readDataset(path.join(root, 'labels.csv'));
  const report = reportFor(dataset, {}, []);
  report.samples!.find((s) => s.path === 'b.png')!.error = { code: 'image-undecodable', message: 'cannot decode' };
  report.errors.push({ code: 'cache-unavailable', message: 'no cache', file: '/cache' });
  const dup: Warning = { kind: 'duplicate', severity: 'warning', message: 'The same image twice', paths: ['a.png', 'c.png'], numbers: {} };
  report.warnings.push(dup);
  const diags = datasetDiagnostics({ report, labelFile: { text: CSV, kind: 'csv', columns: {} } });
  const byCode = (code: string) => diags.filter((d) => d.code === code);
  const bad = byCode('label-file-bad-line');
  assert.equal(bad.length, 1);
  assert.equal(bad[0].range.start.line, 6);
  assert.equal(textAt(CSV, bad[0].range), 'e.png,missing');
  const missing = byCode('image-missing');
  assert.equal(missing.length, 1);
  assert.equal(missing[0].range.start.line, 5);
  assert.equal(missing[0].severity, 'warning');
  const undecodable = byCode('image-undecodable');
  assert.equal(undecodable.length, 1);
  assert.equal(textAt(CSV, undecodable[0].range), '"b.png"');
  assert.match(undecodable[0].message, /^b\.png: cannot decode/);
  assert.equal(byCode('cache-unavailable').length, 0, 'cache problems are not about the dataset');
  const dups = byCode('duplicate');
  assert.equal(dups.length, 2);
  assert.equal(textAt(CSV, dups[0].related![0].range), 'c.png');
});

test('leakage: one diagnostic on the later copy, the earlier copy as related information; near groups relate their members', async () => {
  const root = tmpDataset({ 'labels.csv': CSV, 'a.png': 'x', 'b.png': 'x', 'c.png': 'x' });
  const dataset = await readDataset(path.join(root, 'labels.csv'));
  const report = reportFor(dataset, {}, []);
  report.samples!.find((s) => s.path === 'a.png')!.contentHash = 'h1';
  report.samples!.find((s) => s.path === 'c.png')!.contentHash = 'h2';
  report.duplicates = [{ kind: 'near', paths: ['a.png', 'c.png'], splits: ['train', 'test'], labels: ['cat', 'cat'], similarity: 0.97 }];
  report.leakage = [{ split: 'test', earlier: ['train'], paths: ['c.png'], copies: ['a.png'], metricsWithoutLeaked: null }];
  report.warnings.push({ kind: 'leakage', severity: 'error', split: 'test', paths: ['c.png'], message: '1 test image has a near-copy in train', numbers: { count: 1 } });
  report.warnings.push({ kind: 'conflicting-labels', severity: 'warning', paths: ['a.png', 'c.png'], message: 'different labels', numbers: {} });
  const diags = datasetDiagnostics({ report, labelFile: { text: CSV, kind: 'csv', columns: {} } });
  const leak = diags.filter((d) => d.code === 'leakage');
  assert.equal(leak.length, 1, 'only the later copy');
  assert.equal(leak[0].severity, 'error');
  assert.equal(textAt(CSV, leak[0].range), 'c.png');
  assert.match(leak[0].message, /^c\.png has a near-copy in 'train' \(a\.png\): 'test' accuracy is inflated/);
  assert.equal(leak[0].related!.length, 1);
  assert.equal(textAt(CSV, leak[0].related![0].range), 'a.png');
  assert.equal(leak[0].related![0].message, 'the earlier copy: a.png');
  const conflict = diags.filter((d) => d.code === 'conflicting-labels');
  assert.deepEqual(conflict.map((d) => d.related!.map((r) => r.message)), [['a near-copy: c.png'], ['a near-copy: a.png']]);
});

test('config diagnostics: syntax errors are errors, invalid values warnings, each at its token', () => {
  const file = '/d/.clip-lens.json';
  const bad = configDiagnostics(file, '{\n  "topK": 3,\n  "gate": {\n    "minTop1Accuracy": "high"\n  }\n}\n');
  assert.equal(bad.length, 1);
  assert.equal(bad[0].severity, 'warning');
  assert.match(bad[0].message, /^gate\.minTop1Accuracy: /);
  assert.equal(textAt('{\n  "topK": 3,\n  "gate": {\n    "minTop1Accuracy": "high"\n  }\n}\n', bad[0].range), '"high"');
  const syntax = configDiagnostics(file, '{\r\n  "topK": 3,,\r\n}');
  assert.equal(syntax.length, 1);
  assert.equal(syntax[0].severity, 'error');
  assert.equal(syntax[0].range.start.line, 1);
  assert.deepEqual(configDiagnostics(file, '{ "topK": 3 }'), []);
});

test('gate diagnostics sit on the threshold they come from; a missing key falls back to its nearest parent', () => {
  const text = '{\n  "gate": {\n    "minRecall": 0.5,\n    "classes": { "cat": { "minRecall": 0.9 } }\n  }\n}\n';
  const check = (configPath: string[], passed = false) => ({
    id: configPath.join('.'),
    kind: 'classRecall' as const,
    ruleId: 'clip-lens/min-class-recall',
    name: 'x',
    comparison: 'min' as const,
    actual: 0.4,
    required: 0.9,
    passed,
    message: `recall is 0.4, below ${configPath.join('.')}`,
    configKey: configPath.join('.'),
    configPath,
  });
  const gate: GateResult = {
    passed: false,
    checks: [check(['gate', 'classes', 'cat', 'minRecall']), check(['gate', 'minRecall']), check(['gate', 'maxLabelIssues']), check(['gate', 'minTop1Accuracy'], true)],
    summary: { total: 4, passed: 1, failed: 3 },
  };
  const diags = gateDiagnostics('/d/.clip-lens.json', text, gate);
  assert.equal(diags.length, 3, 'passing checks give nothing');
  assert.equal(textAt(text, diags[0].range), '"minRecall": 0.9');
  assert.equal(diags[0].range.start.line, 3);
  assert.equal(textAt(text, diags[1].range), '"minRecall": 0.5');
  assert.match(textAt(text, diags[2].range), /^"gate": \{/);
  assert.equal(diags[0].severity, 'error');
  assert.equal(diags[0].code, 'clip-lens/min-class-recall');
  assert.match(diags[0].message, /^Gate: /);
  assert.equal(keyPathRange('[1]', ['gate']), null);
  assert.deepEqual(gateDiagnostics('/d/.clip-lens.json', null, gate)[0].range, FILE_START);
});

test('scores print with enough digits to tell small ones apart', () => {
  assert.equal(formatScore(0.913), '0.91');
  assert.equal(formatScore(0.004), '0.004');
  assert.equal(formatScore(0.00003), '<0.0001');
  assert.equal(formatScore(0.9971), '0.9971');
  assert.equal(formatScore(0.99999), '>0.9999');
  assert.equal(formatScore(0), '0.00');
  const msg = labelIssueMessage({ index: 0, given: 'a', suggested: 'b', score: 0.001, rank: 1 }, { path: 'x', label: 'a', predicted: [{ class: 'b', score: 0.998 }] }, 'class-folders');
  assert.equal(msg, "CLIP predicts 'b' (0.998) but the image is in the folder 'a' (0.001)");
  // A label issue of the linear probe or kNN: the sample's top-K are zero-shot's scores (here 'a' 0.21, 'b' 0.10), which
  // must not be shown as that predictor's; the given label's figure is the issue's own score.
  const zeroShotTopK = { path: 'x', label: 'a', predicted: [{ class: 'a', score: 0.21 }, { class: 'b', score: 0.1 }] };
  const probeIssue = { index: 0, given: 'a', suggested: 'b', score: 0.0154, rank: 1 };
  assert.equal(labelIssueMessage(probeIssue, zeroShotTopK, 'class-folders', 'linear-probe'), "The linear probe predicts 'b' but the image is in the folder 'a' (0.02)");
  assert.equal(labelIssueMessage(probeIssue, zeroShotTopK, 'label-file', 'knn'), "The nearest images predict 'b' but the label is 'a' (0.02)");
  assert.equal(labelIssueMessage(probeIssue, zeroShotTopK, 'class-folders', 'zero-shot'), "CLIP predicts 'b' (0.10) but the image is in the folder 'a' (0.21)");
});

/** A report of `n` samples and `n` label issues (rank order = array order), without touching the disk. */
function bigReport(root: string, n: number, format: 'class-folders' | 'label-file', labelFile?: string): EvalReport {
  const samples: ReportSample[] = [];
  const labelIssues: LabelIssue[] = [];
  for (let i = 0; i < n; i++) {
    const p = format === 'label-file' ? `img/${i}.png` : `cat/${i}.png`;
    samples.push({ path: p, label: 'cat', ...(format === 'label-file' ? { source: { file: 'labels.csv', line: i + 2 } } : {}), predicted: [{ class: 'dog', score: 0.9 }, { class: 'cat', score: i / n / 10 }] });
    labelIssues.push({ index: i, given: 'cat', suggested: 'dog', score: i / n / 10, rank: i + 1, path: p });
  }
  const dataset: Dataset = { root, format, classes: ['cat', 'dog'], samples: [], problems: [], ...(labelFile ? { labelFile } : {}) };
  return reportFor(dataset, {}, [], { samples, labelIssues });
}

test('label issues at 100,000: the worst maxProblems shown in rank order, one entry counting the rest and opening the report', () => {
  const root = path.join(os.tmpdir(), 'clip-lens-big');
  const n = 100_000;
  const report = bigReport(root, n, 'class-folders');
  const asked: string[] = [];
  const out = labelIssueDiagnostics({ report, warningScore: 0.05, max: 300, imageExists: (p) => (asked.push(p), true) });
  assert.equal(out.length, 301);
  assert.deepEqual(out.slice(0, 300).map((d) => d.issue?.rank), Array.from({ length: 300 }, (_, i) => i + 1), 'worst first');
  assert.equal(asked.length, 300, 'images past the cap are not checked');
  const last = out[300];
  assert.equal(last.code, NOT_SHOWN_CODE);
  assert.equal(last.severity, 'information');
  assert.equal(last.file, root);
  assert.match(last.message, /^99,700 more likely label errors not shown \(the 300 worst are listed\): open the CLIP Lens report .* clipLens\.maxProblems/);
  assert.deepEqual(last.link, { label: 'Open CLIP Lens report', command: 'clipLens.openReport', args: [root] });
  // Ignored and moved images are neither shown nor counted; a cap above the count adds no entry; no cap: all.
  const resolved = new Set(['cat/0.png', 'cat/1.png']);
  const gone = new Set(['cat/2.png']);
  const some = labelIssueDiagnostics({ report, warningScore: 0.05, max: 3, resolved, imageExists: (p) => !gone.has(p) });
  assert.deepEqual(some.slice(0, 3).map((d) => d.issue?.samplePath), ['cat/3.png', 'cat/4.png', 'cat/5.png']);
  // 100,000 - 2 ignored - 1 moved (checked before the cap) - 3 shown
  assert.match(some[3].message, /^99,994 more /);
  assert.equal(labelIssueDiagnostics({ report: bigReport(root, 5, 'class-folders'), warningScore: 0.05, max: 5 }).length, 5);
  assert.equal(labelIssueDiagnostics({ report: bigReport(root, 2000, 'class-folders'), warningScore: 0.05 }).length, 2000);
});

test('label-file issues at 100,000: capped, the count leaves out lines whose label changed; the entry is on the label file', () => {
  const root = path.join(os.tmpdir(), 'clip-lens-big-csv');
  const n = 100_000;
  const csv = path.join(root, 'labels.csv');
  const report = bigReport(root, n, 'label-file', csv);
  const lines = ['file_name,label'];
  for (let i = 0; i < n; i++) lines.push(`img/${i}.png,${i % 10 === 9 ? 'dog' : 'cat'}`); // every tenth label already fixed
  const out = labelIssueDiagnostics({ report, labelFile: { text: lines.join('\n') + '\n', kind: 'csv', columns: {} }, warningScore: 0.05, max: 250 });
  assert.equal(out.length, 251);
  assert.ok(out.slice(0, 250).every((d) => d.code === 'label-issue' && d.file === csv));
  assert.equal(out[249].issue?.samplePath, 'img/276.png', 'the 250th unfixed issue in rank order');
  // 90,000 unfixed, 250 shown.
  assert.match(out[250].message, /^89,750 more likely label errors not shown/);
  assert.equal(out[250].file, csv);
});

test('dataset problems at 100,000: capped with errors first, then warnings, then information; one entry counts the rest', () => {
  const root = path.join(os.tmpdir(), 'clip-lens-big-problems');
  const n = 100_000;
  const report = bigReport(root, 10, 'class-folders');
  report.errors = Array.from({ length: n }, (_, i) => ({ code: i % 2 ? 'empty-class' : 'image-missing', message: `problem ${i}`, path: `cat/${i}.png` }));
  report.samples![7].error = { code: 'image-unreadable', message: 'broken' };
  report.warnings = [{ kind: 'conflicting-labels', severity: 'error', message: 'same image, two labels', paths: ['cat/1.png', 'cat/2.png'] } as Warning];
  const all = datasetDiagnostics({ report });
  assert.equal(all.length, n + 3);
  const out = datasetDiagnostics({ report, max: 100 });
  assert.equal(out.length, 101);
  assert.deepEqual(out.slice(0, 2).map((d) => d.severity), ['error', 'error']);
  assert.ok(out.slice(2, 100).every((d) => d.severity === 'warning'));
  assert.equal(out[2].code, 'image-unreadable', 'in report order within a severity');
  assert.equal(out[3].message, 'problem 0');
  assert.equal(out[100].code, NOT_SHOWN_CODE);
  assert.match(out[100].message, /^99,903 more dataset problems not shown/);
});
