/**
 * "Remove <file> from the <split> split": taking a leaked or duplicated image out of the dataset, as pure data (no
 * vscode; unit-tested in test/unit/extension-removal.test.ts). fixes.ts applies a plan, after a modal confirmation,
 * as one step of the fix history (moveHistoryModel.ts), so "CLIP Lens: Undo Last Fix" reverses it. Nothing is ever
 * deleted:
 * - class folders (with or without split folders): the image MOVES into the dataset's holding folder
 *   `.clip-lens-removed/`, under its own dataset-relative path (`test/cat/x.jpg` -> `.clip-lens-removed/test/cat/x.jpg`).
 *   The dataset reader skips hidden folders, so the image leaves every split and class, and it stays next to the data
 *   where anyone can look at it or move it back by hand.
 * - label files (a split column, or none): the image's RECORD is deleted from the label file (a text edit, undone by
 *   Ctrl+Z in that file too); the image file itself stays where it is.
 */
import * as path from 'node:path';
import { datasetFormat } from '../core/datasetFormat';
import type { EvalReport } from '../core/report';
import { samplesOf } from '../core/sampleTable';
import { FixError } from './fixPlan';

/** The dataset-level folder that removed images move into (hidden: the dataset reader skips it). */
export const HOLDING_FOLDER = '.clip-lens-removed';

/** An image a removal is offered for: why, and the copy that stays. */
export interface RemovalCandidate {
  samplePath: string;
  /** The sample's split, when the dataset has splits. */
  split?: string;
  /** 'leaked': it has a copy in an earlier split; 'duplicate': a copy in the same split (or a dataset without splits). */
  reason: 'leaked' | 'duplicate';
  /** The copy that stays (the earliest split's copy for a leaked image; another member of the group otherwise). */
  copy: string;
}

/**
 * The images a removal is offered for: each leaked image (the later copy, as the leakage diagnostic sits there) and
 * each member of a duplicate group within one split; leaked first, then by path. Members of a group that spans
 * splits are offered only as leaked images (removing the earliest copy would leave the leak in place).
 */
export function removalCandidates(report: EvalReport): RemovalCandidate[] {
  const table = samplesOf(report);
  const splitOf = { get: (p: string) => table.byPath(p)?.split };
  const out = new Map<string, RemovalCandidate>();
  for (const l of report.leakage ?? []) {
    l.paths.forEach((p, i) => out.set(p, { samplePath: p, ...(splitOf.get(p) !== undefined ? { split: splitOf.get(p) } : {}), reason: 'leaked', copy: l.copies[i]! }));
  }
  for (const g of report.duplicates ?? []) {
    const splits = new Set(g.paths.map((p) => splitOf.get(p)));
    if (splits.size > 1) continue;
    for (const p of g.paths) {
      if (out.has(p)) continue;
      const copy = g.paths.find((q) => q !== p);
      if (copy === undefined) continue;
      out.set(p, { samplePath: p, ...(splitOf.get(p) !== undefined ? { split: splitOf.get(p) } : {}), reason: 'duplicate', copy });
    }
  }
  return [...out.values()].sort((a, b) => (a.reason === b.reason ? (a.samplePath < b.samplePath ? -1 : a.samplePath > b.samplePath ? 1 : 0) : a.reason === 'leaked' ? -1 : 1));
}

/** The title of the fix: "Remove x.jpg from the 'test' split", or "... from the dataset" without splits. */
export function removalTitle(samplePath: string, split: string | undefined): string {
  return `Remove ${path.posix.basename(samplePath)} from ${split !== undefined ? `the '${split}' split` : 'the dataset'}`;
}

export type RemovalPlan =
  | {
      kind: 'move';
      samplePath: string;
      split?: string;
      /** Dataset-relative target: `.clip-lens-removed/<samplePath>`. */
      to: string;
    }
  | {
      kind: 'drop-record';
      samplePath: string;
      split?: string;
      /** The label file (absolute) and the 1-based line of the image's record, as evaluated. */
      labelFile: string;
      line: number;
    };

/**
 * How a sample is removed in its dataset's format (see the file comment). Throws FixError when the sample is not in
 * the report, or a label-file sample has no line.
 */
export function removalPlan(report: EvalReport, samplePath: string): RemovalPlan {
  const sample = samplesOf(report).byPath(samplePath);
  if (!sample) throw new FixError(`${samplePath} is not a sample of this report`);
  const split = sample.split !== undefined ? { split: sample.split } : {};
  const traits = datasetFormat(report.dataset.format);
  if (traits.samplesHaveLines) {
    const labelFile = report.dataset.labelFile;
    if (!labelFile || !sample.source) throw new FixError(`${samplePath} has no line in a label file to remove`);
    return { kind: 'drop-record', samplePath, ...split, labelFile: path.resolve(report.dataset.root, labelFile), line: sample.source.line };
  }
  if (samplePath.split('/').some((part) => part === '..' || part === '.' || part === '')) throw new FixError(`${samplePath} is not a plain dataset-relative path`);
  return { kind: 'move', samplePath, ...split, to: `${HOLDING_FOLDER}/${samplePath}` };
}

/** The modal confirmation of a removal: the question, what will happen (detail) and the button. */
export function removalConfirmation(plan: RemovalPlan, candidate?: RemovalCandidate): { message: string; detail: string; button: string } {
  const where = plan.split !== undefined ? `the '${plan.split}' split` : 'the dataset';
  const message = `Remove ${plan.samplePath} from ${where}?`;
  const why = candidate
    ? candidate.reason === 'leaked'
      ? `It is a copy of ${candidate.copy}, which stays in the earlier split. `
      : `It is a copy of ${candidate.copy}, which stays. `
    : '';
  const what =
    plan.kind === 'move'
      ? `The image will be moved to ${plan.to} inside the dataset (CLIP Lens and its evaluation skip that folder). Nothing is deleted.`
      : `Line ${plan.line} of ${path.basename(plan.labelFile)} (its record) will be deleted from the label file; the image file itself stays where it is.`;
  const undo = plan.kind === 'move' ? ' "CLIP Lens: Undo Last Fix" moves it back.' : ` "CLIP Lens: Undo Last Fix" (or Ctrl+Z in ${path.basename(plan.labelFile)}) restores the line.`;
  return { message, detail: `${why}${what}${undo} Evaluate again to see the metrics without it.`, button: 'Remove' };
}
