/**
 * The generated direct convolution kernels (src/kernels/conv-direct.ts) against the cpu backend's reference
 * kernels and against XNNPACK, over random shapes chosen to hit every block edge: output widths that are not
 * a multiple of the block's pixels, channel counts that are not a multiple of 4 (or of a group), one input
 * channel, filters larger than the image, batch sizes from 1 up, SAME, VALID and explicit padding.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import wabtInit from 'wabt';
import { useBackend } from '../../src/backend.ts';
import { type ConvShape, directConvCalls, forwardModule, planGroups } from '../../src/kernels/conv-direct.ts';
import { directFilterCalls, filterModule, planFilterBlock } from '../../src/kernels/conv-filter-direct.ts';
import { IM2COL_MAX_TAPS, allowDirectConv, allowWinograd } from '../../src/kernels/wasm.ts';
import { xorshift } from '../helpers/xorshift.ts';

// This file tests the direct kernel on every shape, also those that otherwise take Winograd (winograd.test.ts).
allowWinograd(false);

// the same shapes and values on every run
const { int, random } = xorshift(0x2545f491);
const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

type Padding = 'same' | 'valid' | [[0, 0], [number, number], [number, number], [0, 0]];

interface Case {
  x: [number, number, number, number];
  w: [number, number, number, number];
  pad: Padding;
}

const fixed: Case[] = [
  { x: [5, 14, 14, 16], w: [5, 5, 16, 36], pad: 'same' }, // conv2 of the lesson
  { x: [3, 28, 28, 1], w: [5, 5, 1, 16], pad: 'same' }, // conv1
  { x: [2, 14, 14, 36], w: [5, 5, 36, 16], pad: 'same' }, // conv2's input gradient as a forward conv
  { x: [2, 16, 16, 64], w: [5, 5, 64, 64], pad: 'same' }, // the CIFAR-10 lesson's conv2 (j loop, not unrolled)
  { x: [1, 7, 7, 36], w: [3, 3, 36, 64], pad: 'same' }, // extra-layers' third conv
  { x: [2, 4, 4, 3], w: [5, 5, 3, 2], pad: 'same' }, // filter larger than the image
  { x: [2, 9, 8, 3], w: [2, 2, 3, 5], pad: 'same' }, // even filter: asymmetric SAME padding
  {
    x: [1, 6, 6, 2],
    w: [3, 3, 2, 3],
    pad: [
      [0, 0],
      [2, 0],
      [1, 2],
      [0, 0],
    ],
  }, // explicit, uneven padding
  { x: [1, 1, 13, 1], w: [1, 1, 1, 1], pad: 'valid' }, // one row, one channel, 1x1
];

const randomCases: Case[] = Array.from({ length: 30 }, () => {
  const kh = int(1, 5);
  const kw = int(1, 5);
  // explicit padding up to the filter size − 1 (more would need a crop in the input gradient)
  const pads: Padding[] = [
    'same',
    'valid',
    [
      [0, 0],
      [int(0, kh - 1), int(0, kh - 1)],
      [int(0, kw - 1), int(0, kw - 1)],
      [0, 0],
    ],
  ];
  const pad = pads[int(0, 2)];
  // no empty outputs (the stock wasm kernels fail on those, with or without convlab's)
  const minH = pad === 'same' ? 1 : Math.max(1, kh - (pad === 'valid' ? 0 : pad[1][0] + pad[1][1]));
  const minW = pad === 'same' ? 1 : Math.max(1, kw - (pad === 'valid' ? 0 : pad[2][0] + pad[2][1]));
  return { x: [int(1, 5), int(minH, 17), int(minW, 17), int(1, 20)], w: [kh, kw, 0, int(1, 40)], pad } as Case;
}).map((c) => ({ ...c, w: [c.w[0], c.w[1], c.x[3], c.w[3]] as Case['w'] }));

async function on(backend: 'cpu' | 'wasm', f: () => tf.Tensor[]): Promise<Float32Array[]> {
  await useBackend(backend);
  const outs = tf.tidy(f);
  const values = outs.map((t) => t.dataSync() as Float32Array);
  tf.dispose(outs);
  return values;
}

function assertClose(name: string, ref: Float32Array, got: Float32Array, tol: number): void {
  assert.equal(got.length, ref.length, `${name}: length`);
  let scale = 1;
  let d = 0;
  for (let i = 0; i < ref.length; i++) {
    scale = Math.max(scale, Math.abs(ref[i]));
    d = Math.max(d, Math.abs(ref[i] - got[i]));
  }
  assert.ok(d <= tol * scale, `${name}: differs by ${d} (scale ${scale})`);
}

for (const c of [...fixed, ...randomCases]) {
  const label = `direct conv x${c.x.join('x')} w${c.w.join('x')} pad ${JSON.stringify(c.pad)}`;
  test(`${label}: forward, input and filter gradients match cpu and XNNPACK; the generated kernels ran`, async () => {
    const xs = random(size(c.x));
    const ws = random(size(c.w), 0.3);
    const probe = tf.tidy(() => tf.conv2d(tf.zeros(c.x) as tf.Tensor4D, tf.zeros(c.w) as tf.Tensor4D, 1, c.pad).shape);
    const rs = random(size(probe));
    const f = () => {
      const x = tf.tensor4d(xs, c.x);
      const w = tf.tensor4d(ws, c.w);
      const r = tf.tensor(rs, probe);
      const [dx, dw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, c.pad), r)))([x, w]);
      return [tf.conv2d(x, w, 1, c.pad), dx, dw];
    };
    const cpu = await on('cpu', f);
    const before = directConvCalls();
    const filterBefore = directFilterCalls();
    const direct = await on('wasm', f);
    assert.equal(directConvCalls() - before, 3, 'both forward convs and the input gradient took the generated kernel');
    // filters with few taps (kh·kw·cin ≤ 64) keep their im2col / one-channel paths
    const filterDirect = c.w[0] * c.w[1] * c.w[2] > IM2COL_MAX_TAPS ? 1 : 0;
    assert.equal(directFilterCalls() - filterBefore, filterDirect, 'the filter gradient took the generated kernel');
    allowDirectConv(false);
    let xnnpack: Float32Array[];
    try {
      xnnpack = await on('wasm', f);
    } finally {
      allowDirectConv(true);
    }
    assert.equal(directConvCalls() - before, 3, 'turned off, the generated kernel is not used');
    assert.equal(directFilterCalls() - filterBefore, filterDirect, 'turned off, the generated filter kernel is not used');
    cpu.forEach((ref, i) => {
      // the filter gradient sums over every pixel of the batch: float32 round-off grows with the count
      const tol = i === 2 ? 1e-4 : 1e-5;
      assertClose(`${label} output ${i} vs cpu`, ref, direct[i], tol);
      assertClose(`${label} output ${i} vs XNNPACK`, xnnpack[i], direct[i], tol);
    });
  });
}

test('strided and dilated convolutions are not taken by the generated kernel (XNNPACK), and still match cpu', async () => {
  const xs = random(2 * 9 * 9 * 3);
  const ws = random(3 * 3 * 3 * 4, 0.3);
  for (const [stride, dilation] of [
    [2, 1],
    [1, 2],
  ]) {
    const f = () => [tf.conv2d(tf.tensor4d(xs, [2, 9, 9, 3]), tf.tensor4d(ws, [3, 3, 3, 4]), stride, 'same', 'NHWC', dilation)];
    const [cpu] = await on('cpu', f);
    const before = directConvCalls();
    const [wasm] = await on('wasm', f);
    assert.equal(directConvCalls(), before);
    assertClose(`stride ${stride} dilation ${dilation}`, cpu, wasm, 1e-5);
  }
});

test('the block plan covers every output vector once and keeps within the register budget', () => {
  for (let q = 1; q <= 24; q++) {
    for (const wo of [1, 2, 3, 5, 7, 14, 28]) {
      const groups = planGroups(q, wo);
      let o = 0;
      for (const g of groups) {
        assert.equal(g.o0, o);
        assert.ok(g.v >= 1 && g.v <= 4 && g.r >= 1 && g.r <= wo, JSON.stringify(g));
        assert.ok(g.r * g.v + g.v + 1 <= 14, `q ${q} wo ${wo}: block ${g.r}x${g.v} spills`);
        o += 4 * g.v;
      }
      assert.equal(o, 4 * q);
    }
  }
  // conv2 of the lesson (36 channels, 14 wide): no group of one vector computed pixel by pixel.
  assert.ok(
    planGroups(9, 14).every((g) => g.r * g.v >= 6),
    JSON.stringify(planGroups(9, 14)),
  );
});

test('a generated module is valid WebAssembly that a third-party reader (wabt) accepts', async () => {
  const wabt = await wabtInit();
  const shape: ConvShape = { hp: 18, wp: 18, cin: 16, kh: 5, kw: 5, ho: 14, wo: 14, coutp: 36 };
  for (const relaxed of [false, true]) {
    const bytes = forwardModule(shape, planGroups(9, 14), relaxed);
    const module = wabt.readWasm(bytes, { simd: true, relaxed_simd: relaxed } as never);
    module.validate();
    const text = module.toText({});
    module.destroy();
    assert.match(text, /\(import "env" "memory" \(memory .*1\)\)/);
    assert.match(text, /\(export "conv" \(func/);
    assert.match(text, relaxed ? /f32x4\.relaxed_madd/ : /f32x4\.mul/);
    assert.ok(WebAssembly.validate(bytes) || relaxed, 'plain SIMD validates');
  }
});

test('the filter-gradient block fits the registers; its module is valid for wabt too', async () => {
  for (let cin = 1; cin <= 70; cin += 3) {
    for (const q of [1, 2, 3, 4, 9, 16]) {
      const { u, v } = planFilterBlock(cin, q);
      assert.ok(u >= 1 && u <= cin && v >= 1 && v <= q && u * v + v + 1 <= 14, `cin ${cin} q ${q}: ${u}x${v}`);
    }
  }
  const wabt = await wabtInit();
  const bytes = filterModule({ hp: 18, wp: 18, cin: 16, kh: 5, kw: 5, ho: 14, wo: 14, coutp: 36 }, planFilterBlock(16, 9));
  assert.ok(WebAssembly.validate(bytes));
  const module = wabt.readWasm(bytes, { simd: true } as never);
  module.validate();
  assert.match(module.toText({}), /\(export "grad" \(func/);
  module.destroy();
});
