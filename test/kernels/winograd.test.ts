/**
 * The Winograd F(2x2, 5x5) kernels and F(5x5, 2x2) for the filter gradient (src/kernels/winograd.ts) against the cpu backend's reference kernels and
 * against the direct kernel, over shapes chosen to hit every edge: odd output sizes (the last tile half outside),
 * channel counts that are not a multiple of 4 (or of a register block), batch sizes 1, 3 and 32, SAME and VALID
 * padding, block sizes that do not divide the tile count. Prints the largest errors seen.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import wabtInit from 'wabt';
import { useBackend } from '../../src/backend.ts';
import { directConvCalls } from '../../src/kernels/conv-direct.ts';
import { allowWinograd, convRoutes } from '../../src/kernels/wasm.ts';
import { type WinogradShape, planWinograd, winogradCalls, winogradMatrices, winogradModule } from '../../src/kernels/winograd.ts';
import { xorshift } from '../helpers/xorshift.ts';

// the same shapes and values on every run
const { next, int, random } = xorshift(0x9e3779b9);
const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

interface Case {
  x: [number, number, number, number];
  cout: number;
  pad: 'same' | 'valid';
}

const fixed: Case[] = [
  { x: [3, 14, 14, 16], cout: 36, pad: 'same' }, // conv2 of the lesson (its input gradient: 36 → 16)
  { x: [1, 16, 16, 64], cout: 64, pad: 'same' }, // the CIFAR-10 lesson's conv2
  { x: [32, 7, 9, 12], cout: 10, pad: 'same' }, // batch 32: many blocks of tiles, the last one partial
  { x: [1, 7, 7, 36], cout: 64, pad: 'same' }, // odd size: half the last tile row and column outside
  { x: [3, 9, 13, 10], cout: 9, pad: 'valid' }, // 5x9 out: odd both ways; channels not a multiple of 4
  { x: [1, 5, 5, 8], cout: 8, pad: 'valid' }, // one output pixel
  { x: [2, 3, 4, 11], cout: 13, pad: 'same' }, // filter larger than the image
  { x: [1, 14, 14, 128], cout: 8, pad: 'same' }, // the largest input channel count
];
const randomCases: Case[] = Array.from({ length: 16 }, () => {
  const pad = next() < 0.5 ? 'same' : 'valid';
  const lo = pad === 'same' ? 1 : 5;
  return { x: [int(1, 4), int(lo, 17), int(lo, 17), int(8, 40)], cout: int(8, 40), pad } as Case;
});

async function on(backend: 'cpu' | 'wasm', f: () => tf.Tensor[]): Promise<Float32Array[]> {
  await useBackend(backend);
  const outs = tf.tidy(f);
  const values = outs.map((t) => t.dataSync() as Float32Array);
  tf.dispose(outs);
  return values;
}

/** Largest |a − b| and that over the largest |ref|. */
function error(ref: Float32Array, got: Float32Array): { abs: number; rel: number } {
  assert.equal(got.length, ref.length);
  let scale = 1;
  let d = 0;
  for (let i = 0; i < ref.length; i++) {
    scale = Math.max(scale, Math.abs(ref[i]));
    d = Math.max(d, Math.abs(ref[i] - got[i]));
  }
  return { abs: d, rel: d / scale };
}

const zero = () => ({ abs: 0, rel: 0 });
const worst = { data: { cpu: zero(), direct: zero() }, filter: { cpu: zero(), direct: zero() } };
const note = (what: 'data' | 'filter', which: 'cpu' | 'direct', e: { abs: number; rel: number }) => {
  worst[what][which].abs = Math.max(worst[what][which].abs, e.abs);
  worst[what][which].rel = Math.max(worst[what][which].rel, e.rel);
};

for (const c of [...fixed, ...randomCases]) {
  const w: [number, number, number, number] = [5, 5, c.x[3], c.cout];
  const label = `winograd x${c.x.join('x')} w${w.join('x')} ${c.pad}`;
  test(`${label}: forward, input and filter gradients match cpu and the direct kernel`, async () => {
    const xs = random(size(c.x));
    const ws = random(size(w), 0.2);
    const probe = tf.tidy(() => tf.conv2d(tf.zeros(c.x) as tf.Tensor4D, tf.zeros(w) as tf.Tensor4D, 1, c.pad).shape);
    const rs = random(size(probe));
    // the cpu backend's filter gradient is slow: on cpu only for the smaller cases
    const f = (withFilterGradient = true) => {
      const x = tf.tensor4d(xs, c.x);
      const wt = tf.tensor4d(ws, w);
      const r = tf.tensor(rs, probe);
      const loss = (a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, c.pad), r));
      const y = tf.conv2d(x, wt, 1, c.pad);
      if (!withFilterGradient) return [y, tf.grad((a: tf.Tensor) => loss(a, wt))(x)];
      const [dx, dw] = tf.grads(loss)([x, wt]);
      return [y, dx, dw];
    };
    const cheap = size(c.x) * c.cout * 25 <= 4e6;
    const cpu = await on('cpu', () => f(cheap));
    const before = winogradCalls();
    const wino = await on('wasm', f);
    assert.equal(winogradCalls() - before, 4, 'both forward convs, the input and the filter gradient took Winograd');
    allowWinograd(false);
    let direct: Float32Array[];
    const directBefore = directConvCalls();
    try {
      direct = await on('wasm', f);
    } finally {
      allowWinograd(true);
    }
    assert.equal(winogradCalls() - before, 4, 'turned off, Winograd is not used');
    assert.equal(directConvCalls() - directBefore, 3, 'turned off, the direct kernel runs instead');
    for (let i = 0; i < 3; i++) {
      // the filter gradient sums over every pixel of the batch: float32 round-off grows with the count
      const tol = i === 2 ? 1e-4 : 1e-5;
      const which = i === 2 ? 'filter' : 'data';
      const vsDirect = error(direct[i], wino[i]);
      note(which, 'direct', vsDirect);
      assert.ok(vsDirect.rel <= tol, `${label} output ${i}: differs from the direct kernel by ${vsDirect.abs} (relative ${vsDirect.rel})`);
      if (i === 2 && !cheap) continue;
      const vsCpu = error(cpu[i], wino[i]);
      note(which, 'cpu', vsCpu);
      assert.ok(vsCpu.rel <= tol, `${label} output ${i}: differs from cpu by ${vsCpu.abs} (relative ${vsCpu.rel})`);
    }
  });
}

test('largest Winograd errors (reported)', () => {
  const e = (x: { abs: number; rel: number }) => `max abs ${x.abs.toExponential(2)}, rel ${x.rel.toExponential(2)}`;
  console.log(`winograd forward and input gradient: vs cpu ${e(worst.data.cpu)}; vs direct ${e(worst.data.direct)}`);
  console.log(`winograd filter gradient: vs cpu ${e(worst.filter.cpu)}; vs direct ${e(worst.filter.direct)}`);
  assert.ok(worst.data.cpu.abs > 0 && worst.filter.cpu.abs > 0, 'the cases ran');
});

test('the 1-D identity Aᵀ[(G g) ⊙ (Bᵀ d)] equals the correlation of d with g', () => {
  const { AT, G, BT, m, r } = winogradMatrices;
  const mv = (mat: number[][], v: number[]) => mat.map((row) => row.reduce((s, c, i) => s + c * v[i], 0));
  for (let trial = 0; trial < 20; trial++) {
    const d = Array.from({ length: m + r - 1 }, () => next() * 2 - 1);
    const g = Array.from({ length: r }, () => next() * 2 - 1);
    const gd = mv(G, g);
    const y = mv(
      AT,
      mv(BT, d).map((v, i) => v * gd[i]),
    );
    for (let k = 0; k < m; k++) {
      const ref = g.reduce((s, gi, i) => s + gi * d[k + i], 0);
      assert.ok(Math.abs(y[k] - ref) < 1e-12, `y[${k}] = ${y[k]}, correlation ${ref}`);
    }
  }
});

test('the product block fits the registers and covers the output channels', () => {
  for (let cin = 8; cin <= 128; cin += 7) {
    for (let q = 2; q <= 24; q++) {
      const p = planWinograd({ cin, coutp: 4 * q, tilesH: 7, tilesW: 7 });
      assert.ok(p.r >= 1 && p.v >= 1 && p.v <= Math.min(4, q) && p.r * p.v + p.v + 1 <= 14, `cin ${cin} q ${q}: ${JSON.stringify(p)}`);
      assert.equal(p.t % p.r, 0, 'a block is whole register blocks of tiles');
    }
  }
});

test('a Winograd module is valid WebAssembly for wabt too, with and without relaxed SIMD', async () => {
  const wabt = await wabtInit();
  const shape: WinogradShape = { cin: 16, coutp: 36, tilesH: 7, tilesW: 7 };
  for (const relaxed of [false, true]) {
    const bytes = winogradModule(shape, planWinograd(shape), relaxed);
    const module = wabt.readWasm(bytes, { simd: true, relaxed_simd: relaxed } as never);
    module.validate();
    const text = module.toText({});
    module.destroy();
    assert.match(text, /\(export "wino" \(func/);
    assert.match(text, relaxed ? /f32x4\.relaxed_madd/ : /f32x4\.mul/);
    if (!relaxed) assert.ok(WebAssembly.validate(bytes), 'plain SIMD validates');
  }
});

test('routes: 5x5 stride 1 with ≥ 8 channels both ways take Winograd (all three products); fewer channels, other sizes and strides do not', async () => {
  await useBackend('wasm');
  assert.deepEqual(convRoutes([32, 14, 14, 16], [5, 5, 16, 36], 1, 'same').forward, 'winograd');
  assert.deepEqual(convRoutes([32, 14, 14, 16], [5, 5, 16, 36], 1, 'same').inputGradient, 'winograd');
  assert.deepEqual(convRoutes([32, 14, 14, 16], [5, 5, 16, 36], 1, 'same').filterGradient, 'winograd');
  assert.equal(convRoutes([32, 14, 14, 4], [5, 5, 4, 7], 1, 'same').filterGradient, 'direct');
  assert.equal(convRoutes([32, 28, 28, 1], [5, 5, 1, 16], 1, 'same').forward, 'direct');
  assert.equal(convRoutes([32, 14, 14, 4], [5, 5, 4, 7], 1, 'same').forward, 'direct');
  assert.equal(convRoutes([32, 7, 7, 36], [3, 3, 36, 64], 1, 'same').forward, 'direct');
  assert.equal(convRoutes([32, 28, 28, 16], [5, 5, 16, 36], 2, 'same').forward, 'xnnpack');
  // and the kernel really follows the route
  const before = winogradCalls();
  tf.tidy(() => tf.conv2d(tf.ones([1, 6, 6, 4]) as tf.Tensor4D, tf.ones([5, 5, 4, 7]) as tf.Tensor4D, 1, 'same').dataSync());
  assert.equal(winogradCalls(), before);
  tf.tidy(() => tf.conv2d(tf.ones([1, 6, 6, 8]) as tf.Tensor4D, tf.ones([5, 5, 8, 8]) as tf.Tensor4D, 1, 'same').dataSync());
  assert.equal(winogradCalls(), before + 1);
});

test('the cached filter transform follows the weights: other tensors of the same shape, and weights changed in place', async () => {
  await useBackend('wasm');
  const x = tf.tensor4d(random(2 * 6 * 6 * 8), [2, 6, 6, 8]);
  const w1 = tf.tensor4d(random(5 * 5 * 8 * 8, 0.2), [5, 5, 8, 8]);
  const w2 = tf.tensor4d(random(5 * 5 * 8 * 8, 0.2), [5, 5, 8, 8]);
  const conv = (w: tf.Tensor4D, winograd: boolean) => {
    allowWinograd(winograd);
    try {
      return tf.tidy(() => tf.conv2d(x, w, 1, 'same').dataSync() as Float32Array);
    } finally {
      allowWinograd(true);
    }
  };
  const before = winogradCalls();
  for (const w of [w1, w2, w1, w1]) assert.ok(error(conv(w, false), conv(w, true)).rel <= 1e-5);
  // the optimizer's update kernel writes weights in place on the heap: same tensor, new values
  const backend = tf.backend() as unknown as { typedArrayFromHeap(t: tf.Tensor): Float32Array };
  const heapW = backend.typedArrayFromHeap(w1);
  heapW[17] += 0.5;
  heapW[heapW.length - 1] = -heapW[heapW.length - 1];
  assert.ok(error(conv(w1, false), conv(w1, true)).rel <= 1e-5, 'after an in-place change');
  assert.equal(winogradCalls() - before, 5);
  tf.dispose([x, w1, w2]);
});
