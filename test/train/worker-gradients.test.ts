/**
 * Worker gradients are the whole batch's gradient, not a sum or a badly weighted mix of the slices'.
 *
 * With plain SGD (no momentum) an update is −lr·g, so the weights after a step show the gradient's scale
 * directly (Adam divides most of it away). The reference is training in this thread on the same backend,
 * on the whole batch (the same flat SGD, flat.ts). Workers compute each slice's mean-loss gradient and
 * weight it by the slice's share of the batch; summing them instead would double (N = 2) the update, and
 * weighting a short slice like a long one shifts it by tens of percent. Float rounding (gradients of slices,
 * summed in another order) stays near 1e-7 of the update, so the bound is 1e-5.
 *
 * Batch sizes: 12 splits evenly over 1, 2 and 3 workers; 7 does not (slices 4+3 and 2+3+2); 2 over 3 workers
 * leaves one worker an empty slice.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { useBackend } from '../../src/backend.ts';
import { Rng } from '../../src/data/batches.ts';
import { loadMnist, subset, type MnistSplits } from '../../src/data/mnist.ts';
import { presets, type RunConfig } from '../../src/model/config.ts';
import { disposeParams, initParams } from '../../src/model/cnn.ts';
import { flattenParams, train } from '../../src/train/loop.ts';
import { GradientPool } from '../../src/train/parallel.ts';
import { maxAbsDiff } from '../helpers/weights.ts';

let mnist: MnistSplits;
const pools = new Map<number, GradientPool>();

before(async () => {
  await useBackend('wasm');
  mnist = await loadMnist();
  for (const n of [1, 2, 3]) pools.set(n, await GradientPool.start(presets.seed.network, n, 'wasm'));
});

after(async () => {
  for (const pool of pools.values()) await pool.close();
});

function sgdRun(batchSize: number): RunConfig {
  return {
    network: presets.seed.network,
    train: {
      ...presets.seed.train,
      batchSize,
      iterations: 2,
      // Large enough that an update is far above the float32 spacing of the weights (~0.05·2⁻²⁴).
      optimizer: { type: 'sgd', learningRate: 0.1, schedule: { type: 'constant' }, momentum: 0, nesterov: false },
      seed: 21,
      logEvery: 1,
      validateEvery: 0,
    },
  };
}

/** The weights at the start, after step 1 and after step 2, trained on `workers` workers (0 = this thread). */
async function weightsPerStep(run: RunConfig, workers: number): Promise<Float32Array[]> {
  const params = initParams(run.network, new Rng(run.train.seed));
  const steps = [flattenParams(run.network, params)];
  try {
    // A checkpoint after every step brings the pool's shared weights back into `params` (loop.ts).
    await train(
      run,
      params,
      { train: subset(mnist.train, 0, 600), validation: subset(mnist.validation, 0, 10) },
      {},
      {
        pool: workers > 0 ? pools.get(workers) : undefined,
        checkpointEvery: 1,
        onCheckpoint: async () => {
          steps.push(flattenParams(run.network, params));
        },
      },
    );
    steps.push(flattenParams(run.network, params));
    return steps;
  } finally {
    disposeParams(params);
  }
}

/** ‖Δa − Δb‖ / ‖Δa‖ for the updates Δ = after − before of two runs. */
function updateDistance(beforeA: Float32Array, afterA: Float32Array, beforeB: Float32Array, afterB: Float32Array): number {
  let d = 0;
  let size = 0;
  for (let i = 0; i < afterA.length; i++) {
    const da = afterA[i] - beforeA[i];
    const db = afterB[i] - beforeB[i];
    d += (da - db) ** 2;
    size += da ** 2;
  }
  return Math.sqrt(d / size);
}

for (const [batchSize, workerCounts] of [
  [12, [1, 2, 3]],
  [7, [2, 3]],
  [2, [3]],
] as const) {
  test(`plain SGD, batch ${batchSize}: ${workerCounts.join(', ')} workers make this thread's updates within 1e-5, over one and two steps`, async (t) => {
    const run = sgdRun(batchSize);
    const local = await weightsPerStep(run, 0);
    assert.equal(local.length, 3);
    assert.ok(maxAbsDiff(local[1], local[0]) > 1e-3, 'the first step barely moved the weights');
    let worst = 0;
    for (const n of workerCounts) {
      const other = await weightsPerStep(run, n);
      assert.deepEqual(other[0], local[0]);
      for (const step of [1, 2]) {
        // Each step's update from the same weights: step 2 is measured from each run's own step-1 weights,
        // then the weights themselves are compared, so an error in step 1 cannot hide in step 2.
        const r = updateDistance(local[step - 1], local[step], other[step - 1], other[step]);
        assert.ok(r < 1e-5, `batch ${batchSize}, ${n} workers, step ${step}: the update differs by ${r.toExponential(2)} of its size`);
        const w = updateDistance(local[0], local[step], other[0], other[step]);
        assert.ok(w < 1e-5, `batch ${batchSize}, ${n} workers, after step ${step}: weights differ by ${w.toExponential(2)} of the distance moved`);
        worst = Math.max(worst, r, w);
      }
    }
    t.diagnostic(`largest relative difference: ${worst.toExponential(2)}`);
  });
}
