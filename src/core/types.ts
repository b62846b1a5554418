/** Domain types shared by every part of core. Plain data only: these cross the CLI/JSON and webview boundaries. */

/** One image of a dataset with its given label. Paths are relative to the dataset root, with '/' separators. */
export interface Sample {
  /** Image path relative to the dataset root, POSIX separators. */
  path: string;
  /** Given label (class name). */
  label: string;
  /** 'train' | 'val' | 'test' | other split name, when the dataset has a split level or column. */
  split?: string;
  /** Where the label comes from: label file path (relative to the root) and 1-based line, for label-file datasets. */
  source?: { file: string; line: number };
}

/** A problem found while reading a dataset that is not tied to one readable sample (a bad label line, a refused path). */
export interface DatasetProblem {
  code: string;
  message: string;
  /** File relative to the dataset root (or absolute when outside it). */
  file?: string;
  /** 1-based line in `file`. */
  line?: number;
  /** Image path relative to the root, when the problem is about one image. */
  path?: string;
}

export type DatasetFormat = 'class-folders' | 'class-folders-split' | 'label-file';

export interface Dataset {
  /** Absolute path of the dataset root. */
  root: string;
  format: DatasetFormat;
  /** Label file (absolute) for label-file datasets. */
  labelFile?: string;
  /** Class names in a stable order (sorted by code point, as the label set appears). */
  classes: string[];
  samples: Sample[];
  problems: DatasetProblem[];
}

/** Per class, one (class, score) pair of a prediction; scores are softmax probabilities. */
export interface ScoredClass {
  class: string;
  score: number;
}
