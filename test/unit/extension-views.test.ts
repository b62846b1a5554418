import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { EvalReport, LabelIssue, Metrics, ReportSample, Warning } from '../../src/core/report';
import type { GateResult } from '../../src/core/gate';
import { classDescription, classImages, classRows, duplicateGroupRows, imageDescription, issueGroups, viewOrder, warningLabel, warningNumbers, WARNING_EXPLANATIONS } from '../../src/extension/trees/model';
import { datasetName, downloadMessage, escapeMarkdown, formatBytes, formatDuration, pct, progressMessage, runName, runsProgress, statusBarText, statusSummary, statusTooltipLines, worstClass } from '../../src/extension/format';
import { classifyChange } from '../../src/extension/datasetFiles';
import { folderMoveTarget } from '../../src/extension/fixPlan';
import { findOnPath } from '../../src/extension/platform';
import { writeReport } from '../../src/extension/reportFile';

const classes = ['bird', 'cat', 'dog'];

function sample(p: string, label: string, top: [string, number][], error?: string): ReportSample {
  return { path: p, label, predicted: top.map(([c, s]) => ({ class: c, score: s })), ...(error ? { error: { code: 'image-unreadable', message: error }, predicted: [] } : {}) };
}

function metrics(perClass: { class: string; support: number; recall: number; predicted: number }[]): Metrics {
  return {
    classes,
    n: perClass.reduce((s, c) => s + c.support, 0),
    top1Accuracy: 0.625,
    balancedAccuracy: 0.5,
    recallAtK: { '1': 0.625, '3': 1 },
    macro: { precision: 0.5, recall: 0.5, f1: 0.5 },
    weighted: { precision: 0.5, recall: 0.5, f1: 0.5 },
    perClass: perClass.map((c) => ({ ...c, precision: c.predicted ? 0.5 : 0, f1: 0.4, recallAtK: {}, averagePrecision: null })),
    confusionMatrix: [],
  };
}

function report(): EvalReport {
  const samples = [
    sample('cat/1.png', 'cat', [['cat', 0.9], ['dog', 0.1]]),
    sample('cat/2.png', 'cat', [['dog', 0.7], ['cat', 0.2]]),
    sample('cat/3.png', 'cat', [['dog', 0.95], ['cat', 0.01]]),
    sample('cat/4.png', 'cat', [], 'cannot decode'),
    sample('cat/5.png', 'cat', [['cat', 0.51], ['dog', 0.49]]),
    sample('dog/1.png', 'dog', [['dog', 0.8], ['cat', 0.2]]),
    sample('dog/2.png', 'dog', [['cat', 0.6], ['dog', 0.3]]),
    sample('bird/1.png', 'bird', [['cat', 0.6], ['dog', 0.3]]),
  ];
  const issues: LabelIssue[] = [
    { index: 2, given: 'cat', suggested: 'dog', score: 0.01, rank: 1, path: 'cat/3.png' },
    { index: 7, given: 'bird', suggested: 'cat', score: 0.02, rank: 2, path: 'bird/1.png' },
    { index: 1, given: 'cat', suggested: 'dog', score: 0.2, rank: 3, path: 'cat/2.png' },
  ];
  const warnings: Warning[] = [
    { kind: 'good-accuracy', severity: 'info', message: 'ok', numbers: { top1Accuracy: 0.8 } },
    { kind: 'rare-class-low-recall', severity: 'warning', class: 'bird', message: 'bird is rare', numbers: { recall: 0, support: 1, threshold: 0.5 } },
    { kind: 'possible-leakage', severity: 'error', paths: ['cat/1.png', 'dog/1.png'], message: 'leak', numbers: { copies: 2 } },
  ];
  return {
    schemaVersion: 2,
    tool: { name: 'clip-lens', version: 't' },
    createdAt: '2025-01-01T00:00:00.000Z',
    model: { id: 'clip-vit-base-patch32', dir: '/m', quantized: false, embeddingDim: 4, logitScale: 100, imageSize: 224 },
    templates: { name: 'simple', count: 1 },
    topK: 3,
    dataset: { root: '/data/pets', format: 'class-folders', classes, counts: { samples: 8, evaluated: 7, failed: 1, perClass: { bird: 1, cat: 5, dog: 2 } } },
    samples,
    errors: [],
    metrics: metrics([
      { class: 'bird', support: 1, recall: 0, predicted: 0 },
      { class: 'cat', support: 4, recall: 0.5, predicted: 4 },
      { class: 'dog', support: 2, recall: 0.5, predicted: 3 },
    ]),
    warnings,
    labelIssues: issues,
    timing: { totalMs: 1, textMs: 1, imageMs: 1, imagesComputed: 0, imagesFromCache: 0, imagesPerSecond: 0 },
  };
}

test('class rows: counts, recall, warnings about the class; no recall for a class without evaluated images', () => {
  const r = report();
  const rows = classRows(r);
  assert.deepEqual(rows.map((x) => x.class), classes);
  const bird = rows[0];
  assert.equal(bird.images, 1);
  assert.equal(bird.recall, 0);
  assert.equal(bird.precision, null, 'nothing predicted as bird');
  assert.deepEqual(bird.warnings.map((w) => w.kind), ['rare-class-low-recall']);
  assert.equal(classDescription(rows[1]), '5 images · recall 50%');
  // The view lists the classes a warning is about first, so the worst class is not below the fold.
  const ordered = viewOrder([...rows].reverse());
  assert.equal(ordered[0]!.class, 'bird');
  assert.deepEqual(ordered.slice(1).map((x) => x.class), ['dog', 'cat'], 'the others keep their order');
  r.metrics!.perClass[2].support = 0;
  assert.equal(classRows(r)[2].recall, null);
});

test('class images: confident mistakes first, then unreadable, then correct ones least confident first', () => {
  const rows = classImages(report(), 'cat');
  assert.deepEqual(rows.map((x) => x.path), ['cat/3.png', 'cat/2.png', 'cat/4.png', 'cat/5.png', 'cat/1.png']);
  assert.equal(rows[0].issueRank, 1);
  assert.equal(imageDescription(rows[0]), '→ dog 0.95 (cat 0.01)');
  assert.equal(imageDescription(rows[2]), 'unreadable: cannot decode');
  assert.equal(imageDescription(rows[4]), '✓ 0.90');
});

test('issue groups: by given -> suggested, ordered by their most suspicious issue, hiding handled samples', () => {
  const groups = issueGroups(report());
  assert.deepEqual(groups.map((g) => `${g.given}>${g.suggested}:${g.issues.map((i) => i.rank).join(',')}`), ['cat>dog:1,3', 'bird>cat:2']);
  const after = issueGroups(report(), new Set(['cat/3.png', 'cat/2.png']));
  assert.deepEqual(after.map((g) => `${g.given}>${g.suggested}`), ['bird>cat']);
});

test('duplicate groups: leaks first, then conflicting labels, then the rest; images by sample index', () => {
  const r = report();
  const paths = r.samples!.map((s) => s.path);
  r.duplicates = [
    { kind: 'exact', paths: [paths[0], paths[1]], splits: [], labels: [r.samples![0].label, r.samples![0].label], similarity: 1 },
    { kind: 'near', paths: [paths[2], paths[3]], splits: ['train', 'test'], labels: [r.samples![2].label, r.samples![2].label], similarity: 0.91234 },
    { kind: 'exact', paths: [paths[1], paths[2]], splits: [], labels: ['x', 'y'], similarity: 1 },
  ];
  const rows = duplicateGroupRows(r);
  assert.deepEqual(rows.map((x) => [x.group, x.leak, x.conflicting, x.indices]), [
    [1, true, false, [2, 3]],
    [2, false, true, [1, 2]],
    [0, false, false, [0, 1]],
  ]);
  assert.equal(rows[0].description, 'near-copies 0.912 · across train, test');
  assert.equal(rows[1].description, 'exact copies · different labels');
  assert.equal(rows[2].label, `${paths[0].split('/').pop()} + 1`);
  assert.deepEqual(duplicateGroupRows({ ...r, duplicates: undefined }), []);
});

test('warnings: labels, numbers as percentages where they are fractions, an explanation for every kind', () => {
  const [, rare, leak] = report().warnings;
  assert.equal(warningLabel(rare), 'Rare class, low recall: bird');
  assert.equal(warningNumbers(rare), 'recall 0 · support 1 · threshold 50%');
  assert.equal(warningNumbers({ ...rare, numbers: { supportFraction: 0.011, top1Accuracy: 0.89, n: 354, ratio: 11.25 } }), 'support fraction 1.1% · top-1 accuracy 89% · images 354 · ratio 11.25');
  assert.equal(warningLabel(leak), 'Possible leakage between splits');
  for (const text of Object.values(WARNING_EXPLANATIONS)) assert.ok(text.length > 40);
});

test('status bar: top-1, the worst class, the gate, out-of-date marker', () => {
  const r = report();
  assert.deepEqual(worstClass(r.metrics), { class: 'bird', recall: 0, support: 1 });
  const gate: GateResult = { passed: false, checks: [], summary: { total: 3, passed: 1, failed: 2 } };
  assert.equal(statusBarText(statusSummary(r, gate, false, 'pets')), '$(eye) CLIP 62.5% · worst bird 0% · $(error) gate 2/3');
  assert.equal(statusBarText(statusSummary(r, null, true, 'pets')), '$(eye) CLIP 62.5% · worst bird 0% $(history)');
  const passed: GateResult = { passed: true, checks: [], summary: { total: 3, passed: 3, failed: 0 } };
  assert.equal(statusBarText(statusSummary({ ...r, metrics: null }, passed, false, 'pets')), '$(eye) CLIP: no result · $(pass) gate');
  const tooltip = statusTooltipLines(r, gate, { datasetName: 'pets', stale: true }).join('\n');
  assert.match(tooltip, /Top-1 accuracy \*\*62\.5%\*\* \(fair\) · balanced 50% · Recall@3 100%/);
  assert.match(tooltip, /3 likely label errors · 3 warnings/);
  assert.match(tooltip, /2 of 3 thresholds not met/);
  assert.match(tooltip, /changed since/);
  // After fixes: the tooltip counts the issues still open (it was stale before).
  assert.match(statusTooltipLines(r, gate, { datasetName: 'pets', stale: false, handled: 2 }).join('\n'), /1 likely label error \(2 fixed or ignored since the evaluation\) · 3 warnings/);
  assert.doesNotMatch(tooltip, /Ratchet/);
});

test('status bar: the ratchet part of the gate, with the baseline file', () => {
  const r = report();
  const drop = (id: string, passed: boolean): GateResult['checks'][0] => ({
    id,
    kind: 'classRecallDrop',
    ruleId: 'clip-lens/max-drop-class-recall',
    name: id,
    comparison: 'min',
    actual: passed ? 0.9 : 0.5,
    required: 0.85,
    passed,
    message: `recall of ${id} fell`,
    configKey: 'gate.maxDrop.recall',
    configPath: ['gate', 'maxDrop', 'recall'],
    baseline: { file: 'data/.clip-lens-baseline.json', value: 0.9, maxDrop: 0.05, drop: passed ? 0 : 0.4 },
  });
  const failing: GateResult = { passed: false, checks: [drop('cat', false), drop('dog', true)], summary: { total: 2, passed: 1, failed: 1 } };
  assert.equal(statusBarText(statusSummary(r, failing, false, 'pets')), '$(eye) CLIP 62.5% · worst bird 0% · $(error) gate 1/2 (1 vs baseline)');
  assert.match(statusTooltipLines(r, failing, { datasetName: 'pets', stale: false }).join('\n'), /Ratchet: \*\*1 of 2 drop checks failed\*\* against the baseline data\/\\\.clip\\-lens\\-baseline\\\.json/);
  const passing: GateResult = { passed: true, checks: [drop('dog', true)], summary: { total: 1, passed: 1, failed: 0 } };
  assert.equal(statusBarText(statusSummary(r, passing, false, 'pets')), '$(eye) CLIP 62.5% · worst bird 0% · $(pass) gate');
  assert.match(statusTooltipLines(r, passing, { datasetName: 'pets', stale: false }).join('\n'), /Ratchet: all 1 drop checks within gate\.maxDrop/);
});

test('numbers for people', () => {
  assert.equal(pct(0.875), '87.5%');
  assert.equal(pct(1), '100%');
  assert.equal(pct(0.12345), '12.3%');
  assert.equal(formatBytes(352_000_000), '352.0 MB');
  assert.equal(formatBytes(1_220_000_000), '1.22 GB');
  assert.equal(formatBytes(999), '999 B');
  assert.equal(formatDuration(4200), '4.2 s');
  assert.equal(formatDuration(185_000), '3 min 05 s');
  assert.equal(progressMessage({ phase: 'images', done: 412, total: 1000, rate: 38.46, fromCache: 300 }), '412 / 1,000 images · 38 images/s · 300 already embedded');
  assert.equal(progressMessage({ phase: 'images', done: 2, total: 10, rate: 1.25, fromCache: 0 }), '2 / 10 images · 1.3 images/s');
  assert.equal(downloadMessage({ file: 'onnx/vision_model.onnx', bytes: 100e6, totalBytes: 352e6, bytesPerSecond: 11.2e6 }, 20.5e6, 606e6), 'onnx/vision_model.onnx · 120.5 MB of ≈606.0 MB · 11.2 MB/s');
  assert.equal(escapeMarkdown('a_b*[c](d)'), 'a\\_b\\*\\[c\\]\\(d\\)');
  assert.equal(datasetName('/data/pets/'), 'pets');
  assert.equal(datasetName('C:\\data\\pets'), 'pets');
});

test('runsProgress: one model as before; two models each named with its own progress, the fraction the slower one\'s', () => {
  const images = (done: number, total = 1000) => ({ phase: 'images' as const, done, total, rate: 20, fromCache: 0 });
  assert.deepEqual(runsProgress([{ name: 'A', progress: images(412) }]), { message: '412 / 1,000 images · 20 images/s', fraction: 0.412 });
  assert.deepEqual(runsProgress([{ name: 'A', progress: { phase: 'metrics', done: 0, total: 1, rate: 0, fromCache: 0 } }]), { message: 'Computing metrics and label issues…', fraction: undefined });
  assert.equal(runName('ViT-B-32', 'fp32'), 'ViT-B-32');
  assert.equal(runName('ViT-B-32', 'int8'), 'ViT-B-32 (int8)');
  const two = runsProgress([{ name: 'ViT-B-32', progress: images(412) }, { name: 'ViT-B-32 (int8)', progress: images(380) }]);
  assert.equal(two.message, 'ViT-B-32: 412 / 1,000 images · 20 images/s — ViT-B-32 (int8): 380 / 1,000 images · 20 images/s');
  assert.equal(two.fraction, 0.38);
  const oneAhead = runsProgress([{ name: 'A', progress: { phase: 'metrics', done: 0, total: 1, rate: 0, fromCache: 0 } }, { name: 'B', progress: images(900) }]);
  assert.equal(oneAhead.message, 'A: Computing metrics and label issues… — B: 900 / 1,000 images · 20 images/s');
  assert.equal(oneAhead.fraction, 0.9);
  const notYet = runsProgress([{ name: 'A', progress: images(10) }, { name: 'B', progress: undefined }]);
  assert.equal(notYet.message, 'A: 10 / 1,000 images · 20 images/s — B: starting');
  assert.equal(notYet.fraction, 0);
});

test('folderMoveTarget: into the other class folder, under the same split; refuses what is not a class folder move', () => {
  assert.equal(folderMoveTarget('cat/sub/x.jpg', 'class-folders', 'cat', 'dog'), 'dog/x.jpg');
  assert.equal(folderMoveTarget('train/cat/x.jpg', 'class-folders-split', 'cat', 'dog'), 'train/dog/x.jpg');
  assert.throws(() => folderMoveTarget('dog/x.jpg', 'class-folders', 'cat', 'bird'), /not in the folder of class 'cat'/);
  assert.throws(() => folderMoveTarget('x.jpg', 'label-file', 'cat', 'dog'), /label-file dataset/);
  assert.throws(() => folderMoveTarget('cat/x.jpg', 'class-folders', 'cat', '../etc'), /cannot be a folder name/);
  assert.throws(() => folderMoveTarget('cat/x.jpg', 'class-folders', 'cat', 'cat'), /already in/);
});

test('classifyChange: the label file, the config, images; hidden folders and other files do not count', () => {
  const root = path.resolve('/data/pets');
  const r = { root, report: { dataset: { labelFile: path.join(root, 'meta', 'labels.csv') } } };
  assert.equal(classifyChange(r, path.join(root, 'meta', 'labels.csv')), 'labels');
  assert.equal(classifyChange(r, path.join(root, '.clip-lens.json')), 'config');
  assert.equal(classifyChange(r, path.join(root, 'cat', 'x.JPG')), 'images');
  assert.equal(classifyChange(r, path.join(root, '.git', 'x.png')), null);
  assert.equal(classifyChange(r, path.join(root, 'notes.txt')), null);
  assert.equal(classifyChange(r, path.resolve('/data/other/x.png')), null);
});

test('findOnPath: first match in PATH order, Windows extensions', () => {
  const files = new Set(['/usr/local/bin/node', '/usr/bin/node', 'C:\\nodejs\\node.exe']);
  assert.equal(findOnPath('node', '/bin:/usr/local/bin:/usr/bin', 'linux', (p) => files.has(p)), '/usr/local/bin/node');
  assert.equal(findOnPath('node', 'C:\\Windows;C:\\nodejs', 'win32', (p) => files.has(p)), 'C:\\nodejs\\node.exe');
  assert.equal(findOnPath('node', undefined, 'linux', () => true), undefined);
});

test('writeReport: the saved file parses back to the same report, in slices, atomically', async () => {
  const r = report();
  r.samples = Array.from({ length: 4500 }, (_, i) => sample(`cat/${i}.png`, 'cat', [['cat', i / 4500]]));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-lens-report-'));
  const file = path.join(dir, 'r.json');
  await writeReport(file, r);
  assert.deepEqual(JSON.parse(fs.readFileSync(file, 'utf8')), r);
  assert.deepEqual(fs.readdirSync(dir), ['r.json']);
  const empty = { ...r, samples: [] };
  await writeReport(file, empty);
  assert.deepEqual(JSON.parse(fs.readFileSync(file, 'utf8')), empty);
});

test('pathKey: Windows paths compare without regard to case; POSIX paths exactly', async () => {
  const { pathKey, samePath } = await import('../../src/extension/datasetFiles.js');
  assert.equal(samePath('C:\\Data\\pets\\labels.csv', 'c:\\data\\Pets\\labels.csv', 'win32'), true);
  assert.equal(samePath('/data/Pets', '/data/pets', 'linux'), false);
  assert.equal(pathKey('/data/pets/../pets/x', 'linux'), '/data/pets/x');
});
