/**
 * Saliency math against numerical differences: the input gradient (behind gradient × input) and the
 * Grad-CAM channel weights, on the cpu backend (the reference), for a smooth network (tanh, average
 * pooling: central differences are exact to rounding) and for the lesson's ReLU/max-pool network; then
 * the wasm backend against cpu.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../../src/backend.ts';
import { Rng } from '../../src/data/batches.ts';
import { presets, type NetworkConfig } from '../../src/model/config.ts';
import { disposeParams, initParams, type Params } from '../../src/model/cnn.ts';
import {
  classScore,
  gradCam,
  gradCamWeights,
  gradientTimesInput,
  gradientTimesInputBatch,
  headNetwork,
  inputGradient,
  upsampleBilinear,
} from '../../src/explain/saliency.ts';

const lesson: NetworkConfig = presets.seed.network;
const smooth: NetworkConfig = {
  ...lesson,
  conv: lesson.conv.map((b) => ({ ...b, pool: 'avg', activation: 'tanh', order: 'activation-then-pool' })),
  dense: lesson.dense.map((d, j) => ({ ...d, activation: j === lesson.dense.length - 1 ? 'linear' : 'tanh' })),
};

/** Weights large enough that scores differ between classes (the lesson's init is nearly flat). */
function params(net: NetworkConfig, seed: number, scale = 3): Params {
  const p = initParams(net, new Rng(seed));
  for (const v of p.values()) v.assign(tf.tidy(() => tf.mul(v, scale)));
  return p;
}

function image(net: NetworkConfig, seed: number): Float32Array {
  const rng = new Rng(seed);
  const { height, width, channels } = net.input;
  const x = new Float32Array(height * width * channels);
  for (let i = 0; i < x.length; i++) x[i] = rng.next() < 0.3 ? rng.next() : 0; // sparse ink, like a digit
  return x;
}

/** Central difference of the class score in pixel i. */
function numeric(net: NetworkConfig, p: Params, x: Float32Array, cls: number, i: number, eps: number): number {
  const plus = x.slice(),
    minus = x.slice();
  plus[i] += eps;
  minus[i] -= eps;
  return (classScore(net, p, plus, cls) - classScore(net, p, minus, cls)) / (2 * eps);
}

function pixelsToCheck(n: number, count: number, seed: number): number[] {
  const rng = new Rng(seed);
  return Array.from({ length: count }, () => Math.floor(rng.next() * n));
}

test('input gradient = numerical differences (smooth network, cpu)', async () => {
  await useBackend('cpu');
  const p = params(smooth, 1);
  const x = image(smooth, 2);
  for (const cls of [3, 8]) {
    const g = inputGradient(smooth, p, x, cls);
    const scale = Math.max(...g.map(Math.abs));
    assert.ok(scale > 1e-3, 'the gradient is not trivially zero');
    for (const i of pixelsToCheck(x.length, 16, cls)) {
      const n = numeric(smooth, p, x, cls, i, 1e-2);
      assert.ok(Math.abs(n - g[i]) <= 2e-3 * scale + 1e-4, `class ${cls}, pixel ${i}: autodiff ${g[i]}, numerical ${n}`);
    }
  }
  disposeParams(p);
});

test("input gradient = numerical differences (the lesson's ReLU / max-pool network, cpu)", async () => {
  await useBackend('cpu');
  const p = params(lesson, 3);
  const x = image(lesson, 4);
  const g = inputGradient(lesson, p, x, 5);
  const scale = Math.max(...g.map(Math.abs));
  // piecewise linear: a small step stays on one linear piece except where it crosses a ReLU or max-pool
  // kink (measured: 1 or 2 of 20 pixels at a step of 2e-4), so most pixels, not all, must agree
  let agree = 0;
  const checked = pixelsToCheck(x.length, 20, 7);
  for (const i of checked) if (Math.abs(numeric(lesson, p, x, 5, i, 2e-4) - g[i]) <= 2e-3 * scale + 1e-4) agree++;
  assert.ok(agree >= checked.length - 2, `${agree}/${checked.length} pixels agree`);
  disposeParams(p);
});

test('gradient × input is gradient times pixel, differs between classes, and is zero where there is no ink', async () => {
  await useBackend('cpu');
  const p = params(lesson, 5);
  const x = image(lesson, 6);
  const a = gradientTimesInput(lesson, p, x, 1);
  const b = gradientTimesInput(lesson, p, x, 7);
  const g = inputGradient(lesson, p, x, 1);
  assert.equal(a.values.length, 28 * 28);
  for (let i = 0; i < x.length; i++) {
    assert.ok(Math.abs(a.values[i] - g[i] * x[i]) < 1e-6);
    if (x[i] === 0) assert.equal(a.values[i], 0);
  }
  let diff = 0;
  for (let i = 0; i < x.length; i++) diff += Math.abs(a.values[i] - b.values[i]);
  assert.ok(diff > 1e-3, 'two classes, two maps');
  assert.throws(() => gradientTimesInput(lesson, p, x, 10), /class must be an integer in 0\.\.9/);
  disposeParams(p);
});

test('Grad-CAM weights = numerical differences through the head of the network (cpu)', async () => {
  await useBackend('cpu');
  for (const net of [smooth, lesson]) {
    const p = params(net, 8);
    const x = image(net, 9);
    const cls = 4;
    const { shape, maps, alpha } = gradCamWeights(net, p, x, cls);
    assert.deepEqual(shape, [7, 7, 36]);
    const head = headNetwork(net, shape);
    const eps = net === smooth ? 1e-2 : 1e-3;
    const scale = Math.max(...alpha.map(Math.abs));
    for (let k = 0; k < shape[2]; k += 5) {
      // α_k = mean of ∂score/∂A_k = (1/(h'w')) · d/dt score(A + t·1_k)
      const plus = maps.slice(),
        minus = maps.slice();
      for (let i = k; i < maps.length; i += shape[2]) {
        plus[i] += eps;
        minus[i] -= eps;
      }
      const n = (classScore(head, p, plus, cls) - classScore(head, p, minus, cls)) / (2 * eps) / (shape[0] * shape[1]);
      assert.ok(Math.abs(n - alpha[k]) <= 5e-3 * scale + 1e-5, `${net === smooth ? 'smooth' : 'lesson'} map ${k}: autodiff ${alpha[k]}, numerical ${n}`);
    }
    const cam = gradCam(net, p, x, cls);
    assert.equal(cam.values.length, 28 * 28);
    assert.ok(
      cam.values.every((v) => v >= 0),
      'Grad-CAM is a ReLU of the weighted maps',
    );
    disposeParams(p);
  }
});

test('bilinear upsampling keeps constants and the mean of a ramp', () => {
  const flat = upsampleBilinear(new Float32Array(49).fill(2), 7, 7, 28, 28);
  assert.ok(flat.every((v) => Math.abs(v - 2) < 1e-6));
  const ramp = upsampleBilinear(
    Float32Array.from({ length: 4 }, (_, i) => i % 2),
    2,
    2,
    4,
    4,
  );
  assert.deepEqual(Array.from(ramp.slice(0, 4)), [0, 0.25, 0.75, 1]);
});

test('wasm computes the same saliency as cpu', async () => {
  await useBackend('cpu');
  const p = params(lesson, 10);
  const x = image(lesson, 11);
  const cpuGi = gradientTimesInput(lesson, p, x, 2).values;
  const cpuCam = gradCam(lesson, p, x, 2).values;
  const values = new Map([...p].map(([k, v]) => [k, v.dataSync().slice()]));
  disposeParams(p);
  await useBackend('wasm');
  const q: Params = new Map([...values].map(([k, v]) => [k, tf.variable(tf.tensor(v, initParams(lesson, new Rng(1)).get(k)!.shape))]));
  const before = tf.memory().numTensors;
  const wasmGi = gradientTimesInput(lesson, q, x, 2).values;
  const wasmCam = gradCam(lesson, q, x, 2).values;
  assert.equal(tf.memory().numTensors, before, 'saliency frees its tensors');
  const maxDiff = (a: Float32Array, b: Float32Array) => Math.max(...a.map((v, i) => Math.abs(v - b[i])));
  const peak = (a: Float32Array) => Math.max(...a.map(Math.abs));
  assert.ok(maxDiff(cpuGi, wasmGi) <= 1e-4 * peak(cpuGi) + 1e-6, `gradient × input differs by ${maxDiff(cpuGi, wasmGi)}`);
  assert.ok(maxDiff(cpuCam, wasmCam) <= 1e-4 * peak(cpuCam) + 1e-6, `Grad-CAM differs by ${maxDiff(cpuCam, wasmCam)}`);
  disposeParams(q);
});

test('gradient × input over a batch, each image for its own class, equals one image at a time (wasm and cpu)', async () => {
  for (const backend of ['wasm', 'cpu'] as const) {
    await useBackend(backend);
    const p = params(lesson, 4);
    const count = 5;
    const images = new Float32Array(count * 784);
    for (let i = 0; i < count; i++) images.set(image(lesson, 10 + i), i * 784);
    const classes = [3, 3, 0, 9, 7];
    const before = tf.memory().numTensors;
    const maps = gradientTimesInputBatch(lesson, p, images, classes, 2); // batches of 2, 2 and 1
    assert.equal(tf.memory().numTensors, before, 'no tensor left behind');
    assert.equal(maps.length, count);
    for (let i = 0; i < count; i++) {
      const one = gradientTimesInput(lesson, p, images.subarray(i * 784, (i + 1) * 784), classes[i]).values;
      const scale = Math.max(...one.map(Math.abs));
      assert.ok(scale > 1e-3);
      const worst = Math.max(...maps[i].map((v, j) => Math.abs(v - one[j])));
      assert.ok(worst <= 1e-5 * scale, `${backend}, image ${i}: batched and single differ by ${worst} (scale ${scale})`);
    }
    assert.throws(() => gradientTimesInputBatch(lesson, p, images, [1, 2]), /expected 2 images/);
    disposeParams(p);
  }
});
