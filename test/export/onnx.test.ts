/**
 * The ONNX export, proven by runtimes no one here wrote. For the seed network, every config in examples/
 * and a few extra configs that cover what the examples do not (average pooling over odd map sizes, 'valid'
 * padding, strides with asymmetric SAME padding, pool windows of 3, sigmoid/tanh, activation before pooling,
 * dropout, a non-square RGB input, no conv block at all): train a few Adam steps so the outputs are not
 * uniform, export in both layouts, run the file in ONNX Runtime on the whole MNIST test set (or a
 * generated RGB set), and require the same class as convlab for every image and probabilities within 1e-4.
 * Every file then goes through the ONNX checker (full_check) — required when CI=true.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../../src/backend.ts';
import { Rng } from '../../src/data/batches.ts';
import { loadMnist } from '../../src/data/mnist.ts';
import type { LabeledImages } from '../../src/data/idx.ts';
import { toFloats } from '../../src/data/images.ts';
import { presets, type NetworkConfig } from '../../src/model/config.ts';
import { disposeParams, forward, initParams, loss, predictProbabilities, type Params } from '../../src/model/cnn.ts';
import { checkShapes, draftFromRun, loadRunConfigFile, resolveRunConfig, type DataShape } from '../../src/model/validate.ts';
import { onnxFromTensors } from '../../src/export/file.ts';
import { onnxLayouts, type OnnxLayout } from '../../src/export/onnx.ts';
import { argmaxRow, checkWithOnnx, onnxPython, ortProbabilities, session } from './runtime.ts';

const examples = fileURLToPath(new URL('../../examples/', import.meta.url));
const TOLERANCE = 1e-4;
const STEPS = 12;
const BATCH = 500;

let dir: string;
let mnist: { train: LabeledImages; test: LabeledImages };
/** Every file the first test wrote, with the input dims it must declare. */
const exported: { file: string; dims: (string | number)[] }[] = [];

/**
 * A generated RGB data set: class k is a colour (a point on the hue circle) with a gradient whose
 * direction depends on k, plus per-pixel noise; values in [0,1]. Learnable in a few steps, never uniform.
 */
function rgbSet(count: number, height: number, width: number, classes: number, seed: number): LabeledImages {
  const rng = new Rng(seed);
  const images = new Float32Array(count * height * width * 3);
  const labels = new Uint8Array(count);
  for (let n = 0; n < count; n++) {
    const k = Math.floor(rng.next() * classes) % classes;
    labels[n] = k;
    const hue = (2 * Math.PI * k) / classes;
    const angle = hue + rng.next() * 0.8;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const ramp = 0.5 + 0.5 * ((Math.cos(angle) * (x - width / 2)) / width + (Math.sin(angle) * (y - height / 2)) / height);
        for (let c = 0; c < 3; c++) {
          const colour = 0.5 + 0.4 * Math.cos(hue + (2 * Math.PI * c) / 3);
          const v = 0.6 * colour * ramp + 0.4 * rng.next();
          images[((n * height + y) * width + x) * 3 + c] = Math.min(1, Math.max(0, v));
        }
      }
    }
  }
  return { images, labels, count, height, width, channels: 3 };
}

interface Case {
  name: string;
  net: NetworkConfig;
  train: LabeledImages;
  test: LabeledImages;
}

const shapeOf = (d: LabeledImages, classes: number, name: string): DataShape => ({ height: d.height, width: d.width, channels: d.channels, classes, name });

/**
 * A few Adam steps (tf.train.adam, 3e-3) on `data`, so the exported weights are not the initial ones: rounds
 * of STEPS steps until convlab tells at least 3 classes apart on the first test images (at most 6 rounds;
 * sigmoid and average-pooled networks start slowly).
 */
function trainBriefly(net: NetworkConfig, data: LabeledImages, probe: LabeledImages, seed: number): Params {
  const params = initParams(net, new Rng(seed));
  const optimizer = tf.train.adam(3e-3);
  const rng = new Rng(seed + 1);
  const size = data.height * data.width * data.channels;
  const k = net.dense[net.dense.length - 1].units;
  const batch = 64;
  for (let round = 0; round < 6; round++) {
    for (let step = 0; step < STEPS; step++) {
      const start = Math.floor(rng.next() * (data.count - batch));
      tf.tidy(() => {
        const x = tf.tensor4d(data.images.subarray(start * size, (start + batch) * size), [batch, data.height, data.width, data.channels]);
        const y = tf.tensor1d(data.labels.subarray(start, start + batch), 'int32');
        optimizer.minimize(() => loss(forward(net, params, x), y), false, [...params.values()]);
      });
    }
    const p = convlabProbabilities(net, params, { ...probe, count: 256 });
    const classes = new Set(Array.from({ length: 256 }, (_, n) => argmaxRow(p, n, k)));
    if (classes.size >= 3) break;
  }
  optimizer.dispose();
  return params;
}

/** convlab's own probabilities (the wasm backend, as `convlab predict` and the server compute them). */
function convlabProbabilities(net: NetworkConfig, params: Params, data: LabeledImages): Float32Array {
  const size = data.height * data.width * data.channels;
  const k = net.dense[net.dense.length - 1].units;
  const out = new Float32Array(data.count * k);
  for (let start = 0; start < data.count; start += BATCH) {
    const n = Math.min(BATCH, data.count - start);
    const p = tf.tidy(() =>
      predictProbabilities(net, params, tf.tensor4d(data.images.subarray(start * size, (start + n) * size), [n, data.height, data.width, data.channels])),
    );
    out.set(p.dataSync(), start * k);
    p.dispose();
  }
  return out;
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'convlab-onnx-'));
  await useBackend('wasm');
  const m = await loadMnist();
  mnist = { train: toFloats(m.train), test: m.test };
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function cases(): Promise<Case[]> {
  const mnistShape = shapeOf(mnist.test, 10, 'mnist');
  const rgb32 = { train: rgbSet(2000, 32, 32, 10, 11), test: rgbSet(2000, 32, 32, 10, 12) };
  const rgbOdd = { train: rgbSet(2000, 20, 24, 5, 13), test: rgbSet(2000, 20, 24, 5, 14) };
  const list: Case[] = [{ name: 'seed preset', net: presets.seed.network, ...mnist }];

  for (const file of readdirSync(examples)
    .filter((f) => f.endsWith('.json'))
    .sort()) {
    const draft = await loadRunConfigFile(join(examples, file));
    // cifar10-lesson.json is for 32x32 RGB: give it the generated RGB set of that shape
    const rgb = file.startsWith('cifar10');
    const data = rgb ? rgb32 : mnist;
    const run = resolveRunConfig(draft, rgb ? shapeOf(rgb32.test, 10, 'rgb') : mnistShape, file);
    list.push({ name: `examples/${file}`, net: run.network, ...data });
  }

  const block = presets.seed.network.conv[0];
  const extra = (
    name: string,
    net: Omit<NetworkConfig, 'input' | 'weightStddev' | 'biasInit'>,
    data: { train: LabeledImages; test: LabeledImages },
    classes: number,
  ): void => {
    const draft = draftFromRun({ network: { ...presets.seed.network, ...net }, train: presets.seed.train });
    const run = resolveRunConfig(draft, shapeOf(data.test, classes, name), name);
    checkShapes(run.network, name);
    list.push({ name, net: run.network, ...data });
  };
  // 28 -valid 4→ 25 -avg 2 (pad 0,1)→ 13 -same 3 stride 2 (pad 1,1)→ 7 -avg 2 (pad 0,1)→ 4
  extra(
    'extra: avg pooling over odd maps, valid padding, tanh/sigmoid, dropout',
    {
      conv: [
        { ...block, filters: 8, size: 4, padding: 'valid', pool: 'avg', poolSize: 2, activation: 'tanh', order: 'activation-then-pool', dropout: 0.2 },
        { ...block, filters: 12, size: 3, stride: 2, pool: 'avg', poolSize: 2, activation: 'sigmoid' },
      ],
      dense: [
        { units: 32, activation: 'tanh', dropout: 0.3 },
        { units: 10, activation: 'linear', dropout: 0 },
      ],
    },
    mnist,
    10,
  );
  // 28 -same 4 stride 3 (pad 1,2)→ 10 -max 3 (pad 1,1)→ 4 -valid 2→ 3
  extra(
    'extra: asymmetric SAME padding (stride 3), max pool 3, pool after relu, sigmoid logits',
    {
      conv: [
        { ...block, filters: 10, size: 4, stride: 3, pool: 'max', poolSize: 3, order: 'activation-then-pool' },
        { ...block, filters: 6, size: 2, padding: 'valid', pool: 'none', activation: 'tanh' },
      ],
      dense: [
        { units: 20, activation: 'relu', dropout: 0 },
        { units: 10, activation: 'sigmoid', dropout: 0 },
      ],
    },
    mnist,
    10,
  );
  // 20x24x3 -same 3→ 20x24 -max 2→ 10x12 -valid 5→ 6x8 -avg 3 (pad 0,0 / 0,1)→ 2x3
  extra(
    'extra: non-square RGB 20x24x3, avg pool 3 after tanh',
    {
      conv: [
        { ...block, filters: 6, size: 3 },
        { ...block, filters: 8, size: 5, padding: 'valid', pool: 'avg', poolSize: 3, activation: 'tanh', order: 'activation-then-pool' },
      ],
      dense: [
        { units: 12, activation: 'relu', dropout: 0 },
        { units: 5, activation: 'linear', dropout: 0 },
      ],
    },
    rgbOdd,
    5,
  );
  extra('extra: no conv block (RGB pixels straight into the dense layers)', { conv: [], dense: [{ units: 5, activation: 'linear', dropout: 0 }] }, rgbOdd, 5);
  // CONVLAB_ONNX_CASE=text runs only the cases whose name contains it (while working on the exporter)
  const only = process.env.CONVLAB_ONNX_CASE;
  return only ? list.filter((c) => c.name.includes(only)) : list;
}

describe('ONNX Runtime predicts what convlab predicts', async () => {
  test('every config, both layouts, the whole test set', async (t) => {
    const all = await cases();
    if (!process.env.CONVLAB_ONNX_CASE) assert.ok(all.length >= 16, `expected the seed network, ${readdirSync(examples).length} example files and the extras`);
    for (const [index, c] of all.entries()) {
      const params = trainBriefly(c.net, c.train, c.test, 100 + index);
      try {
        const k = c.net.dense[c.net.dense.length - 1].units;
        const expected = convlabProbabilities(c.net, params, c.test);
        const classes = new Set<number>();
        for (let n = 0; n < c.test.count; n++) classes.add(argmaxRow(expected, n, k));
        // a network predicting one class for everything would make "the same class" a weak claim
        assert.ok(classes.size >= 2, `${c.name}: convlab predicts only class ${[...classes]} after training`);

        for (const layout of onnxLayouts) {
          const bytes = onnxFromTensors(c.net, params, { train: presets.seed.train, dataset: 'test' }, layout as OnnxLayout);
          const file = join(dir, `${String(index).padStart(2, '0')}-${layout}.onnx`);
          await writeFile(file, bytes);
          const { height, width, channels } = c.net.input;
          exported.push({ file, dims: ['N', ...(layout === 'nchw' ? [channels, height, width] : [height, width, channels])] });
          const s = await session(bytes);
          let maxDiff = 0;
          let mismatches = 0;
          const size = c.test.height * c.test.width * c.test.channels;
          // batches of 500 and a last one of 7 images: the batch dimension is dynamic
          for (let start = 0; start < c.test.count; ) {
            const n = Math.min(start === 0 ? 7 : BATCH, c.test.count - start);
            const got = await ortProbabilities(s, c.test.images.subarray(start * size, (start + n) * size), n, c.test, layout);
            assert.equal(got.probabilities.length, n * k);
            for (let i = 0; i < n; i++) {
              const row = start + i;
              if (argmaxRow(got.probabilities, i, k) !== argmaxRow(expected, row, k)) mismatches += 1;
              for (let j = 0; j < k; j++) maxDiff = Math.max(maxDiff, Math.abs(got.probabilities[i * k + j] - expected[row * k + j]));
            }
            start += n;
          }
          await s.release();
          t.diagnostic(
            `${c.name} [${layout}]: ${c.test.count} images, ${classes.size} classes predicted, max |Δp| ${maxDiff.toExponential(2)}, ${mismatches} different classes`,
          );
          assert.equal(mismatches, 0, `${c.name} [${layout}]: ONNX Runtime's class differs from convlab's for ${mismatches} of ${c.test.count} images`);
          assert.ok(maxDiff <= TOLERANCE, `${c.name} [${layout}]: probabilities differ by up to ${maxDiff} (> ${TOLERANCE})`);
        }
      } finally {
        disposeParams(params);
      }
    }
  });

  test('the ONNX checker (full_check) accepts every exported file', (t) => {
    assert.ok(exported.length > 0, 'expected the files of the test above');
    const python = onnxPython();
    if (python === undefined) {
      const message = 'no Python with the onnx package (apt-get install python3-onnx, or set ONNX_PYTHON)';
      if (process.env.CI === 'true') assert.fail(`${message}: required when CI=true`);
      t.skip(message);
      return;
    }
    const results = checkWithOnnx(
      python,
      exported.map((e) => e.file),
    );
    assert.equal(results.length, exported.length);
    results.forEach((r, i) => {
      assert.ok(r.opset >= 13, `${r.file}: opset ${r.opset}`);
      assert.deepEqual(r.inputDims, exported[i].dims, `${r.file}: input dims as the onnx package reads them`);
    });
    t.diagnostic(`onnx.checker.check_model(full_check=True) passed for ${results.length} files`);
  });
});
