/** Data-parallel training on worker threads: same answer as one thread, deterministic for a fixed N. */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../../src/backend.ts';
import { Rng } from '../../src/data/batches.ts';
import { loadMnist, subset, type MnistSplits } from '../../src/data/mnist.ts';
import { imageFloats } from '../../src/data/images.ts';
import { presets, type RunConfig } from '../../src/model/config.ts';
import { disposeParams, initParams } from '../../src/model/cnn.ts';
import { evaluate, flattenParams, train } from '../../src/train/loop.ts';
import { GradientPool } from '../../src/train/parallel.ts';
import { assertSameTraining } from '../helpers/weights.ts';

let mnist: MnistSplits;
const run: RunConfig = {
  network: presets.seed.network,
  train: { ...presets.seed.train, iterations: 10, optimizer: { ...presets.seed.train.optimizer, learningRate: 1e-3 }, seed: 11, logEvery: 5, validateEvery: 0 },
};

before(async () => {
  await useBackend('wasm');
  mnist = await loadMnist();
});

async function trainWith(workers: number) {
  const params = initParams(run.network, new Rng(run.train.seed));
  const pool = workers > 0 ? await GradientPool.start(run.network, workers, 'wasm') : undefined;
  const tensors: number[] = [];
  try {
    const r = await train(
      run,
      params,
      { train: subset(mnist.train, 0, 1280), validation: subset(mnist.validation, 0, 200) },
      {
        onStep: () => tensors.push(tf.memory().numTensors),
      },
      { pool },
    );
    return { weights: flattenParams(run.network, params), losses: r.history.map((h) => h.loss), tensors };
  } finally {
    await pool?.close();
    disposeParams(params);
  }
}

test('1 worker, 2 workers, 3 workers and no workers train to the same weights within float tolerance', async () => {
  const local = await trainWith(0);
  const init = initParams(run.network, new Rng(run.train.seed));
  const start = flattenParams(run.network, init);
  disposeParams(init);
  for (const n of [1, 2, 3]) assertSameTraining(local, await trainWith(n), start, `${n} workers vs this thread`);
});

test('a fixed number of workers is deterministic, and the main thread keeps a flat tensor count', async () => {
  const a = await trainWith(2);
  const b = await trainWith(2);
  assert.deepEqual(Buffer.from(a.weights.buffer), Buffer.from(b.weights.buffer));
  assert.deepEqual(a.losses, b.losses);
  assert.deepEqual(new Set(a.tensors.slice(1)), new Set([a.tensors[1]]));
});

test('a worker error surfaces as an error, not a hang, and the pool refuses to go on', async () => {
  const pool = await GradientPool.start(run.network, 2, 'wasm');
  try {
    await assert.rejects(pool.step(new Float32Array(4 * 784), new Uint8Array(4), 1e-3), /no optimizer/);
    await pool.useOptimizer(run.train.optimizer);
    // 100 pixels per image cannot be reshaped to 28x28x1: both workers fail, and neither updates its shard.
    const before = pool.readWeights();
    await assert.rejects(pool.step(new Float32Array(4 * 100), new Uint8Array(4), 1e-3), /training worker failed/);
    assert.deepEqual(pool.readWeights(), before);
    await assert.rejects(pool.step(new Float32Array(4 * 784), new Uint8Array(4), 1e-3), /training worker failed/);
  } finally {
    await pool.close();
  }
});

test('closing the pool in the middle of a step ends the step with an error, not a hang', async () => {
  const pool = await GradientPool.start(run.network, 2, 'wasm');
  await pool.useOptimizer(run.train.optimizer);
  const batch = subset(mnist.train, 0, 64);
  const step = pool.step(imageFloats(batch), batch.labels, 1e-3);
  await new Promise((r) => setTimeout(r, 5));
  await pool.close();
  await assert.rejects(step, /worker/);
});

test('predicting on the workers gives the same classes as predicting in this thread', async () => {
  const params = initParams(run.network, new Rng(4));
  const pool = await GradientPool.start(run.network, 2, 'wasm');
  try {
    const data = subset(mnist.test, 0, 301); // an odd count: uneven slices
    pool.publish(flattenParams(run.network, params));
    const classes = await pool.predict(data.images, data.count);
    assert.deepEqual(Array.from(classes), Array.from(evaluate(run.network, params, data).predictions));
  } finally {
    await pool.close();
    disposeParams(params);
  }
});

test('classifying the whole test split on the workers keeps the process under 1 GB resident (the wasm heap never shrinks)', async () => {
  const params = initParams(run.network, new Rng(5));
  const pool = await GradientPool.start(run.network, 2, 'wasm');
  try {
    pool.publish(flattenParams(run.network, params));
    const classes = await pool.predict(mnist.test.images, mnist.test.count);
    assert.equal(classes.length, 10_000);
    const rss = process.memoryUsage().rss / 2 ** 20;
    assert.ok(rss < 1024, `resident ${rss.toFixed(0)} MiB after classifying 10,000 images on 2 workers`);
  } finally {
    await pool.close();
    disposeParams(params);
  }
});
