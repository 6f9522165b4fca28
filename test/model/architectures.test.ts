/**
 * Any architecture a config can describe: every example config and every combination of pooling, order,
 * activation and dropout saves in the layers-model format, loads back in convlab and in tf.loadLayersModel
 * with the same predictions, and draws its figures.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../../src/backend.ts';
import { Rng } from '../../src/data/batches.ts';
import { loadMnist, subset } from '../../src/data/mnist.ts';
import type { LabeledImages } from '../../src/data/idx.ts';
import type { Activation, BlockOrder, NetworkConfig, PoolKind } from '../../src/model/config.ts';
import { loadRunConfigFile, resolveRunConfig } from '../../src/model/validate.ts';
import { disposeParams, forward, initParams, type Params } from '../../src/model/cnn.ts';
import { layersModelIOHandler, saveModel } from '../../src/model/checkpoint.ts';
import { loadParams } from '../../src/model/load.ts';
import { visualize } from '../../src/viz/run.ts';
import { colourBars } from '../helpers/datasets.ts';

const examples = fileURLToPath(new URL('../../examples/', import.meta.url));
let dir: string;
let mnistTest: LabeledImages;
let count = 0;

before(async () => {
  await useBackend('wasm');
  dir = await mkdtemp(join(tmpdir(), 'convlab-arch-'));
  mnistTest = subset((await loadMnist()).test, 0, 64);
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Random non-trivial weights (the lesson's init gives near-uniform softmax outputs). */
function randomParams(net: NetworkConfig, seed: number, scale = 4): Params {
  const params = initParams(net, new Rng(seed));
  for (const v of params.values()) v.assign(tf.tidy(() => tf.mul(v, scale)));
  return params;
}

/** Saves, reloads in convlab and in tf.loadLayersModel, and compares probabilities on `x`. */
async function roundTrip(net: NetworkConfig, params: Params, x: tf.Tensor4D): Promise<string> {
  const out = join(dir, `m${count++}`);
  await saveModel(out, net, params, {});
  const want = tf.tidy(() => tf.softmax(forward(net, params, x)));
  const loaded = await loadParams(out);
  const again = tf.tidy(() => tf.softmax(forward(loaded.net, loaded.params, x)));
  const keras = await tf.loadLayersModel(layersModelIOHandler(out));
  const viaLayers = keras.predict(x) as tf.Tensor;
  const diff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
  try {
    assert.deepEqual(loaded.net, net);
    assert.equal(diff(want, again), 0, 'convlab reload differs');
    assert.ok(diff(want, viaLayers) < 1e-5, `tf.loadLayersModel differs by ${diff(want, viaLayers)}`);
    // Not vacuous: the probabilities are far from uniform.
    const spread = tf.tidy(() => tf.sub(tf.max(want), tf.min(want)).dataSync()[0]);
    assert.ok(spread > 0.01, `outputs nearly uniform (${spread})`);
  } finally {
    keras.dispose();
    disposeParams(loaded.params);
    tf.dispose([want, again, viaLayers]);
  }
  return out;
}

test('every example config: layers-model round trip with the same predictions, and every figure drawn', async () => {
  const files = (await readdir(examples)).filter((f) => f.endsWith('.json'));
  const rgb = colourBars(32, 5);
  for (const file of files) {
    const draft = await loadRunConfigFile(join(examples, file));
    // Every example on MNIST; the CIFAR network on colour images as well.
    const sets: [string, LabeledImages][] = [['mnist', mnistTest], ...(file.startsWith('cifar') ? [['rgb', rgb] as [string, LabeledImages]] : [])];
    for (const [name, data] of sets) {
      const run = resolveRunConfig(draft, { ...data, classes: 10, name }, file);
      const params = randomParams(run.network, 7);
      const x = tf.tensor4d(data.images.subarray(0, 8 * data.height * data.width * data.channels), [8, data.height, data.width, data.channels]);
      try {
        const out = await roundTrip(run.network, params, x);
        const result = await visualize({ modelDir: out, data: { test: data }, images: [0, 1] });
        const files = result.figures.map((f) => f.file);
        for (const [i] of run.network.conv.entries()) {
          assert.ok(files.includes(`conv${i + 1}-maps.png`), `${file}: no conv${i + 1}-maps.png`);
          assert.ok(
            files.some((f) => f.startsWith(`conv${i + 1}-weights`)),
            `${file}: no conv${i + 1} weights`,
          );
        }
        for (const f of ['samples.png', 'errors.png', 'confusion.png']) assert.ok(files.includes(f), `${file}: no ${f}`);
        assert.deepEqual(
          result.skipped.map((s) => s.file),
          ['curves.png'],
          `${file}: skipped ${JSON.stringify(result.skipped)}`,
        );
      } finally {
        x.dispose();
        disposeParams(params);
      }
    }
  }
});

test('every pooling × order × activation, conv and dense dropout, non-square RGB input: Keras predicts what convlab does', async () => {
  const pools: PoolKind[] = ['max', 'avg', 'none'];
  const orders: BlockOrder[] = ['pool-then-activation', 'activation-then-pool'];
  const activations: Activation[] = ['relu', 'sigmoid', 'tanh'];
  let seed = 1;
  for (const pool of pools) {
    for (const order of orders) {
      for (const activation of activations) {
        const net: NetworkConfig = {
          input: { height: 11, width: 9, channels: 3 },
          conv: [
            { filters: 4, size: 3, stride: 1, padding: 'same', pool, poolSize: 2, activation, order, dropout: 0.25 },
            { filters: 5, size: 3, stride: 2, padding: 'valid', pool, poolSize: 2, activation, order, dropout: 0 },
          ],
          dense: [
            { units: 7, activation: activation === 'relu' ? 'tanh' : 'relu', dropout: 0.5 },
            { units: 4, activation: pool === 'none' ? 'sigmoid' : 'linear', dropout: 0 },
          ],
          weightStddev: 0.05,
          biasInit: 0.05,
        };
        const params = randomParams(net, seed++, 20);
        const x = tf.randomUniform([5, 11, 9, 3], 0, 1, 'float32', seed) as tf.Tensor4D;
        try {
          await roundTrip(net, params, x);
        } catch (err) {
          throw new Error(`pool ${pool}, ${order}, ${activation}: ${(err as Error).message}`);
        } finally {
          x.dispose();
          disposeParams(params);
        }
      }
    }
  }
});
