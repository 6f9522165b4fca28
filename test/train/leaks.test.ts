/**
 * Leaks beyond the tensor count. convlab's own wasm kernels allocate intermediate results as backend data
 * (not tensors) and must free them; the default path trains on worker threads, each with its own
 * TensorFlow.js. So, over many steps, in this thread and in every worker: live tensors, the backend's data
 * ids and the wasm heap's size must stay where they were after the first few steps (the heap grows to the
 * largest step's needs and never shrinks, so a leak shows as growth).
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { useBackend } from '../../src/backend.ts';
import { BatchSampler, Rng } from '../../src/data/batches.ts';
import { loadMnist, subset, type MnistSplits } from '../../src/data/mnist.ts';
import { presets, type RunConfig } from '../../src/model/config.ts';
import { disposeParams, initParams } from '../../src/model/cnn.ts';
import { evaluate, flattenParams, train } from '../../src/train/loop.ts';
import { GradientPool } from '../../src/train/parallel.ts';

let mnist: MnistSplits;

before(async () => {
  await useBackend('wasm');
  mnist = await loadMnist();
});

/** This thread's live tensors, backend data ids and wasm heap size. */
function memory() {
  const backend = tf.backend() as BackendWasm;
  return { tensors: tf.memory().numTensors, dataIds: backend.numDataIds(), heapBytes: (backend.wasm as unknown as { HEAPU8: Uint8Array }).HEAPU8.byteLength };
}

/** The lesson's network with dropout (masks are tensors too), Adam, 40 steps of 64. */
const net = presets.seed.network;
const run: RunConfig = {
  network: { ...net, dense: [{ ...net.dense[0], dropout: 0.5 }, net.dense[1]] },
  train: {
    ...presets.seed.train,
    iterations: 40,
    optimizer: { ...presets.seed.train.optimizer, learningRate: 1e-3 },
    seed: 3,
    logEvery: 10,
    validateEvery: 10,
  },
};
const WARM = 3;

test('training in this thread: tensors, backend data ids and the wasm heap stay flat over 40 steps and 4 validations', async () => {
  const params = initParams(run.network, new Rng(run.train.seed));
  const seen: ReturnType<typeof memory>[] = [];
  try {
    await train(run, params, { train: subset(mnist.train, 0, 2560), validation: subset(mnist.validation, 0, 500) }, { onStep: () => seen.push(memory()) });
  } finally {
    disposeParams(params);
  }
  assert.equal(seen.length, 40);
  // The first validation (batches of 500) grows the heap to its largest; from then on nothing may grow.
  const warm = run.train.validateEvery;
  for (const [i, m] of seen.entries()) {
    if (i < warm) continue;
    assert.deepEqual(m, seen[warm], `after step ${i + 1}: ${JSON.stringify(m)} vs ${JSON.stringify(seen[warm])} after step ${warm + 1}`);
  }
});

test('classifying in this thread 20 times: data ids and heap stay flat', () => {
  const params = initParams(net, new Rng(4));
  const data = subset(mnist.test, 0, 700); // a full batch of 500 and a short one
  try {
    evaluate(net, params, data);
    const first = memory();
    for (let i = 0; i < 20; i++) evaluate(net, params, data);
    assert.deepEqual(memory(), first);
  } finally {
    disposeParams(params);
  }
});

test("on 2 workers: each worker's tensors, data ids and heap stay flat over 40 steps and 20 predictions", async () => {
  const pool = await GradientPool.start(run.network, 2, 'wasm');
  const params = initParams(run.network, new Rng(run.train.seed));
  try {
    const data = subset(mnist.train, 0, 2560);
    pool.publish(flattenParams(run.network, params));
    await pool.useOptimizer(run.train.optimizer);
    const sampler = new BatchSampler(data, 64, new Rng(5));
    const { drawDropoutMasks } = await import('../../src/train/dropout.ts');
    const step = async (i: number) => {
      const batch = sampler.next();
      await pool.step(batch.images, batch.labels, 1e-3, drawDropoutMasks(run.network, batch.labels.length, Rng.derive(5, i, 2)));
    };
    for (let i = 0; i < WARM; i++) await step(i);
    const warm = await pool.memory();
    assert.equal(warm.length, 2);
    assert.ok(
      warm.every((m) => m.tensors > 0 && m.dataIds > 0 && m.heapBytes > 0),
      JSON.stringify(warm),
    );
    for (let i = WARM; i < 40; i++) await step(i);
    assert.deepEqual(await pool.memory(), warm, 'after 40 training steps');
    const test = subset(mnist.test, 0, 1001);
    await pool.predict(test.images, test.count);
    const predicting = await pool.memory();
    for (let i = 0; i < 20; i++) await pool.predict(test.images, test.count);
    assert.deepEqual(await pool.memory(), predicting, 'after 20 predictions');
  } finally {
    await pool.close();
    disposeParams(params);
  }
});
