/**
 * The one message protocol between the report panel's host (src/extension/reportPanel.ts) and its webview
 * (webview/main.ts). Types only: both sides import it, nothing here exists at run time.
 *
 * Rules of the protocol:
 * - The webview owns UI state and persists it with `vscode.setState` ({@link PanelUiState}); the host owns the report
 *   and sends it whenever the webview says `ready` (after creation, after being shown again, after a reload).
 * - The webview names samples only by their dataset-relative `path`; the host checks every path against the report
 *   before touching the file system, so a compromised webview cannot name arbitrary files.
 * - Requests that expect an answer carry a `requestId` chosen by the webview; the answer echoes it.
 */
import type { EvalReport, ReportSample } from './report';
import type { Comparison } from './comparison';

/** Which tab of the panel is shown. */
export type PanelTab = 'matrix' | 'classes' | 'issues' | 'images';

/**
 * The commit gate's result as the panel shows it: the fields of core/gate.ts's GateResult it uses (repeated here so
 * the webview, which has no Node types, does not type-check gate.ts; a GateResult is assignable to it).
 */
export interface PanelGate {
  passed: boolean;
  summary: { total: number; passed: number; failed: number };
  checks: {
    id: string;
    /** GateCheckKind: 'top1Accuracy', 'classRecall', 'labelIssues', 'config', the ratchet's '…Drop' kinds, … */
    kind: string;
    name: string;
    comparison: 'min' | 'max' | 'none';
    actual: number | null;
    required: number | null;
    passed: boolean;
    message: string;
    configKey: string;
    class?: string;
    /** Ratchet checks (gate.maxDrop): the baseline value the drop is measured from. */
    baseline?: { file: string; value: number; maxDrop: number; drop: number | null };
  }[];
}

/** What the image grid shows: the images labelled as a class, one confusion-matrix cell, or the label issues. */
export type GridSource = { kind: 'class'; class: string } | { kind: 'cell'; cell: MatrixCell } | { kind: 'issues' };

/**
 * Order of the image grid: by the CLIP score of the image's own label (lowest first: likely wrong labels on top), by
 * the score of the top prediction (highest first), or by path.
 */
export type GridSort = 'labelScore' | 'topScore' | 'path';

/** A fix applied to several samples at once, as ONE undoable step (dataset-relative sample paths). */
export type BulkAction =
  /** Move to the class folder (class folders) or change the label (label files), whichever fits the dataset. */
  | { kind: 'fix'; paths: string[]; toClass: string }
  | { kind: 'ignore'; paths: string[] };

/** Per-class table columns that can be sorted. */
export type ClassSortKey = 'class' | 'support' | 'predicted' | 'precision' | 'recall' | 'probeRecall' | 'f1' | 'recallAtK' | 'ap';

/** Confusion matrix colouring: raw counts, or each row divided by its total (so the diagonal is the class's recall). */
export type MatrixMode = 'counts' | 'recall';

/** Class order of the confusion matrix: by name (report order), or confused classes next to each other. */
export type MatrixOrder = 'class' | 'confusion';

/** A cell of the confusion matrix, by class names (true label = row, top-1 prediction = column). */
export interface MatrixCell {
  trueClass: string;
  predictedClass: string;
}

/** UI state the webview saves with `setState`; it survives hide/show and is handed to the serializer after a reload. */
export interface PanelUiState {
  version: 1;
  /** Opaque reference the host gave with the report (e.g. the report file); lets the serializer reload the report. */
  reportRef?: string;
  /** Identity of the report the state refers to (dataset root and creation time); selections reset when it changes. */
  reportId?: string;
  tab: PanelTab;
  /** Split whose metrics are shown; null = all evaluated samples. */
  split: string | null;
  warningsExpanded: boolean;
  matrix: {
    mode: MatrixMode;
    order: MatrixOrder;
    /** Cell size in CSS pixels; 0 = fit the matrix to the available width. */
    cellSize: number;
    /** Scroll offset of the matrix viewport, in cells. */
    scrollX: number;
    scrollY: number;
    selected: MatrixCell | null;
  };
  table: {
    sortKey: ClassSortKey;
    descending: boolean;
    filter: string;
    warningsOnly: boolean;
    selectedClass: string | null;
    scrollTop: number;
  };
  issues: {
    filter: string;
    showResolved: boolean;
  };
  /** The image grid (tab 'images'); absent in states saved by older versions. */
  grid?: { source: GridSource; sort: GridSort };
  /** Label issues acted on in this panel, by sample path. */
  resolved: Record<string, ResolvedStatus>;
}

export interface ResolvedStatus {
  action: 'fixed' | 'ignored';
  /** Short confirmation shown in place of the actions, e.g. "Moved to circle_red/". */
  message: string;
}

/** One thumbnail answer: a small data: URI (never the original image), or why there is none. */
export type ThumbnailItem =
  | { path: string; dataUri: string; width: number; height: number }
  | { path: string; error: string };

/**
 * Precision-recall curve of one class, one-vs-rest over the evaluated samples. Points are ordered by decreasing
 * threshold (increasing recall), as scikit-learn's precision_recall_curve reversed; at most ~1,000 points are sent.
 */
export interface PrCurve {
  class: string;
  recall: number[];
  precision: number[];
  /** Samples whose true label is the class. */
  positives: number;
  /** Samples scored. */
  total: number;
  /**
   * 'probabilities': every sample's score for the class was known (exact curve).
   * 'top-k': only scores of samples that had the class in their top-K were known; the others rank last, so the
   * curve is exact up to `coverage` of recall and a lower bound beyond it.
   */
  source: 'probabilities' | 'top-k';
  /** Fraction of positives whose score was known (1 for 'probabilities'). */
  coverage: number;
}

/** What the webview asks to export. The host builds JSON/CSV/HTML itself from the report it owns. */
export type ExportRequest =
  | { format: 'json' }
  | { format: 'csv' }
  /** `matrixPng`: a PNG data URL of the confusion matrix to embed, when the webview could render one. */
  | { format: 'html'; matrixPng?: string }
  /** `png`: data URL produced by canvas.toDataURL('image/png'). */
  | { format: 'png'; png: string };

export type ExportFormat = ExportRequest['format'];

/** A fix for a likely label error, in the dataset's own terms (built by the host from the report). */
export type SampleFix =
  /** Class-folder datasets: move the image into the folder of another class. */
  | { kind: 'move-to-folder'; path: string; fromClass: string; toClass: string }
  /** Label-file datasets: rewrite the label on a line of the label file (`file` relative to the dataset root). */
  | { kind: 'change-label'; path: string; file: string; line: number; fromClass: string; toClass: string };

/** One text-search result: a sample path of the report and the cosine of its image to the query text. */
export interface SearchHitItem {
  path: string;
  score: number;
  /** The sample (index into the report's samples and its data), so that the panel can show it without all samples. */
  index?: number;
  sample?: ReportSample;
}

/** A sample sent to the panel: its index in the report's samples and its data (no content hash). */
export interface PanelSampleRow {
  index: number;
  sample: ReportSample;
}

/**
 * The samples part of a `report` message: the report itself comes without `samples` (at any size); the panel gets
 * their count, the samples its lists name (label issues, warnings, duplicates, leakage, outliers) and asks for the
 * rows of a grid by range ({@link PanelSamplesQuery}, `requestSamples`).
 */
export interface PanelSamples {
  count: number;
  known: PanelSampleRow[];
  /** Every evaluated sample has a full probability vector (the host computes PR curves either way). */
  hasProbabilities: boolean;
}

/** Which rows a grid shows: a source, an order and a split (null: all). */
export interface PanelSamplesQuery {
  source: GridSource;
  /** A grid order, or 'report': the report's own order. */
  sort: GridSort | 'report';
  split: string | null;
}

/** Something the host asks the panel to bring into view (e.g. from a diagnostic or a tree item). */
export type RevealTarget =
  | { kind: 'class'; class: string }
  | { kind: 'cell'; cell: MatrixCell }
  | { kind: 'issues'; path?: string }
  | { kind: 'images'; source: GridSource }
  /**
   * Text-search results (CLIP Lens: Search Images...), best first, shown as ranked thumbnails. `refresh`: the same
   * search sent again after a new report of the same dataset and model (a re-run), with its samples as they are now;
   * shown only when the panel still shows that search (the new report cleared it).
   */
  | { kind: 'search'; query: string; hits: SearchHitItem[]; refresh?: boolean };

/** Messages from the extension host to the webview. */
export type HostToPanel =
  | {
      type: 'report';
      report: EvalReport;
      /** Opaque reference saved in the UI state so the serializer can reload the report after a window reload. */
      reportRef?: string;
      /** Samples ignored earlier (e.g. in the workspace's ignore list); shown as resolved. */
      ignoredPaths?: string[];
      /**
       * Every sample fixed or ignored since the evaluation, wherever that happened (panel, views, Explorer), plus
       * the config's ignore list: the authoritative set (an undone fix is no longer in it).
       */
      resolvedPaths?: Record<string, 'fixed' | 'ignored'>;
      /** True when the host removed per-sample `probabilities` to keep the message small; ask for PR curves. */
      probabilitiesStripped?: boolean;
      /** The commit gate's result when the dataset's `.clip-lens.json` sets thresholds (shown at the top). */
      gate?: PanelGate | null;
      /** The report's samples: count and the ones its lists name; the rest by `requestSamples`. */
      samples: PanelSamples;
    }
  /** No report to show (e.g. a restored panel whose report file is gone); the panel shows `message`. */
  | { type: 'empty'; message: string }
  | { type: 'thumbnails'; requestId: number; items: ThumbnailItem[] }
  | { type: 'prCurve'; requestId: number; class: string; curve: PrCurve | null; error?: string }
  /** Answer to requestSamples: the query's row count and rows [start, start + rows.length). */
  | { type: 'samples'; requestId: number; total: number; start: number; rows: PanelSampleRow[]; error?: string }
  /** Outcome of applyFix / ignoreSample / export. `message` is shown to the user. */
  | { type: 'actionResult'; requestId: number; ok: boolean; message?: string }
  | { type: 'reveal'; target: RevealTarget }
  /**
   * Answer to pickComparison: the changes from the run the user picked (A: the baseline, an earlier run, a report or
   * baseline file) to the report shown (B); neither comparison nor error when the user cancelled.
   */
  | { type: 'comparison'; requestId: number; comparison?: Comparison; error?: string };

/** Messages from the webview to the extension host. */
export type PanelToHost =
  /** The webview is loaded and listening; the host answers with `report` (or `empty`). */
  | { type: 'ready' }
  | { type: 'requestThumbnails'; requestId: number; paths: string[] }
  | { type: 'requestPrCurve'; requestId: number; class: string; split: string | null }
  /** Rows [start, end) of a grid (at most 1,000 per request). */
  | { type: 'requestSamples'; requestId: number; query: PanelSamplesQuery; start: number; end: number }
  | { type: 'openImage'; path: string }
  /** Open the label-file line the sample's label comes from. */
  | { type: 'openLabelLine'; path: string }
  /** Open the file/line of `report.errors[index]`. */
  | { type: 'openProblem'; index: number }
  /** Move to the class folder or change the label, whichever fits the dataset format. */
  | { type: 'applyFix'; requestId: number; path: string; toClass: string }
  | { type: 'ignoreSample'; requestId: number; path: string }
  /** Several samples fixed or ignored as one undoable step; answered with `actionResult`. */
  | { type: 'bulkAction'; requestId: number; action: BulkAction }
  | { type: 'export'; requestId: number; request: ExportRequest }
  /** "Compare with...": the host lets the user pick the run to compare with (a quick pick) and answers `comparison`. */
  | { type: 'pickComparison'; requestId: number }
  /** An uncaught error in the webview, for the host's log. */
  | { type: 'error'; message: string; stack?: string };

export type HostToPanelType = HostToPanel['type'];
export type PanelToHostType = PanelToHost['type'];
