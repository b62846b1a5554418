/**
 * "Select all above this score" in the search results: precision and recall of the selection against a class.
 * Pure (the panel's webview and the tests use it).
 */
export interface SelectionScores {
  /** Hits selected (every hit scoring at least the chosen one's score, ties included). */
  selected: number;
  /** Selected hits whose label is the class. */
  truePositives: number;
  /** truePositives / selected (0 when nothing is selected). */
  precision: number;
  /** truePositives / positives, positives = images labelled with the class in the dataset (0 when there are none). */
  recall: number;
  /** The score threshold of the selection. */
  threshold: number;
}

/**
 * The selection "score >= hits[rank].score" of `hits` (best first) against `cls`. `positives` is the number of
 * images labelled `cls` in the whole dataset, so recall counts the ones the results do not reach as missed.
 */
export function selectionScores(hits: readonly { path: string; score: number }[], labelOf: (path: string) => string | undefined, cls: string, positives: number, rank: number): SelectionScores {
  if (rank < 0 || rank >= hits.length) throw new RangeError(`rank ${rank} is outside the ${hits.length} results`);
  const threshold = hits[rank].score;
  let selected = 0;
  let tp = 0;
  for (const h of hits) {
    if (!(h.score >= threshold)) continue;
    selected++;
    if (labelOf(h.path) === cls) tp++;
  }
  return { selected, truePositives: tp, precision: selected > 0 ? tp / selected : 0, recall: positives > 0 ? tp / positives : 0, threshold };
}
