/** Small eval reports whose metrics follow from their samples, for the baseline/ratchet and compare tests. */
import type { ClassMetrics, EvalReport, Metrics, ReportSample } from '../../src/core/report';

export interface S {
  label: string;
  pred: string;
  /** Content id (same id = same image bytes); default: label + index. */
  id?: string;
}

export const hash = (id: string) => Buffer.from(id.padEnd(32, '.')).toString('hex').slice(0, 64).padEnd(64, '0');

export function makeReport(classes: string[], samples: S[], opts: { model?: string; templates?: string; predictor?: string; issues?: number[] } = {}): EvalReport {
  const reportSamples: ReportSample[] = samples.map((s, i) => ({
    path: `${s.label}/${i}.png`,
    label: s.label,
    predicted: [{ class: s.pred, score: 0.9 }],
    contentHash: hash(s.id ?? `${s.label}-${i}`),
  }));
  const perClass: ClassMetrics[] = classes.map((c) => {
    const mine = samples.filter((s) => s.label === c);
    const correct = mine.filter((s) => s.pred === c).length;
    const predicted = samples.filter((s) => s.pred === c).length;
    const precision = predicted ? correct / predicted : 0;
    const recall = mine.length ? correct / mine.length : 0;
    return { class: c, support: mine.length, predicted, precision, recall, f1: precision + recall ? (2 * precision * recall) / (precision + recall) : 0, recallAtK: {}, averagePrecision: null };
  });
  const n = samples.length;
  const withSupport = perClass.filter((c) => c.support > 0);
  const metrics: Metrics = {
    classes,
    n,
    top1Accuracy: samples.filter((s) => s.pred === s.label).length / n,
    balancedAccuracy: withSupport.reduce((a, c) => a + c.recall, 0) / withSupport.length,
    recallAtK: { '1': samples.filter((s) => s.pred === s.label).length / n },
    macro: { precision: 0, recall: 0, f1: 0 },
    weighted: { precision: 0, recall: 0, f1: 0 },
    perClass,
    confusionMatrix: classes.map((t) => classes.map((p) => samples.filter((s) => s.label === t && s.pred === p).length)),
  };
  const report = {
    schemaVersion: 2,
    tool: { name: 'clip-lens', version: '0.0.0' },
    createdAt: '2025-01-01T00:00:00.000Z',
    model: { id: opts.model ?? 'clip-vit-base-patch32', dir: '/models/x', quantized: false, embeddingDim: 512, logitScale: 100, imageSize: 224 },
    templates: { name: opts.templates ?? 'simple', count: opts.templates === 'imagenet80' ? 80 : 1 },
    topK: 5,
    dataset: { root: '/d', format: 'class-folders', classes, counts: { samples: n, evaluated: n, failed: 0, perClass: {} } },
    samples: reportSamples,
    errors: [],
    metrics,
    warnings: [],
    labelIssues: (opts.issues ?? []).map((index, r) => ({ index, given: samples[index].label, suggested: samples[index].pred, score: 0.01, rank: r + 1 })),
    timing: { totalMs: 0, textMs: 0, imageMs: 0, imagesComputed: 0, imagesFromCache: 0, imagesPerSecond: 0 },
  } as EvalReport;
  if (opts.predictor) (report as unknown as { predictor: string }).predictor = opts.predictor;
  return report;
}

/** n samples of `label`, the first `right` predicted correctly, the rest as `wrong`. */
export function many(label: string, n: number, right: number, wrong: string, prefix = label): S[] {
  return Array.from({ length: n }, (_, i) => ({ label, pred: i < right ? label : wrong, id: `${prefix}-${i}` }));
}
