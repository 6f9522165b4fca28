/**
 * One conformance suite for the wasm gradient kernels (src/kernels/wasm.ts): every gradient the network
 * needs is computed on wasm (convlab's kernels) and on cpu (TensorFlow.js's reference kernels) for the same
 * random inputs over many shapes, strides and paddings, and must agree. Separately, each gradient is
 * checked against numerical differences on both backends.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { useBackend, type BackendName } from '../../src/backend.ts';
import { Rng } from '../../src/data/batches.ts';

const rng = new Rng(7);
const random = (n: number, scale = 1) => Float32Array.from({ length: n }, () => (rng.next() * 2 - 1) * scale);
const shuffled = (n: number) => {
  const a = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
};
const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** Runs `f` on `backend` with fresh tensors made from plain arrays, returns plain arrays. */
async function on(backend: BackendName, f: () => tf.Tensor[]): Promise<Float32Array[]> {
  await useBackend(backend);
  const outs = tf.tidy(f);
  const values = outs.map((t) => t.dataSync() as Float32Array);
  tf.dispose(outs);
  return values;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function maxAbs(a: Float32Array): number {
  return a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
}

async function agree(name: string, f: () => tf.Tensor[], tol = 1e-4): Promise<void> {
  const cpu = await on('cpu', f);
  const wasm = await on('wasm', f);
  cpu.forEach((c, i) => {
    const scale = Math.max(1, maxAbs(c));
    const d = maxAbsDiff(c, wasm[i]);
    assert.ok(d <= tol * scale, `${name} output ${i}: wasm differs from cpu by ${d} (scale ${scale})`);
  });
}

interface ConvCase {
  x: [number, number, number, number];
  k: number;
  kw?: number;
  cout: number;
  stride: number;
  pad: 'same' | 'valid';
}

const convCases: ConvCase[] = [
  { x: [4, 28, 28, 1], k: 5, cout: 16, stride: 1, pad: 'same' }, // the lesson's conv1
  { x: [4, 14, 14, 16], k: 5, cout: 36, stride: 1, pad: 'same' }, // the lesson's conv2
  { x: [3, 9, 7, 3], k: 3, cout: 4, stride: 1, pad: 'valid' },
  { x: [2, 8, 8, 2], k: 2, cout: 3, stride: 1, pad: 'same' }, // even kernel: asymmetric SAME padding
  { x: [2, 10, 9, 2], k: 4, kw: 3, cout: 5, stride: 1, pad: 'same' }, // non-square kernel
  { x: [2, 11, 11, 3], k: 3, cout: 4, stride: 2, pad: 'same' }, // strided: input gradient falls back
  { x: [2, 12, 12, 2], k: 5, cout: 3, stride: 2, pad: 'valid' },
  { x: [2, 13, 10, 1], k: 3, cout: 2, stride: 3, pad: 'same' }, // stride skips the last rows
  { x: [1, 5, 5, 2], k: 1, cout: 2, stride: 1, pad: 'valid' }, // 1x1
  { x: [2, 4, 4, 3], k: 5, cout: 2, stride: 1, pad: 'same' }, // filter larger than the image
];

for (const c of convCases) {
  const kw = c.kw ?? c.k;
  const label = `conv2d grads x${c.x.join('x')} k${c.k}x${kw} → ${c.cout}, stride ${c.stride}, ${c.pad}`;
  test(`${label}: wasm matches cpu`, async () => {
    const wShape: [number, number, number, number] = [c.k, kw, c.x[3], c.cout];
    const xs = random(size(c.x));
    const ws = random(size(wShape), 0.3);
    // Outputs are weighted by a fixed random tensor so every output position's gradient matters.
    const probe = tf.tidy(() => tf.conv2d(tf.zeros(c.x) as tf.Tensor4D, tf.zeros(wShape) as tf.Tensor4D, c.stride, c.pad).shape);
    const rs = random(size(probe));
    await agree(label, () => {
      const x = tf.tensor4d(xs, c.x);
      const w = tf.tensor4d(ws, wShape as [number, number, number, number]);
      const r = tf.tensor(rs, probe);
      const g = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.stride, c.pad), r)));
      const [dx, dw] = g([x, w]);
      return [tf.conv2d(x, w, c.stride, c.pad), dx, dw];
    });
  });
}

interface PoolCase {
  x: [number, number, number, number];
  size: number;
  stride: number;
  pad: 'same' | 'valid';
  ties?: boolean;
}

const poolCases: PoolCase[] = [
  { x: [4, 28, 28, 16], size: 2, stride: 2, pad: 'same' },
  { x: [4, 14, 14, 36], size: 2, stride: 2, pad: 'same' },
  { x: [2, 7, 7, 3], size: 2, stride: 2, pad: 'same' }, // odd: padded last window
  { x: [2, 9, 8, 2], size: 3, stride: 2, pad: 'valid' }, // overlapping windows
  { x: [2, 9, 9, 2], size: 3, stride: 1, pad: 'same' },
  { x: [2, 8, 8, 4], size: 2, stride: 2, pad: 'same', ties: true }, // flat regions: TensorFlow routes to the first max
];

for (const c of poolCases) {
  const label = `maxPool grad x${c.x.join('x')} size ${c.size} stride ${c.stride} ${c.pad}${c.ties ? ' with ties' : ''}`;
  test(`${label}: wasm matches cpu`, async () => {
    const xs = c.ties ? Float32Array.from(random(size(c.x)), (v) => Math.round(v)) : random(size(c.x));
    const probe = tf.tidy(() => tf.maxPool(tf.zeros(c.x) as tf.Tensor4D, c.size, c.stride, c.pad).shape);
    const rs = random(size(probe));
    await agree(label, () => {
      const x = tf.tensor4d(xs, c.x);
      const r = tf.tensor(rs, probe);
      const dx = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(a as tf.Tensor4D, c.size, c.stride, c.pad), r)))(x);
      return [dx];
    }, 1e-6);
  });
}

for (const [ta, tb] of [
  [false, false],
  [true, false],
  [false, true],
  [true, true],
] as const) {
  test(`matMul transposeA=${ta} transposeB=${tb} and its gradients: wasm matches cpu`, async () => {
    const [m, k, n] = [7, 13, 5];
    const aShape = ta ? [k, m] : [m, k];
    const bShape = tb ? [n, k] : [k, n];
    const as = random(size(aShape));
    const bs = random(size(bShape));
    const rs = random(m * n);
    await agree(`matMul ${ta} ${tb}`, () => {
      const a = tf.tensor2d(as, aShape as [number, number]);
      const b = tf.tensor2d(bs, bShape as [number, number]);
      const r = tf.tensor2d(rs, [m, n]);
      const f = (p: tf.Tensor, q: tf.Tensor) => tf.sum(tf.mul(tf.matMul(p as tf.Tensor2D, q as tf.Tensor2D, ta, tb), r));
      const [da, db] = tf.grads(f)([a, b]);
      return [tf.matMul(a, b, ta, tb), da, db];
    });
  });
}

/**
 * Directional numerical check: for a random direction d, (f(θ+εd) − f(θ−εd)) / 2ε ≈ ∇f(θ)·d.
 * One direction exercises every element of the gradient at once, and float32 round-off stays small.
 */
async function checkNumerically(
  backend: BackendName,
  name: string,
  shapes: number[][],
  f: (...t: tf.Tensor[]) => tf.Scalar,
  { eps = 1e-2, values = shapes.map((s) => random(size(s))) } = {},
) {
  await useBackend(backend);
  const dirs = shapes.map((s) => random(size(s)));
  for (let which = 0; which < shapes.length; which++) {
    const at = (delta: number) =>
      tf.tidy(() => {
        const ts = shapes.map((s, i) => tf.tensor(i === which ? values[i].map((v, j) => v + delta * dirs[i][j]) : values[i], s));
        return f(...ts).dataSync()[0];
      });
    const numeric = (at(eps) - at(-eps)) / (2 * eps);
    const analytic = tf.tidy(() => {
      const ts = shapes.map((s, i) => tf.tensor(values[i], s));
      const g = tf.grads((...a: tf.Tensor[]) => f(...a))(ts)[which];
      return tf.sum(tf.mul(g, tf.tensor(dirs[which], shapes[which]))).dataSync()[0];
    });
    const err = Math.abs(numeric - analytic) / Math.max(1, Math.abs(numeric));
    assert.ok(err < 2e-3, `${backend} ${name} input ${which}: analytic ${analytic} vs numeric ${numeric} (rel err ${err})`);
  }
}

for (const backend of ['cpu', 'wasm'] as const) {
  test(`${backend}: conv2d gradients match numerical differences`, async () => {
    const r = random(6 * 6 * 3 * 2);
    await checkNumerically(backend, 'conv2d same', [[2, 6, 6, 2], [3, 3, 2, 3]], (x, w) =>
      tf.sum(tf.mul(tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 'same'), tf.tensor(r, [2, 6, 6, 3]))),
    );
    await checkNumerically(backend, 'conv2d stride 2 valid', [[2, 7, 7, 2], [3, 3, 2, 2]], (x, w) =>
      tf.sum(tf.square(tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 2, 'valid'))),
    );
  });

  test(`${backend}: maxPool, relu, matMul and softmax cross-entropy gradients match numerical differences`, async () => {
    // Distinct values 0.05 apart, so a ±1e-3 step never changes which element of a window is the maximum.
    const distinct = Float32Array.from(shuffled(2 * 6 * 6 * 3), (i) => (i - 100) * 0.05);
    await checkNumerically(backend, 'maxPool', [[2, 6, 6, 3]], (x) => tf.sum(tf.square(tf.maxPool(x as tf.Tensor4D, 2, 2, 'same'))), {
      eps: 1e-3,
      values: [distinct],
    });
    await checkNumerically(backend, 'relu(matMul)', [[4, 6], [6, 5]], (a, b) => tf.sum(tf.square(tf.relu(tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D)))));
    const labels = tf.tidy(() => tf.oneHot(tf.tensor1d([1, 0, 3, 2], 'int32'), 4));
    await checkNumerically(backend, 'softmax cross-entropy', [[4, 4]], (logits) => tf.losses.softmaxCrossEntropy(labels, logits) as tf.Scalar);
    labels.dispose();
  });
}
