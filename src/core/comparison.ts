/**
 * The shape of a comparison of two runs (core/compare.ts makes it): plain JSON-safe data, types only, so that the
 * report (its `comparison` section) and the webview can use it without Node.
 */

export interface ComparedRun {
  /** How the run is named: its file, or 'this run'. */
  name: string;
  model: string;
  templates: string;
  predictor: string;
  images: number;
}

export interface HeadlineDelta {
  /** 'top1Accuracy', 'balancedAccuracy', 'macroF1', 'recallAtK.5'. */
  metric: string;
  /** Human name: 'top-1 accuracy', 'Recall@5'. */
  name: string;
  a: number | null;
  b: number | null;
  delta: number | null;
}

export interface ClassFigures {
  support: number;
  recall: number;
  precision: number;
  f1: number;
}

export interface ClassDelta {
  class: string;
  a: ClassFigures | null;
  b: ClassFigures | null;
  /** B - A; null when the class is on one side only. */
  delta: { recall: number; precision: number; f1: number } | null;
}

export interface SampleChange {
  /** Content-hash key. */
  key: string;
  path: string;
  label: string;
  /** A's label when it differs (the image was relabelled or moved). */
  labelBefore?: string;
  a: string;
  b: string;
}

export interface IssueChange {
  key: string;
  path: string;
  label: string;
  suggested: string;
}

export interface Comparison {
  a: ComparedRun;
  b: ComparedRun;
  /** What differs between the setups (model, templates, predictor); empty when the same. */
  setupDifferences: string[];
  headline: HeadlineDelta[];
  classes: ClassDelta[];
  samples: { common: number; onlyInA: number; onlyInB: number; fixed: SampleChange[]; broken: SampleChange[]; changed: SampleChange[] };
  labelIssues: { new: IssueChange[]; gone: IssueChange[] };
  /** B - A over `classes` (A's classes, then those only B has); absent when a side has no matrix. */
  confusionDelta?: { classes: string[]; matrix: number[][] };
  /** Per split present in both: headline and per-class recall side by side. */
  splits?: { split: string; headline: HeadlineDelta[]; recall: { class: string; a: number | null; b: number | null; delta: number | null }[] }[];
}
