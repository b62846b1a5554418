/**
 * What each dataset format means for the code around it, in one place: where a sample's label lives, how a wrong
 * label is fixed, whether samples have a line (in a label file) diagnostics and quick fixes can point at, where the
 * class name sits in a sample path, and the file extensions read as label files. Callers ask for a trait
 * (`datasetFormat(report.dataset.format).fix === 'change-label'`) instead of comparing format names. Pure and
 * node-free: the report panel's browser bundle imports it.
 */
import type { DatasetFormat } from './types';

export interface DatasetFormatTraits {
  format: DatasetFormat;
  /** For people: "label file", "class folders", "class folders with splits". */
  description: string;
  /**
   * How a wrong label is fixed: 'change-label' edits the label field of the sample's line in the label file;
   * 'move-to-folder' moves the image into the folder of the right class.
   */
  fix: 'change-label' | 'move-to-folder';
  /** Samples come from lines of a label file (ReportSample.source): diagnostics and fixes go on those lines. */
  samplesHaveLines: boolean;
  /** For folder formats, the index of the class folder in a sample's dataset-relative path (after the split). */
  classFolderIndex: number | null;
  /** A label file holds the labels (the report's dataset.labelFile). */
  hasLabelFile: boolean;
}

export const DATASET_FORMATS: Readonly<Record<DatasetFormat, DatasetFormatTraits>> = {
  'class-folders': {
    format: 'class-folders',
    description: 'class folders',
    fix: 'move-to-folder',
    samplesHaveLines: false,
    classFolderIndex: 0,
    hasLabelFile: false,
  },
  'class-folders-split': {
    format: 'class-folders-split',
    description: 'class folders with splits',
    fix: 'move-to-folder',
    samplesHaveLines: false,
    classFolderIndex: 1,
    hasLabelFile: false,
  },
  'label-file': {
    format: 'label-file',
    description: 'label file',
    fix: 'change-label',
    samplesHaveLines: true,
    classFolderIndex: null,
    hasLabelFile: true,
  },
};

/** The traits of a format. */
export function datasetFormat(format: DatasetFormat): DatasetFormatTraits {
  return DATASET_FORMATS[format];
}

export type LabelFileKind = 'csv' | 'tsv' | 'jsonl';

/** File extensions (lower case, with the dot) read as label files, and how each is parsed. */
export const LABEL_FILE_EXTENSIONS: Readonly<Record<string, LabelFileKind>> = {
  '.csv': 'csv',
  '.tsv': 'tsv',
  '.jsonl': 'jsonl',
  '.ndjson': 'jsonl',
};

/** The label file kind for a file name, from its extension (case-insensitive); undefined when it is not a label file. */
export function labelFileKind(fileName: string): LabelFileKind | undefined {
  const dot = fileName.lastIndexOf('.');
  if (dot < 0) return undefined;
  const ext = fileName.slice(dot).toLowerCase();
  return Object.hasOwn(LABEL_FILE_EXTENSIONS, ext) ? LABEL_FILE_EXTENSIONS[ext] : undefined;
}

/** The label-file extensions without dots: ['csv', 'tsv', 'jsonl', 'ndjson']. */
export function labelFileExtensions(): string[] {
  return Object.keys(LABEL_FILE_EXTENSIONS).map((e) => e.slice(1));
}

/** The extensions for messages: ".csv, .tsv, .jsonl or .ndjson". */
export function labelFileExtensionsText(): string {
  const exts = Object.keys(LABEL_FILE_EXTENSIONS);
  return `${exts.slice(0, -1).join(', ')} or ${exts[exts.length - 1]}`;
}

/** A glob matching label files in any case, e.g. for a VS Code document selector: `**\/*.{csv,tsv,…,CSV,TSV,…}`. */
export function labelFileGlob(): string {
  const exts = labelFileExtensions();
  return `**/*.{${[...exts, ...exts.map((e) => e.toUpperCase())].join(',')}}`;
}
