/**
 * Read-only view of a report for the panel: class indices, the metrics of the selected split, and the samples the
 * panel knows: the report comes without its samples (core/panelSamples.ts); the host sends those its lists name and
 * the grids ask for pages of the rest (pagedRows.ts). Nothing here grows with the dataset.
 */
import type { PanelSampleRow, PanelSamples } from '../src/core/panelProtocol';
import type { ClassMetrics, EvalReport, Metrics, ReportSample, Warning } from '../src/core/report';
import { headlineK, reportBands, type MetricBands } from '../src/core/metricCatalogue';
import { datasetFormat } from '../src/core/datasetFormat';

export class ReportModel {
  readonly classes: readonly string[];
  readonly classIndex: ReadonlyMap<string, number>;
  /** Index of each known sample by path. */
  readonly byPath = new Map<string, number>();
  /** The samples the panel knows, by index (those the report's lists name, search hits). */
  private readonly known = new Map<number, ReportSample>();
  /** Number of samples of the report. */
  readonly count: number;
  /** Every sample has a full probability vector (PR curves can be computed here). */
  readonly hasProbabilities: boolean;
  /** Classes named by a warning, with the most severe severity. */
  readonly warnedClasses: ReadonlyMap<string, Warning['severity']>;
  /** Dataset folder name. */
  readonly name: string;

  constructor(
    readonly report: EvalReport,
    readonly split: string | null,
    readonly samples: PanelSamples,
  ) {
    const classes = report.metrics?.classes ?? report.dataset.classes;
    this.classes = classes;
    this.classIndex = new Map(classes.map((c, i) => [c, i]));
    this.count = samples.count;
    this.remember(samples.known);
    this.hasProbabilities = samples.hasProbabilities;
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

  /** Whether known sample `i` is in the selected split (unknown samples are not). */
  inSplit(i: number): boolean {
    const s = this.known.get(i);
    return s !== undefined && (this.split === null || s.split === this.split);
  }

  /** Images of a confusion cell (true, predicted) in the selected split, from the metrics. */
  cellCount(t: number, p: number): number {
    return this.metrics?.confusionMatrix[t]?.[p] ?? 0;
  }

  /** A known sample (undefined for one the panel has not been sent). */
  sample(i: number): ReportSample | undefined {
    return this.known.get(i);
  }

  /** Adds samples sent by the host (search hits) to the known ones. */
  remember(rows: readonly PanelSampleRow[]): void {
    for (const r of rows) {
      this.known.set(r.index, r.sample);
      this.byPath.set(r.sample.path, r.index);
    }
  }

  /** Fix wording for this dataset format: class folders move files, label files rewrite a line. */
  get fixKind(): 'move-to-folder' | 'change-label' {
    return datasetFormat(this.report.dataset.format).fix;
  }
}
