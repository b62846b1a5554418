import { test } from 'node:test';
import assert from 'node:assert/strict';
import { confusionOrder, identityOrder } from '../../webview/lib/confusionOrder';

const isPermutation = (order: number[], n: number) => [...order].sort((a, b) => a - b).every((v, i) => v === i) && order.length === n;

test('puts mutually confused classes next to each other, most error-prone chains first', () => {
  // Classes 0..5; 1<->4 strongly confused, 4<->2 a bit, 3<->5 confused, 0 never confused.
  const m = [
    [10, 0, 0, 0, 0, 0],
    [0, 6, 0, 0, 4, 0],
    [0, 0, 9, 0, 1, 0],
    [0, 0, 0, 8, 0, 2],
    [0, 3, 1, 0, 6, 0],
    [0, 0, 0, 1, 0, 9],
  ];
  const order = confusionOrder(m);
  assert.ok(isPermutation(order, 6));
  const pos = (c: number) => order.indexOf(c);
  assert.equal(Math.abs(pos(1) - pos(4)), 1, `1 and 4 adjacent in ${order}`);
  assert.equal(Math.abs(pos(4) - pos(2)), 1, `4 and 2 adjacent in ${order}`);
  assert.equal(Math.abs(pos(3) - pos(5)), 1, `3 and 5 adjacent in ${order}`);
  assert.ok(pos(1) < pos(3), 'the chain with more errors comes first');
  assert.equal(order.at(-1), 0, 'a class never confused comes last');
  assert.deepEqual(confusionOrder(m), order, 'deterministic');
});

test('counts rates, not raw counts: a rare class confused with a big one still links', () => {
  const m = [
    [1000, 0, 30],
    [0, 500, 20],
    [0, 3, 1], // rare class 2: 3 of 4 predicted as 1
  ];
  const order = confusionOrder(m);
  assert.equal(Math.abs(order.indexOf(2) - order.indexOf(1)), 1, `${order}`);
});

test('handles empty, perfect and single-class matrices', () => {
  assert.deepEqual(confusionOrder([]), []);
  assert.deepEqual(confusionOrder([[5]]), [0]);
  assert.deepEqual(confusionOrder([[5, 0], [0, 0]]), [0, 1]);
  assert.deepEqual(identityOrder(3), [0, 1, 2]);
});

test('scales to 1,000 classes', () => {
  const n = 1000;
  const m = Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => (i === j ? 50 : (i * 31 + j * 17) % 97 === 0 ? 2 : 0)));
  const t0 = performance.now();
  const order = confusionOrder(m);
  assert.ok(isPermutation(order, n));
  assert.ok(performance.now() - t0 < 5000);
});
