/**
 * Class orders for the confusion matrix. "By confusion" is a greedy seriation: classes are linked into chains along
 * their strongest mutual confusions (the greedy-edge heuristic of the travelling-salesman path), so classes that
 * are mistaken for each other sit next to each other and their errors form blocks near the diagonal. Chains are
 * listed by how error-prone their classes are; classes never confused come last in name order. Pure and DOM-free.
 */

/** Sum of each row (the true class's evaluated samples). */
function rowTotals(matrix: readonly (readonly number[])[]): Float64Array {
  const totals = new Float64Array(matrix.length);
  matrix.forEach((row, i) => {
    let s = 0;
    for (const v of row) s += v;
    totals[i] = s;
  });
  return totals;
}

/** Returns a permutation of 0..n-1 (indices into the matrix) ordered by confusion. */
export function confusionOrder(matrix: readonly (readonly number[])[]): number[] {
  const n = matrix.length;
  const totals = rowTotals(matrix);
  const rate = (i: number, j: number) => (totals[i] > 0 ? matrix[i][j] / totals[i] : 0);

  // Candidate links, strongest first. The weight of i-j is the share of i predicted as j plus the share of j
  // predicted as i: rates, not counts, so a rare class confused with a big one still counts.
  const edges: Array<{ w: number; i: number; j: number }> = [];
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      if (matrix[i][j] === 0 && matrix[j][i] === 0) continue;
      edges.push({ w: rate(i, j) + rate(j, i), i, j });
    }
  }
  edges.sort((a, b) => b.w - a.w || a.i - b.i || a.j - b.j);

  // Greedy edge: accept a link when both ends are chain ends and it does not close a cycle.
  const parent = Int32Array.from({ length: n }, (_, i) => i);
  const find = (x: number): number => {
    while (parent[x] !== x) {
      parent[x] = parent[parent[x]];
      x = parent[x];
    }
    return x;
  };
  const degree = new Uint8Array(n);
  const links: number[][] = Array.from({ length: n }, () => []);
  for (const { i, j } of edges) {
    if (degree[i] >= 2 || degree[j] >= 2) continue;
    const ri = find(i);
    const rj = find(j);
    if (ri === rj) continue;
    parent[ri] = rj;
    degree[i]++;
    degree[j]++;
    links[i].push(j);
    links[j].push(i);
  }

  // Walk each chain from its end with the lower index.
  const errorRate = (i: number) => (totals[i] > 0 ? 1 - matrix[i][i] / totals[i] : 0);
  const seen = new Uint8Array(n);
  const chains: Array<{ members: number[]; error: number }> = [];
  for (let start = 0; start < n; start++) {
    if (seen[start] || degree[start] > 1) continue;
    const members: number[] = [];
    let prev = -1;
    let cur = start;
    while (cur >= 0 && !seen[cur]) {
      seen[cur] = 1;
      members.push(cur);
      const next = links[cur].find((x) => x !== prev && !seen[x]);
      prev = cur;
      cur = next ?? -1;
    }
    let error = 0;
    for (const m of members) error += errorRate(m);
    chains.push({ members, error });
  }
  const linked = chains.filter((c) => c.members.length > 1).sort((a, b) => b.error - a.error || a.members[0] - b.members[0]);
  const single = chains.filter((c) => c.members.length === 1).sort((a, b) => b.error - a.error || a.members[0] - b.members[0]);
  return [...linked, ...single].flatMap((c) => c.members);
}

/** The identity order 0..n-1 (the report's class order). */
export function identityOrder(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}
