/**
 * Read-only view of a report for the panel: class indices, per-sample label / top-1 indices as typed arrays (so
 * 100,000 samples cost a few hundred kilobytes), the metrics of the selected split, and sample look-ups.
 */
import type { ClassMetrics, EvalReport, Metrics, ReportSample, Warning } from '../src/core/report';
import { headlineK, reportBands, type MetricBands } from '../src/core/metricCatalogue';
import { datasetFormat } from '../src/core/datasetFormat';

export class ReportModel {
  readonly classes: readonly string[];
  readonly classIndex: ReadonlyMap<string, number>;
  /** Label index per sample (-1 for a label outside the class list). */
  readonly labelIdx: Int32Array;
  /** Top-1 prediction index per sample (-1 when the sample has no prediction). */
  readonly top1Idx: Int32Array;
  /** Sample index by path. */
  readonly byPath: ReadonlyMap<string, number>;
  /** Every sample has a full probability vector (PR curves can be computed here). */
  readonly hasProbabilities: boolean;
  /** Classes named by a warning, with the most severe severity. */
  readonly warnedClasses: ReadonlyMap<string, Warning['severity']>;
  /** Dataset folder name. */
  readonly name: string;

  constructor(
    readonly report: EvalReport,
    readonly split: string | null,
  ) {
    const classes = report.metrics?.classes ?? report.dataset.classes;
    this.classes = classes;
    this.classIndex = new Map(classes.map((c, i) => [c, i]));
    const n = report.samples.length;
    this.labelIdx = new Int32Array(n);
    this.top1Idx = new Int32Array(n);
    const byPath = new Map<string, number>();
    let full = n > 0;
    for (let i = 0; i < n; i++) {
      const s = report.samples[i];
      this.labelIdx[i] = this.classIndex.get(s.label) ?? -1;
      this.top1Idx[i] = s.predicted.length ? (this.classIndex.get(s.predicted[0].class) ?? -1) : -1;
      byPath.set(s.path, i);
      if (full && s.predicted.length && s.probabilities?.length !== classes.length) full = false;
    }
    this.byPath = byPath;
    this.hasProbabilities = full;
    const warned = new Map<string, Warning['severity']>();
    const rank = { error: 0, warning: 1, info: 2 } as const;
    for (const w of report.warnings) {
      if (!w.class || w.severity === 'info') continue;
      const prev = warned.get(w.class);
      if (!prev || rank[w.severity] < rank[prev]) warned.set(w.class, w.severity);
    }
    this.warnedClasses = warned;
    this.name = report.dataset.root.split(/[\\/]/).filter(Boolean).pop() ?? report.dataset.root;
  }

  /** Metrics of the selected split (or of all samples). */
  get metrics(): Metrics | null {
    if (this.split && this.report.metricsBySplit?.[this.split]) return this.report.metricsBySplit[this.split];
    return this.report.metrics;
  }

  get splits(): string[] {
    return this.report.dataset.splits ?? Object.keys(this.report.metricsBySplit ?? {});
  }

  /** The good/fair/poor thresholds of this report (the user's warning thresholds it was evaluated with). */
  get bands(): MetricBands {
    return reportBands(this.report);
  }

  /** The K headlined as Recall@K ('5' for top-5 runs), or null when no Recall@K was measured. */
  get k(): string | null {
    const m = this.metrics;
    return m ? headlineK(this.report, m) : null;
  }

  classMetrics(name: string): ClassMetrics | undefined {
    return this.metrics?.perClass.find((c) => c.class === name);
  }

  inSplit(i: number): boolean {
    return this.split === null || this.report.samples[i].split === this.split;
  }

  /** Indices of evaluated samples with true class `t` and top-1 prediction `p` (class indices), in report order. */
  samplesInCell(t: number, p: number): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.labelIdx.length; i++) {
      if (this.labelIdx[i] === t && this.top1Idx[i] === p && this.inSplit(i)) out.push(i);
    }
    return out;
  }

  sample(i: number): ReportSample {
    return this.report.samples[i];
  }

  /** Fix wording for this dataset format: class folders move files, label files rewrite a line. */
  get fixKind(): 'move-to-folder' | 'change-label' {
    return datasetFormat(this.report.dataset.format).fix;
  }
}
