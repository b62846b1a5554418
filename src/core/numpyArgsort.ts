/**
 * numpy's default `np.argsort` (kind='quicksort') of a float64 array, as numpy 1.x builds without the AVX-512 sort
 * do it: introsort (median-of-3 quicksort, insertion sort for partitions of at most 17 elements, heapsort past the
 * depth limit 2 * floor(log2 n)), a port of numpy/core/src/npysort/quicksort.cpp `aquicksort_` and
 * heapsort.cpp `aheapsort_`. It is not stable: equal values come out in the order this algorithm leaves them, which
 * is what cleanlab's rankings inherit when many probabilities tie (kNN votes). NaN is not handled (callers have none).
 * numpy builds that dispatch argsort to AVX-512 (x86-simd-sort, e.g. Debian's numpy 1.24 on an AVX-512 CPU) order
 * ties differently again, so cleanlab's own choice among exactly tied margins depends on the machine; this port
 * reproduces the three cleanlab kNN reference cases (test/fixtures/probe-reference).
 */
const SMALL_QUICKSORT = 16;

export function numpyArgsort(v: ArrayLike<number>): Int32Array {
  const num = v.length;
  const tosort = new Int32Array(num);
  for (let i = 0; i < num; i++) tosort[i] = i;
  if (num < 2) return tosort;
  let pl = 0;
  let pr = num - 1;
  const stack: number[] = [];
  const depthStack: number[] = [];
  let cdepth = msb(num) * 2;
  const swap = (a: number, b: number) => {
    const t = tosort[a];
    tosort[a] = tosort[b];
    tosort[b] = t;
  };
  for (;;) {
    // numpy checks the depth only here, at the top of its loop
    if (cdepth < 0) {
      aheapsort(v, tosort, pl, pr - pl + 1);
    } else {
      while (pr - pl > SMALL_QUICKSORT) {
        const pm = pl + ((pr - pl) >> 1);
        if (v[tosort[pm]] < v[tosort[pl]]) swap(pm, pl);
        if (v[tosort[pr]] < v[tosort[pm]]) swap(pr, pm);
        if (v[tosort[pm]] < v[tosort[pl]]) swap(pm, pl);
        const vp = v[tosort[pm]];
        let pi = pl;
        let pj = pr - 1;
        swap(pm, pj);
        for (;;) {
          do ++pi; while (v[tosort[pi]] < vp);
          do --pj; while (vp < v[tosort[pj]]);
          if (pi >= pj) break;
          swap(pi, pj);
        }
        const pk = pr - 1;
        swap(pi, pk);
        // push the larger partition on the stack
        if (pi - pl < pr - pi) {
          stack.push(pi + 1, pr);
          pr = pi - 1;
        } else {
          stack.push(pl, pi - 1);
          pl = pi + 1;
        }
        depthStack.push(--cdepth);
      }
      // insertion sort
      for (let pi = pl + 1; pi <= pr; ++pi) {
        const vi = tosort[pi];
        const vpv = v[vi];
        let pj = pi;
        let pk = pi - 1;
        while (pj > pl && vpv < v[tosort[pk]]) {
          tosort[pj--] = tosort[pk--];
        }
        tosort[pj] = vi;
      }
    }
    if (stack.length === 0) break;
    pr = stack.pop()!;
    pl = stack.pop()!;
    cdepth = depthStack.pop()!;
  }
  return tosort;
}

function msb(n: number): number {
  let depth = 0;
  while (n > 1) {
    n >>= 1;
    depth++;
  }
  return depth;
}

/** numpy's aheapsort_ on tosort[start .. start + n), 1-based heap. */
function aheapsort(v: ArrayLike<number>, tosort: Int32Array, start: number, n: number): void {
  const a = (i: number) => start + i - 1; // a[1..n]
  let i: number;
  let j: number;
  let l: number;
  let tmp: number;
  for (l = n >> 1; l > 0; --l) {
    tmp = tosort[a(l)];
    for (i = l, j = l << 1; j <= n; ) {
      if (j < n && v[tosort[a(j)]] < v[tosort[a(j + 1)]]) j += 1;
      if (v[tmp] < v[tosort[a(j)]]) {
        tosort[a(i)] = tosort[a(j)];
        i = j;
        j += j;
      } else break;
    }
    tosort[a(i)] = tmp;
  }
  for (; n > 1; ) {
    tmp = tosort[a(n)];
    tosort[a(n)] = tosort[a(1)];
    n -= 1;
    for (i = 1, j = 2; j <= n; ) {
      if (j < n && v[tosort[a(j)]] < v[tosort[a(j + 1)]]) j++;
      if (v[tmp] < v[tosort[a(j)]]) {
        tosort[a(i)] = tosort[a(j)];
        i = j;
        j += j;
      } else break;
    }
    tosort[a(i)] = tmp;
  }
}
