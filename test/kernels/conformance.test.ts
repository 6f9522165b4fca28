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
import { readFile } from 'node:fs/promises';
import { allowSimdKernels } from '../../src/kernels/wasm.ts';
import { denseKernelCalls } from '../../src/kernels/dense.ts';

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
  // Filter gradient by im2col (kh·kw·Cin ≤ 64): one input channel, stride 1, SAME is the shifted-copy path.
  { x: [3, 9, 8, 1], k: 4, kw: 2, cout: 3, stride: 1, pad: 'same' }, // one channel, even kernel: asymmetric padding
  { x: [2, 3, 4, 1], k: 5, cout: 2, stride: 1, pad: 'same' }, // one channel, filter larger than the image
  { x: [2, 7, 6, 1], k: 3, cout: 2, stride: 1, pad: 'valid' }, // one channel, VALID: general im2col
  { x: [2, 9, 9, 1], k: 3, cout: 2, stride: 2, pad: 'same' }, // one channel, strided: general im2col
  // One input channel, stride 1, Cout a multiple of 16: the SIMD kernel (two taps per pass, 16 channels per group).
  { x: [3, 10, 9, 1], k: 4, kw: 2, cout: 16, stride: 1, pad: 'same' }, // even tap count, asymmetric padding
  { x: [2, 9, 11, 1], k: 3, cout: 32, stride: 1, pad: 'valid' }, // odd tap count, two channel groups, VALID
  { x: [2, 3, 4, 1], k: 5, cout: 16, stride: 1, pad: 'same' }, // filter larger than the image
  { x: [2, 6, 7, 1], k: 1, cout: 48, stride: 1, pad: 'same' }, // one tap
  { x: [2, 9, 9, 1], k: 3, cout: 16, stride: 2, pad: 'same' }, // strided: declined (general im2col)
  { x: [2, 9, 9, 1], k: 3, cout: 12, stride: 1, pad: 'same' }, // Cout not a multiple of 16: declined (shifted im2col)
  { x: [2, 9, 9, 2], k: 3, cout: 16, stride: 1, pad: 'same' }, // two input channels: declined
  { x: [2, 6, 5, 7], k: 3, cout: 3, stride: 1, pad: 'same' }, // 63 taps: general im2col
  // Above the im2col limit: the forward-conv trick.
  { x: [2, 6, 5, 8], k: 3, cout: 3, stride: 1, pad: 'same' }, // 72 taps
  { x: [2, 11, 11, 8], k: 3, cout: 4, stride: 2, pad: 'same' }, // 72 taps, strided
  // 5x5, stride 1, ≥ 8 channels both ways: forward and input gradient by Winograd F(2x2, 5x5) (winograd.ts).
  { x: [3, 7, 9, 8], k: 5, cout: 10, stride: 1, pad: 'same' }, // odd sizes: the last tiles half outside
  { x: [1, 11, 8, 13], k: 5, cout: 8, stride: 1, pad: 'valid' }, // 7x4 out, channels not a multiple of 4
  { x: [32, 6, 6, 9], k: 5, cout: 11, stride: 1, pad: 'same' }, // batch 32: the last block of tiles partial
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
  { x: [3, 6, 10, 12], size: 2, stride: 2, pad: 'same', ties: true }, // SIMD path, 3 groups of 4 channels
  { x: [2, 6, 6, 6], size: 2, stride: 2, pad: 'same', ties: true }, // 2x2 but channels not a multiple of 4: JavaScript loop
];

for (const c of poolCases) {
  const label = `maxPool grad x${c.x.join('x')} size ${c.size} stride ${c.stride} ${c.pad}${c.ties ? ' with ties' : ''}`;
  test(`${label}: wasm matches cpu`, async () => {
    const xs = c.ties ? Float32Array.from(random(size(c.x)), (v) => Math.round(v)) : random(size(c.x));
    const probe = tf.tidy(() => tf.maxPool(tf.zeros(c.x) as tf.Tensor4D, c.size, c.stride, c.pad).shape);
    const rs = random(size(probe));
    await agree(
      label,
      () => {
        const x = tf.tensor4d(xs, c.x);
        const r = tf.tensor(rs, probe);
        const dx = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(a as tf.Tensor4D, c.size, c.stride, c.pad), r)))(x);
        return [dx];
      },
      1e-6,
    );
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

test('matMul with the shapes of dense layers (small batch, transposed operand wider than tall): wasm matches cpu', async () => {
  // dx = dy × Wᵀ with few rows takes the (b × aᵀ)ᵀ path; the other shapes keep transposing b.
  for (const [m, k, n] of [
    [4, 9, 50],
    [3, 6, 40],
    [40, 6, 3],
    [1, 17, 23],
  ]) {
    const as = random(m * k);
    const bs = random(n * k);
    const rs = random(m * n);
    await agree(`matMul ${m}x${k} · (${n}x${k})ᵀ`, () => {
      const a = tf.tensor2d(as, [m, k]);
      const b = tf.tensor2d(bs, [n, k]);
      const r = tf.tensor2d(rs, [m, n]);
      const [da, db] = tf.grads((p: tf.Tensor, q: tf.Tensor) => tf.sum(tf.mul(tf.matMul(p as tf.Tensor2D, q as tf.Tensor2D, false, true), r)))([a, b]);
      // and the untransposed product whose gradient multiplies by a transposed operand
      const bt = tf.tensor2d(bs, [k, n]);
      const [da2, db2] = tf.grads((p: tf.Tensor, q: tf.Tensor) => tf.sum(tf.mul(tf.matMul(p as tf.Tensor2D, q as tf.Tensor2D), r)))([a, bt]);
      return [tf.matMul(a, b, false, true), da, db, da2, db2];
    });
  }
});

test('dense products on the generated SIMD kernels (A·B, Aᵀ·B, A·Bᵀ and their gradients), shapes on and off the block edges: wasm matches cpu', async () => {
  // M and K around the register blocks (R rows, k unrolled by 4), N = 4·(1..9) vectors (blocks of 1–4 and a
  // narrower last group), the seed network's fc1 of a 32-image slice, and a batch of 3.
  const shapes = [
    [7, 13, 20],
    [1, 300, 4],
    [2, 129, 8],
    [5, 21, 36],
    [13, 7, 12],
    [33, 5, 28],
    [64, 17, 16],
    [32, 1764, 128],
    [3, 40, 128],
  ];
  for (const [m, k, n] of shapes) {
    for (const [ta, tb] of [
      [false, false],
      [true, false],
      [false, true],
    ] as const) {
      const aShape = ta ? [k, m] : [m, k];
      const bShape = tb ? [n, k] : [k, n];
      const as = random(size(aShape));
      const bs = random(size(bShape));
      const rs = random(m * n);
      const before = denseKernelCalls();
      await agree(`matMul ${m}x${k}x${n} transposeA=${ta} transposeB=${tb}`, () => {
        const a = tf.tensor2d(as, aShape as [number, number]);
        const b = tf.tensor2d(bs, bShape as [number, number]);
        const r = tf.tensor2d(rs, [m, n]);
        const [da, db] = tf.grads((p: tf.Tensor, q: tf.Tensor) => tf.sum(tf.mul(tf.matMul(p as tf.Tensor2D, q as tf.Tensor2D, ta, tb), r)))([a, b]);
        return [tf.matMul(a, b, ta, tb), da, db];
      });
      // A·Bᵀ runs as (B·Aᵀ)ᵀ, so with M not a multiple of 4 it stays on XNNPACK.
      if (!tb || m % 4 === 0) assert.ok(denseKernelCalls() > before, `${m}x${k}x${n} ${ta} ${tb}: the generated kernel did not run`);
    }
  }
});

test('sum over leading axes (fast path) and every other reduction (stock kernel): wasm matches cpu', async () => {
  const cases: { shape: number[]; axis: number | number[]; keepDims?: boolean; dtype?: 'float32' | 'int32' }[] = [
    { shape: [4, 28, 28, 16], axis: [0, 1, 2] }, // a conv bias gradient
    { shape: [5, 7, 3, 9], axis: [2, 0, 1] }, // axes in any order
    { shape: [5, 7, 3, 9], axis: [-4, -3, -2], keepDims: true },
    { shape: [64, 128], axis: 0 }, // a dense bias gradient
    { shape: [13, 3], axis: [0], keepDims: true },
    { shape: [9, 4, 5], axis: [0, 1] },
    // cols a multiple of 4: the SIMD kernel (16 columns per pass, then 4; 32-row float32 blocks)
    { shape: [3, 14, 14, 36], axis: [0, 1, 2] }, // conv2's bias gradient: 16 + 16 + 4 columns
    { shape: [70, 20], axis: 0 }, // a partial last block
    { shape: [2, 4], axis: 0 }, // fewer rows than a block, 4 columns only
    { shape: [33, 3, 16], axis: [0, 1], keepDims: true },
    { shape: [6, 8], axis: 0, dtype: 'int32' }, // int32: stock kernel
    { shape: [1, 6], axis: 0 }, // one row: stock kernel
    { shape: [5, 7, 3, 9], axis: [1, 2] }, // not leading: stock kernel
    { shape: [5, 7, 3, 9], axis: [0, 2] }, // not contiguous: stock kernel
    { shape: [5, 7, 3], axis: [0, 1, 2] }, // everything: stock kernel
    { shape: [6, 4], axis: 0, dtype: 'int32' }, // int32: stock kernel
    { shape: [0, 4], axis: 0 }, // empty
  ];
  for (const c of cases) {
    const n = size(c.shape);
    const values = c.dtype === 'int32' ? Float32Array.from(random(n), (v) => Math.round(v * 50)) : random(n);
    await agree(
      `sum ${c.shape.join('x')} axis ${c.axis}${c.keepDims ? ' keepDims' : ''} ${c.dtype ?? 'float32'}`,
      () => {
        const x = tf.tensor(values, c.shape, c.dtype ?? 'float32');
        const y = tf.sum(x, c.axis, c.keepDims);
        const axes = tf.util.parseAxisParam(c.axis, c.shape);
        const shape = c.keepDims ? c.shape.map((d, i) => (axes.includes(i) ? 1 : d)) : c.shape.filter((_, i) => !axes.includes(i));
        assert.deepEqual(y.shape, shape);
        return [tf.cast(y, 'float32')];
      },
      1e-5,
    );
  }
  // The bias gradient of a broadcast add goes through it.
  const xs = random(3 * 5 * 4 * 6);
  const bs = random(6);
  const rs = random(3 * 5 * 4 * 6);
  await agree('add bias gradient', () => {
    const [dx, db] = tf.grads((x: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.add(x, b), tf.tensor(rs, [3, 5, 4, 6]))))([
      tf.tensor(xs, [3, 5, 4, 6]),
      tf.tensor(bs, [6]),
    ]);
    return [dx, db];
  });
});

test('wasm: SIMD column sums stay within 1e-6 of the float64 sum over 25,000 rows and match the JavaScript loop', async () => {
  await useBackend('wasm');
  const [m, cols] = [25088, 20]; // conv1's bias gradient at batch 32 (and 4 more columns: both SIMD loops)
  // Columns with a mean (no cancellation: float32 round-off shows) and zero-mean columns.
  const values = Float32Array.from(random(m * cols), (v, i) => (i % cols < 10 ? v + 1.5 : v));
  const exact = new Float64Array(cols);
  const absSum = new Float64Array(cols);
  for (let i = 0; i < values.length; i++) {
    exact[i % cols] += values[i];
    absSum[i % cols] += Math.abs(values[i]);
  }
  const run = () => tf.tidy(() => tf.sum(tf.tensor(values, [m / 28, 28, cols]), [0, 1]).dataSync() as Float32Array);
  const simd = run();
  allowSimdKernels(false);
  let js: Float32Array;
  try {
    js = run();
  } finally {
    allowSimdKernels(true);
  }
  for (let j = 0; j < cols; j++) {
    // relative to the sum itself where it has a mean, else to the column's magnitude (Σ|x| / √m)
    const scale = j < 10 ? Math.abs(exact[j]) : absSum[j] / Math.sqrt(m);
    assert.ok(Math.abs(simd[j] - exact[j]) <= 1e-6 * scale, `column ${j}: SIMD ${simd[j]} vs float64 ${exact[j]}`);
    assert.ok(Math.abs(simd[j] - js[j]) <= 1e-6 * scale, `column ${j}: SIMD ${simd[j]} vs JavaScript ${js[j]}`);
  }
});

test('add with a bias (SIMD fast path) and every other add (stock kernel): wasm matches cpu, SIMD bit-identical', async () => {
  const cases: { a: number[]; b: number[]; dtype?: 'float32' | 'int32' }[] = [
    { a: [3, 28, 28, 16], b: [16] }, // conv1's bias add
    { a: [16], b: [3, 28, 28, 16] }, // bias first
    { a: [2, 14, 14, 36], b: [36] }, // conv2's
    { a: [5, 128], b: [128] }, // a dense layer's
    { a: [1, 4], b: [4] },
    { a: [3, 5, 6], b: [6] }, // C not a multiple of 4: stock kernel
    { a: [4, 8], b: [4, 8] }, // same shape: stock kernel
    { a: [8], b: [8] },
    { a: [4, 8], b: [1, 8] }, // bias of rank 2: stock kernel
    { a: [4, 1], b: [8] }, // broadcast both ways: stock kernel
    { a: [4, 8], b: [] }, // scalar: stock kernel
    { a: [4, 8], b: [8], dtype: 'int32' }, // int32: stock kernel
    { a: [0, 8], b: [8] }, // empty
  ];
  for (const c of cases) {
    const dtype = c.dtype ?? 'float32';
    const as = dtype === 'int32' ? Float32Array.from(random(size(c.a)), (v) => Math.round(v * 50)) : random(size(c.a));
    const bs = dtype === 'int32' ? Float32Array.from(random(size(c.b)), (v) => Math.round(v * 50)) : random(size(c.b));
    const f = () => {
      const y = tf.add(tf.tensor(as, c.a, dtype), tf.tensor(bs, c.b, dtype));
      assert.deepEqual(y.shape, tf.backend_util.assertAndGetBroadcastShape(c.a, c.b));
      assert.equal(y.dtype, dtype);
      return [tf.cast(y, 'float32')];
    };
    const label = `add ${c.a.join('x')} + ${c.b.join('x')} ${dtype}`;
    await agree(label, f, 1e-6);
    const [simd] = await on('wasm', f);
    allowSimdKernels(false);
    try {
      const [js] = await on('wasm', f);
      assert.deepEqual(Buffer.from(simd.buffer), Buffer.from(js.buffer), `${label}: SIMD differs from the stock kernel`);
    } finally {
      allowSimdKernels(true);
    }
  }
  // Gradients flow through the fast path as through the stock kernel.
  const xs = random(3 * 5 * 4 * 8);
  const bs = random(8);
  const rs = random(3 * 5 * 4 * 8);
  await agree('add bias gradient, 8 channels', () => {
    const [dx, db] = tf.grads((x: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.add(x, b), tf.tensor(rs, [3, 5, 4, 8]))))([
      tf.tensor(xs, [3, 5, 4, 8]),
      tf.tensor(bs, [8]),
    ]);
    return [dx, db];
  });
});

test('wasm: the SIMD one-channel filter gradient matches the im2col matrix product', async () => {
  await useBackend('wasm');
  for (const [xShape, kh, kw, cout, pad] of [
    [[6, 28, 28, 1], 5, 5, 16, 'same'],
    [[3, 11, 9, 1], 2, 3, 32, 'same'],
    [[2, 12, 10, 1], 4, 4, 16, 'valid'],
  ] as const) {
    const xs = random(size([...xShape]));
    const probe = tf.tidy(() => tf.conv2d(tf.zeros([...xShape]) as tf.Tensor4D, tf.zeros([kh, kw, 1, cout]) as tf.Tensor4D, 1, pad).shape);
    const dys = random(size(probe));
    const run = () =>
      tf.tidy(() => {
        const dw = tf.engine().runKernel(
          'Conv2DBackpropFilter',
          { x: tf.tensor(xs, [...xShape]), dy: tf.tensor(dys, probe) },
          {
            strides: 1,
            pad,
            dataFormat: 'NHWC',
            filterShape: [kh, kw, 1, cout],
          },
        ) as tf.Tensor;
        return dw.dataSync() as Float32Array;
      });
    const simd = run();
    allowSimdKernels(false);
    try {
      const js = run();
      const scale = Math.max(1e-3, maxAbs(js));
      assert.ok(maxAbsDiff(simd, js) <= 1e-5 * scale, `${xShape} k${kh}x${kw} → ${cout} ${pad}: SIMD differs by ${maxAbsDiff(simd, js)} (scale ${scale})`);
    } finally {
      allowSimdKernels(true);
    }
  }
});

test('wasm: a clone shares its data and outlives the original; no buffer leaks', async () => {
  await useBackend('wasm');
  const backend = tf.engine().backend;
  const before = backend.numDataIds();
  const a = tf.tensor([1, 2, 3, 4], [2, 2]);
  const b = tf.clone(a);
  a.dispose();
  assert.deepEqual(Array.from(b.dataSync()), [1, 2, 3, 4]);
  const v = tf.variable(b);
  b.dispose();
  const next = tf.tidy(() => tf.add(v, 1));
  v.assign(next);
  next.dispose();
  assert.deepEqual(Array.from(v.dataSync()), [2, 3, 4, 5]);
  v.dispose();
  assert.equal(backend.numDataIds(), before);
  const s = tf.tensor(['x', 'y']);
  const sc = tf.clone(s); // strings are copied by the stock kernel
  s.dispose();
  assert.deepEqual(sc.arraySync(), ['x', 'y']);
  sc.dispose();
});

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
    await checkNumerically(
      backend,
      'conv2d same',
      [
        [2, 6, 6, 2],
        [3, 3, 2, 3],
      ],
      (x, w) => tf.sum(tf.mul(tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 'same'), tf.tensor(r, [2, 6, 6, 3]))),
    );
    // 5x5 with 8 channels both ways: Winograd on wasm (forward and input gradient), 5x3 output (odd both ways)
    const r5 = random(2 * 5 * 3 * 8);
    await checkNumerically(
      backend,
      'conv2d 5x5 same (Winograd)',
      [
        [2, 5, 3, 8],
        [5, 5, 8, 8],
      ],
      (x, w) => tf.sum(tf.mul(tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 'same'), tf.tensor(r5, [2, 5, 3, 8]))),
    );
    await checkNumerically(
      backend,
      'conv2d stride 2 valid',
      [
        [2, 7, 7, 2],
        [3, 3, 2, 2],
      ],
      (x, w) => tf.sum(tf.square(tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 2, 'valid'))),
    );
  });

  test(`${backend}: maxPool, relu, matMul and softmax cross-entropy gradients match numerical differences`, async () => {
    // Distinct values 0.05 apart, so a ±1e-2 step along a direction in [-1, 1] never changes which element of a
    // window is the maximum. (A smaller step drowns in float32 round-off: f is a sum of squares near 400.)
    const distinct = Float32Array.from(shuffled(2 * 6 * 6 * 3), (i) => (i - 100) * 0.05);
    await checkNumerically(backend, 'maxPool', [[2, 6, 6, 3]], (x) => tf.sum(tf.square(tf.maxPool(x as tf.Tensor4D, 2, 2, 'same'))), {
      eps: 1e-2,
      values: [distinct],
    });
    await checkNumerically(
      backend,
      'relu(matMul)',
      [
        [4, 6],
        [6, 5],
      ],
      (a, b) => tf.sum(tf.square(tf.relu(tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D)))),
    );
    // big enough for the generated dense kernels on wasm (all three products of the gradient)
    await checkNumerically(
      backend,
      'relu(matMul), generated kernels',
      [
        [8, 40],
        [40, 12],
      ],
      (a, b) => tf.sum(tf.square(tf.relu(tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D)))),
    );
    const labels = tf.tidy(() => tf.oneHot(tf.tensor1d([1, 0, 3, 2], 'int32'), 4));
    await checkNumerically(backend, 'softmax cross-entropy', [[4, 4]], (logits) => tf.losses.softmaxCrossEntropy(labels, logits) as tf.Scalar);
    labels.dispose();
  });
}

test('wasm: the SIMD max-pool gradient is bit-identical to the JavaScript loop, ties and all', async () => {
  await useBackend('wasm');
  // Values from {-1, 0, 1}: most windows have ties, some have all four equal.
  const shape: [number, number, number, number] = [5, 12, 8, 20];
  const xs = Float32Array.from(random(size(shape)), (v) => Math.round(v));
  const rs = random(size([5, 6, 4, 20]));
  const run = () =>
    tf.tidy(() => {
      const r = tf.tensor(rs, [5, 6, 4, 20]);
      return tf
        .grad((a: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(a as tf.Tensor4D, 2, 2, 'same'), r)))(tf.tensor4d(xs, shape))
        .dataSync();
    });
  const simd = run();
  allowSimdKernels(false);
  try {
    const js = run();
    assert.deepEqual(Buffer.from(simd.buffer), Buffer.from(js.buffer));
    // Sanity: exactly one non-zero (the dy) per window and channel, and the whole dy routed.
    const nonZero = Array.from(simd).filter((v) => v !== 0).length;
    assert.equal(nonZero, rs.filter((v) => v !== 0).length);
  } finally {
    allowSimdKernels(true);
  }
});

test('the committed wasm modules are assembled from their .wat sources', async () => {
  const { assemble, modulePath, wasmModules } = await import('../../scripts/build-wasm.ts');
  for (const name of wasmModules) assert.equal(await readFile(modulePath(name), 'utf8'), await assemble(name), `${name}: run npm run build:wasm`);
});
