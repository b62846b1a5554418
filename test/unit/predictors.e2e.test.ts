/**
 * End-to-end (issue 12): the built `clip-lens` on the bundled example with its class folders renamed c00..c15, as a
 * dataset with opaque class names looks. With default options the label errors must still be the known wrong labels
 * (from the linear probe, since zero-shot is at chance), and the report must say which predictor spoke and why.
 * The original example keeps zero-shot (its names mean something to CLIP) and its 18 known wrong labels.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import type { EvalReport } from '../../src/core/report';

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, '../..');
const CLI = path.join(ROOT, 'dist/cli.js');
const MODEL = path.join(ROOT, 'test/fixtures/tiny-clip');
const EXAMPLE = path.join(ROOT, 'examples/shapes');

async function evalReport(dataset: string, tmp: string, name: string, extra: string[] = []): Promise<EvalReport> {
  const out = path.join(tmp, `${name}.json`);
  await run(process.execPath, [CLI, 'eval', dataset, '--model', MODEL, '--cache', path.join(tmp, 'cache'), '--json', out, ...extra], { cwd: ROOT, maxBuffer: 64 << 20 });
  return JSON.parse(fs.readFileSync(out, 'utf8')) as EvalReport;
}

/** known-label-errors.txt paths, with folders mapped by `rename`. */
function knownErrors(rename: (folder: string) => string = (f) => f): Set<string> {
  const out = new Set<string>();
  for (const line of fs.readFileSync(path.join(EXAMPLE, 'known-label-errors.txt'), 'utf8').split('\n')) {
    if (!line.trim() || line.startsWith('#')) continue;
    const [folder, file] = line.split('\t')[0].trim().split('/');
    out.add(`${rename(folder)}/${file}`);
  }
  return out;
}

function precisionRecall(report: EvalReport, known: Set<string>): { precision: number; recall: number } {
  const flagged = new Set(report.labelIssues.map((i) => i.path));
  const hits = [...known].filter((p) => flagged.has(p)).length;
  return { precision: flagged.size ? hits / flagged.size : 0, recall: hits / known.size };
}

test('opaque class names (folders renamed c00..c15): default eval finds the wrong labels with the linear probe', async (t) => {
  assert.ok(fs.existsSync(CLI), 'dist/cli.js missing: run `npm run build` (npm test does)');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-lens-opaque-'));
  t.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const data = path.join(tmp, 'data');
  const folders = fs.readdirSync(EXAMPLE, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name).sort();
  assert.equal(folders.length, 16);
  const renamed = new Map(folders.map((f, i) => [f, `c${String(i).padStart(2, '0')}`]));
  for (const f of folders) fs.cpSync(path.join(EXAMPLE, f), path.join(data, renamed.get(f)!), { recursive: true });

  const report = await evalReport(data, tmp, 'opaque');
  const known = knownErrors((f) => renamed.get(f)!);
  assert.equal(known.size, 18);
  assert.ok(report.metrics && report.metrics.top1Accuracy < 0.2, `zero-shot top-1 ${report.metrics?.top1Accuracy} should be near chance`);
  assert.equal(report.predictor?.requested, 'auto');
  assert.equal(report.predictor?.used, 'linear-probe');
  assert.match(report.predictor?.reason ?? '', /near chance/);
  const { precision, recall } = precisionRecall(report, known);
  assert.ok(recall >= 0.9, `recall ${recall}`);
  assert.ok(precision >= 0.85, `precision ${precision}`);
  const w = report.warnings.find((x) => x.kind === 'zero-shot-at-chance');
  assert.ok(w, 'zero-shot-at-chance warning');
  assert.match(w.message, /the class names mean nothing to CLIP/);
  // the rare-class warnings are the linear probe's, not zero-shot's (which flagged 9 of the rare classes only
  // because the names mean nothing to CLIP)
  const rare = report.warnings.filter((x) => x.kind === 'rare-class-low-recall');
  assert.ok(rare.every((x) => x.predictor === 'linear-probe'), JSON.stringify(rare));
  const probeRecall = new Map(report.predictor!.perClass.map((c) => [c.class, c.probeRecall]));
  for (const x of rare) assert.equal(x.numbers.recall, probeRecall.get(x.class!), x.class);
  assert.ok(rare.length < 9, `${rare.length} rare-class warnings`);
  // per class: zero-shot recall next to probe recall
  assert.equal(report.predictor?.perClass.length, 16);
  assert.ok(report.predictor!.perClass.every((c) => typeof c.probeRecall === 'number'));
  assert.ok(report.predictor!.linearProbe!.balancedAccuracy > 0.7);
  // C and how it was chosen are in the report; the first run fits the probe, a re-run of the unchanged dataset
  // takes its probabilities from the probe cache (next to the embedding cache) and says the same
  assert.equal(report.predictor!.linearProbe!.c, 10);
  assert.equal(report.predictor!.linearProbe!.cChosenBy, 'default');
  assert.equal(report.predictor!.linearProbe!.fromCache, false);
  const again = await evalReport(data, tmp, 'opaque-again');
  assert.equal(again.predictor!.linearProbe!.fromCache, true);
  assert.deepEqual(again.labelIssues, report.labelIssues);
  assert.deepEqual(again.predictor!.perClass, report.predictor!.perClass);

  // zero-shot on request: the old behaviour, hundreds of false alarms
  const zs = await evalReport(data, tmp, 'opaque-zs', ['--predictor', 'zero-shot']);
  assert.equal(zs.predictor?.used, 'zero-shot');
  assert.ok(precisionRecall(zs, known).precision < 0.2);
  // knn on request
  const knn = await evalReport(data, tmp, 'opaque-knn', ['--predictor', 'knn']);
  assert.equal(knn.predictor?.used, 'knn');
  assert.ok(precisionRecall(knn, known).recall >= 0.9);
  assert.match(knn.warnings.find((x) => x.kind === 'zero-shot-at-chance')?.message ?? '', /rare-class warnings come from kNN/);
  assert.ok(knn.warnings.filter((x) => x.kind === 'rare-class-low-recall').every((x) => x.predictor === 'knn'));
});

test('readable class names: auto keeps zero-shot and its 18 known wrong labels; a bad --predictor exits 2', async (t) => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-lens-readable-'));
  t.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const report = await evalReport(EXAMPLE, tmp, 'readable');
  assert.equal(report.predictor?.used, 'zero-shot');
  assert.ok(report.predictor?.linearProbe, 'the probe ran for the per-class comparison');
  const { recall } = precisionRecall(report, knownErrors());
  assert.equal(recall, 1);
  assert.ok(!report.warnings.some((w) => w.kind === 'zero-shot-at-chance'));
  await assert.rejects(
    run(process.execPath, [CLI, 'eval', EXAMPLE, '--model', MODEL, '--predictor', 'probe'], { cwd: ROOT }),
    (e: { code: number; stderr: string }) => e.code === 2 && /--predictor expects auto, zero-shot, linear-probe, knn, got 'probe'/.test(e.stderr),
  );
});
