/**
 * What the three CLIP Lens views show, computed from a report as plain data (no 'vscode'), unit-tested. The tree
 * providers in this folder only turn these rows into TreeItems.
 */
import type { EvalReport, LabelIssue, Warning, WarningKind } from '../../core/report';
import type { ScoredClass } from '../../core/types';
import { sortWarnings } from '../../core/warnings';
import { pct } from '../format';
import { samplesOf, pathIndex } from '../../core/sampleTable';

export interface ClassRow {
  class: string;
  /** Images labelled with this class (evaluated or not). */
  images: number;
  /** Evaluated images (metrics support). */
  support: number;
  recall: number | null;
  precision: number | null;
  f1: number | null;
  /** Warnings about this class (rare class with low recall, imbalance, ...). */
  warnings: Warning[];
}

/** One row per class, in the report's class order. */
export function classRows(report: EvalReport): ClassRow[] {
  const perClass = new Map(report.metrics?.perClass.map((c) => [c.class, c]) ?? []);
  return report.dataset.classes.map((cls) => {
    const m = perClass.get(cls);
    return {
      class: cls,
      images: report.dataset.counts.perClass[cls] ?? 0,
      support: m?.support ?? 0,
      recall: m && m.support > 0 ? m.recall : null,
      precision: m && m.predicted > 0 ? m.precision : null,
      f1: m && m.support > 0 ? m.f1 : null,
      warnings: report.warnings.filter((w) => w.class === cls && w.kind !== 'good-accuracy' && w.split === undefined),
    };
  });
}

/**
 * The Datasets view's order: classes a warning or error is about first (lowest recall first), so the worst class is
 * never off-screen below an alphabetical list; then the others in the report's class order.
 */
export function viewOrder(rows: readonly ClassRow[]): ClassRow[] {
  const flagged = rows.filter((r) => r.warnings.some((w) => w.severity !== 'info'));
  const rest = rows.filter((r) => !flagged.includes(r));
  flagged.sort((a, b) => (a.recall ?? 1) - (b.recall ?? 1) || (a.class < b.class ? -1 : a.class > b.class ? 1 : 0));
  return [...flagged, ...rest];
}

/** "12 images · recall 83.3%" */
export function classDescription(row: ClassRow): string {
  const parts = [`${row.images} image${row.images === 1 ? '' : 's'}`];
  if (row.recall !== null) parts.push(`recall ${pct(row.recall)}`);
  return parts.join(' · ');
}

export interface ImageRow {
  /** Index into report.samples. */
  index: number;
  path: string;
  label: string;
  /** Top-1 prediction; undefined when the image could not be evaluated. */
  top?: ScoredClass;
  /** Probability of the given label among the top-K, when it is there. */
  labelScore?: number;
  correct: boolean;
  error?: string;
  /** Rank of its likely label error, when it is one. */
  issueRank?: number;
}

/**
 * The images of a class, in the order worth looking at: misclassified ones first (most confident mistakes first),
 * then unreadable ones, then correct ones (least confident first).
 */
export function classImages(report: EvalReport, cls: string): ImageRow[] {
  const issueRank = new Map(report.labelIssues.map((i) => [i.index, i.rank]));
  const rows: ImageRow[] = [];
  samplesOf(report).forEach((s, index) => {
    if (s.label !== cls) return;
    const top = s.predicted[0];
    const labelScore = s.predicted.find((p) => p.class === s.label)?.score;
    rows.push({
      index,
      path: s.path,
      label: s.label,
      ...(top ? { top } : {}),
      ...(labelScore !== undefined ? { labelScore } : {}),
      correct: top !== undefined && top.class === s.label,
      ...(s.error ? { error: s.error.message } : {}),
      ...(issueRank.has(index) ? { issueRank: issueRank.get(index) } : {}),
    });
  });
  const group = (r: ImageRow) => (r.error ? 1 : r.correct ? 2 : 0);
  return rows.sort((a, b) => {
    const g = group(a) - group(b);
    if (g !== 0) return g;
    if (group(a) === 0) return (b.top?.score ?? 0) - (a.top?.score ?? 0) || a.index - b.index;
    if (group(a) === 2) return (a.top?.score ?? 0) - (b.top?.score ?? 0) || a.index - b.index;
    return a.index - b.index;
  });
}

/** "→ dog 0.91" for a mistake, "✓ 0.97" for a correct prediction, the error for an unreadable image. */
export function imageDescription(row: ImageRow): string {
  if (row.error) return `unreadable: ${row.error}`;
  if (!row.top) return 'not evaluated';
  return row.correct ? `✓ ${row.top.score.toFixed(2)}` : `→ ${row.top.class} ${row.top.score.toFixed(2)}${row.labelScore !== undefined ? ` (${row.label} ${row.labelScore.toFixed(2)})` : ''}`;
}

export interface IssueGroup {
  given: string;
  suggested: string;
  /** In rank order (most likely wrong first). */
  issues: LabelIssue[];
}

/**
 * Likely label errors grouped by given -> suggested class, groups ordered by their most suspicious issue; issues
 * whose sample path is in `hidden` (fixed or ignored in this session) are left out, and so are empty groups.
 */
export function issueGroups(report: EvalReport, hidden: ReadonlySet<string> = new Set()): IssueGroup[] {
  const groups = new Map<string, IssueGroup>();
  const sorted = [...report.labelIssues].sort((a, b) => a.rank - b.rank);
  for (const issue of sorted) {
    const p = issue.path ?? samplesOf(report).at(issue.index)?.path;
    if (p === undefined || hidden.has(p)) continue;
    const key = `${issue.given}\0${issue.suggested}`;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { given: issue.given, suggested: issue.suggested, issues: [] }));
    g.issues.push(issue);
  }
  return [...groups.values()];
}

export function issuePath(report: EvalReport, issue: LabelIssue): string {
  return issue.path ?? samplesOf(report).at(issue.index)?.path ?? `#${issue.index}`;
}

/** Which predictor found the label issues, in words ("the linear probe"); undefined for reports without it. */
export function predictorText(report: EvalReport): string | undefined {
  const used = report.predictor?.used;
  return used === 'linear-probe' ? 'the linear probe' : used === 'knn' ? 'kNN' : used === 'zero-shot' ? 'zero-shot' : undefined;
}

/** Warnings in reading order (errors first), overall before per split, without the "good accuracy" note. */
export function warningRows(report: EvalReport): Warning[] {
  return sortWarnings(report.warnings);
}

/** What each kind of warning means and what to do about it (tooltips of the Warnings view). */
export const WARNING_EXPLANATIONS: Readonly<Record<WarningKind, string>> = {
  'rare-class-low-recall':
    'A class with few images that the model rarely recognises. A high overall accuracy can hide it (the accuracy paradox): the many images of common classes outweigh it. Check its prompt (the "prompts" section of .clip-lens.json), its labels, or collect more images.',
  'class-imbalance':
    'The largest class has many times the images of the smallest. Top-1 accuracy then mostly measures the large classes; compare it with balanced accuracy (the mean of per-class recalls).',
  'low-accuracy':
    'Zero-shot top-1 accuracy is in the poor or fair band. CLIP may not know these classes by their names: try clearer prompts, the imagenet80 templates or a larger model, and look for systematic label errors in the confusion matrix.',
  'good-accuracy': 'Zero-shot top-1 accuracy is in the good band for this dataset.',
  'low-recall-at-k':
    'For many images the right class is not even among the model\'s best K guesses: the classes are hard to tell apart by their names, or many labels are wrong.',
  duplicate:
    'Copies or near-copies (resized, recompressed, slightly cropped or brightened) of one image under one label and in one split: each counts several times in the metrics. Keep one.',
  'possible-leakage':
    'The same image is in two splits (e.g. train and test). Metrics on the test split are then optimistic; remove the copy from one split.',
  leakage:
    'Images of a later split (val, test) have a copy or near-copy in an earlier one (train): the model, or whoever tuned it, has seen them, so the later split\'s accuracy is inflated. The message puts the metrics without them next to those with them; remove the later copies.',
  'conflicting-labels':
    'Copies or near-copies of one image carry different labels: at most one label can be right. Fix the wrong one or remove the copy.',
  'class-outliers':
    'Many images of this class look unlike the rest of the class and of the dataset (far from their nearest neighbours in CLIP\'s embedding space): blank, corrupted or wrong-domain images. Look at them in the Outliers list.',
  'dataset-errors':
    'Some images could not be evaluated or some label lines could not be read; they are left out of the metrics. See the Problems panel for each one.',
  'zero-shot-at-chance':
    'Zero-shot accuracy is near chance: CLIP does not understand the class names (codes such as n01440764 or c07). Label errors then come from a linear probe trained on the image embeddings, which does not need names. Add readable prompts in the "prompts" section of .clip-lens.json to evaluate zero-shot.',
  'prompt-fails':
    'A linear probe on the image embeddings recognises this class, but the zero-shot prompt does not: the images are fine, the name is not. Use the quick fix to add a prompt for the class in .clip-lens.json, or rename the class.',
  'classes-do-not-separate':
    'Neither zero-shot nor a linear probe on the image embeddings recognises this class: its images look like those of another class to this model. Collect more (or clearer) images, merge the classes, or use a bigger model.',
  'class-collision':
    'Class names that differ only in case or separators (red_circle, RED_CIRCLE) give the model the same prompt, so it cannot tell them apart; they are evaluated as one class. Merge or rename them, or give one its own text in "prompts" of .clip-lens.json.',
  overfitting:
    'A model trained on the train split does much better there than on the held-out split (test or val): it learnt the training images more than the classes, or the splits differ. Expect the held-out figure on new data.',
};

/** Words for the keys of Warning.numbers: "supportFraction" -> "support fraction", "top1Accuracy" -> "top-1 accuracy". */
export function numberName(key: string): string {
  const special: Record<string, string> = { top1Accuracy: 'top-1 accuracy', n: 'images', k: 'K' };
  if (Object.hasOwn(special, key)) return special[key];
  return key
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .toLowerCase();
}

/** The numbers behind a warning, as "recall 12.5% · support 8 · threshold 50%". */
export function warningNumbers(w: Warning): string {
  const fractionKeys = /recall|accuracy|threshold|min|fraction|rate/i;
  return Object.entries(w.numbers)
    .map(([k, v]) => `${numberName(k)} ${fractionKeys.test(k) && v >= 0 && v <= 1 && !Number.isInteger(v) ? pct(v) : Number.isInteger(v) ? String(v) : v.toFixed(2)}`)
    .join(' · ');
}

/** Short label of a warning for the tree. */
export function warningLabel(w: Warning): string {
  const where = [w.class, w.split].filter((x) => x !== undefined).join(', ');
  const title: Record<WarningKind, string> = {
    'rare-class-low-recall': 'Rare class, low recall',
    'class-imbalance': 'Class imbalance',
    'low-accuracy': w.severity === 'error' ? 'Poor accuracy' : 'Fair accuracy',
    'good-accuracy': 'Good accuracy',
    'low-recall-at-k': 'Low Recall@K',
    duplicate: 'Duplicate images',
    'possible-leakage': 'Possible leakage between splits',
    'dataset-errors': 'Unreadable images or lines',
    'zero-shot-at-chance': 'Class names mean nothing to CLIP',
    'prompt-fails': 'Prompt fails, images separate',
    'classes-do-not-separate': 'Classes do not separate',
    leakage: 'Leakage between splits',
    'conflicting-labels': 'Copies with different labels',
    'class-outliers': 'Many outliers',
    'class-collision': 'Classes with the same prompt',
    overfitting: 'Train-test gap',
  };
  return where ? `${title[w.kind]}: ${where}` : title[w.kind];
}

export interface DuplicateGroupRow {
  /** Index into report.duplicates. */
  group: number;
  label: string;
  description: string;
  /** Sample indices of the group's images, in the group's order. */
  indices: number[];
  /** The group crosses splits (leakage). */
  leak: boolean;
  /** The group's images carry different labels. */
  conflicting: boolean;
}

/** The report's duplicate groups for the Datasets view: leaks first, then conflicting labels, then the rest. */
export function duplicateGroupRows(report: EvalReport): DuplicateGroupRow[] {
  const indexOf = pathIndex(samplesOf(report));
  const rows = (report.duplicates ?? []).map((g, group): DuplicateGroupRow => {
    const leak = new Set(g.splits).size > 1;
    const conflicting = new Set(g.labels).size > 1;
    const first = g.paths[0].split('/').pop() ?? g.paths[0];
    return {
      group,
      label: `${first} + ${g.paths.length - 1}`,
      description: [g.kind === 'exact' ? 'exact copies' : `near-copies ${g.similarity.toFixed(3)}`, leak ? `across ${[...new Set(g.splits)].join(', ')}` : '', conflicting ? 'different labels' : ''].filter(Boolean).join(' · '),
      indices: g.paths.map((p) => indexOf.get(p)).filter((i): i is number => i !== undefined),
      leak,
      conflicting,
    };
  });
  const rank = (r: DuplicateGroupRow) => (r.leak ? 0 : r.conflicting ? 1 : 2);
  return rows.sort((a, b) => rank(a) - rank(b) || a.group - b.group);
}
