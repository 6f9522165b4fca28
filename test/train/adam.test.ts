/** Adam: the flat rules convlab runs (wasm SIMD and its JavaScript fallback) and the tensor reference, against Algorithm 1. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../../src/backend.ts';
import { scheduledRate } from '../../src/train/optimizer.ts';
import { adamReference, gradients, start } from '../helpers/optimizer-reference.ts';
import { Adam } from '../helpers/tensor-optimizers.ts';
import { FlatAdam, SimdAdam } from '../../src/train/flat.ts';

for (const backend of ['cpu', 'wasm'] as const) {
  test(`${backend}: Adam's first step moves each weight by the learning rate against the gradient's sign`, async () => {
    await useBackend(backend);
    const theta = tf.variable(tf.tensor1d([1, -2, 0.5, 3]));
    const adam = new Adam({ beta1: 0.9, beta2: 0.999, epsilon: 1e-8 });
    const g = tf.tensor1d([0.1, -0.3, 0, 1e-3]);
    adam.apply(new Map([['w', theta]]), new Map([['w', g]]), 0.01);
    // m̂ = g and v̂ = g² after one step, so the update is lr·g/|g| (0 where g = 0): the paper's "trust region".
    const got = Array.from(theta.dataSync());
    const want = [0.99, -1.99, 0.5, 2.99];
    got.forEach((x, i) => assert.ok(Math.abs(x - want[i]) < 1e-6, `weight ${i}: ${x} vs ${want[i]}`));
    adam.dispose();
    tf.dispose([theta, g]);
  });

  test(`${backend}: Adam matches Algorithm 1 over several steps`, async () => {
    await useBackend(backend);
    const theta = tf.variable(tf.tensor1d(start));
    const adam = new Adam({ beta1: 0.9, beta2: 0.999, epsilon: 1e-8 });
    for (const g of gradients) {
      const gt = tf.tensor1d(g);
      adam.apply(new Map([['w', theta]]), new Map([['w', gt]]), 0.05);
      gt.dispose();
    }
    const want = adamReference(start, gradients, 0.05);
    Array.from(theta.dataSync()).forEach((x, i) => assert.ok(Math.abs(x - want[i]) < 1e-5, `weight ${i}: ${x} vs ${want[i]}`));
    assert.equal(adam.step, 4);
    adam.dispose();
    theta.dispose();
  });
}

test('cosine schedule starts and ends at the given rates and is monotone', () => {
  const total = 101;
  const cosine = { type: 'cosine', finalLearningRate: 1e-5 } as const;
  const learningRateAt = (schedule: 'constant' | 'cosine', start: number, i: number) =>
    scheduledRate(schedule === 'cosine' ? cosine : { type: 'constant' }, start, i, total);
  assert.equal(learningRateAt('cosine', 1e-3, 0), 1e-3);
  assert.ok(Math.abs(learningRateAt('cosine', 1e-3, total - 1) - 1e-5) < 1e-12);
  assert.ok(Math.abs(learningRateAt('cosine', 1e-3, 50) - (1e-3 + 1e-5) / 2) < 1e-12);
  for (let i = 1; i < total; i++) assert.ok(learningRateAt('cosine', 1e-3, i) <= learningRateAt('cosine', 1e-3, i - 1));
  assert.equal(learningRateAt('constant', 1e-4, 77), 1e-4);
});

/**
 * Algorithm 1 with every operation rounded to float32, in the kernel's order (src/kernels/update.wat):
 * g = w0·g0 + w1·g1; m ← β1·m + g·(1−β1); v ← β2·v + g²·(1−β2); θ ← θ − α·((m/c1) / (√(v/c2) + ε)), with
 * 1−β rounded to float32 and c = 1−β^t in doubles (flat.ts), then rounded. +, −, ×, ÷ and √ of float32
 * values computed in doubles and rounded once are the float32 results, so this is bit-exact.
 */
function adamFloat32(theta: number[], steps: [number, number[], number, number[]][], lr: number, b1 = 0.9, b2 = 0.999, eps = 1e-8): number[] {
  const f = Math.fround;
  const [B1, B2, LR, EPS, O1, O2] = [f(b1), f(b2), f(lr), f(eps), f(1 - f(b1)), f(1 - f(b2))];
  const m = theta.map(() => 0);
  const v = theta.map(() => 0);
  const out = theta.map(f);
  steps.forEach(([w0, g0, w1, g1], k) => {
    const [c1, c2] = [f(1 - b1 ** (k + 1)), f(1 - b2 ** (k + 1))];
    for (let i = 0; i < out.length; i++) {
      const g = f(f(f(w0) * f(g0[i])) + f(f(w1) * f(g1[i])));
      m[i] = f(f(B1 * m[i]) + f(g * O1));
      v[i] = f(f(B2 * v[i]) + f(f(g * g) * O2));
      out[i] = f(out[i] - f(LR * f(f(m[i] / c1) / f(f(Math.sqrt(f(v[i] / c2))) + EPS))));
    }
  });
  return out;
}

const layout = [{ name: 'w', shape: [3], offset: 0, size: 3 }];
const adamOptions = { beta1: 0.9, beta2: 0.999, epsilon: 1e-8 };

test("the flat Adams' first step moves each weight by the learning rate against the gradient's sign", () => {
  for (const adam of [new SimdAdam(layout, adamOptions), new FlatAdam(layout, adamOptions)]) {
    const theta = Float32Array.from([1, -2, 0.5]);
    adam.apply(theta, Float32Array.from([0.1, -0.3, 0]), 0.01);
    const want = [0.99, -1.99, 0.5];
    for (const [i, x] of theta.entries()) assert.ok(Math.abs(x - want[i]) < 1e-6, `${adam.constructor.name} weight ${i}: ${x} vs ${want[i]}`);
  }
});

test('the wasm SIMD Adam is Algorithm 1 in float32, bit for bit, with one gradient and with two weighted', () => {
  const one = new SimdAdam(layout, adamOptions);
  const theta = Float32Array.from(start);
  for (const g of gradients) one.apply(theta, Float32Array.from(g), 0.05);
  const zero = [0, 0, 0];
  assert.deepEqual(
    Array.from(theta),
    adamFloat32(
      start,
      gradients.map((g) => [1, g, 0, zero]),
      0.05,
    ),
  );
  // Within float32 of the doubles too (the difference is 1−β and the other roundings).
  const doubles = adamReference(start, gradients, 0.05);
  for (const [i, x] of theta.entries()) assert.ok(Math.abs(x - doubles[i]) < 1e-5, `weight ${i}: ${x} vs ${doubles[i]}`);

  const two = new SimdAdam(layout, adamOptions);
  const pairs: [number, number[], number, number[]][] = [
    [0.25, gradients[0], 0.75, gradients[1]],
    [0.5, gradients[2], 0.5, gradients[3]],
  ];
  const weighted = Float32Array.from(start);
  for (const [w0, g0, w1, g1] of pairs) two.applyWeighted(weighted, [Float32Array.from(g0), Float32Array.from(g1)], [w0, w1], 0.05);
  assert.deepEqual(Array.from(weighted), adamFloat32(start, pairs, 0.05));
});
