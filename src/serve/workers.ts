/**
 * Inference on worker threads, with the training pool's code (train/parallel.ts): each runner is a
 * GradientPool of one worker, its own TensorFlow.js instance holding the served weights, so N runners take
 * N batches at once and the main thread only parses, validates and replies. One pool of one worker per
 * runner (not one pool of N) because a pool works in lockstep: a batch would wait for every worker.
 */
import type { BackendName } from '../backend.ts';
import { weightSpecs } from '../model/config.ts';
import { GradientPool } from '../train/parallel.ts';
import type { Runner } from './batcher.ts';
import type { ServedModel } from './served-model.ts';
import { LIMITS } from './schema.ts';

/**
 * Starts `count` workers holding the model's weights; each is a Runner for the batcher, taking passes of up
 * to `maxBatch` images through a shared-memory channel (train/serving.ts) rather than a message each. A pass
 * can be as large as one request's batch (the batcher never splits a request), so room for that at least.
 */
export async function startWorkerRunners(model: ServedModel, count: number, backend: BackendName, maxBatch: number = LIMITS.predictBatch): Promise<Runner[]> {
  const room = Math.max(maxBatch, LIMITS.predictBatch);
  const flat = flatWeights(model);
  const { height, width, channels } = model.net.input;
  const pixels = height * width * channels;
  const started = await Promise.allSettled(Array.from({ length: count }, () => GradientPool.start(model.net, 1, backend)));
  const pools = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failed = started.find((s) => s.status === 'rejected');
  if (failed) {
    await Promise.all(pools.map((p) => p.close()));
    throw (failed as PromiseRejectedResult).reason;
  }
  try {
    for (const pool of pools) pool.publish(flat);
    const channels = await Promise.all(pools.map((pool) => pool.serve(room)));
    // one pass each now, so the first requests do not pay for each worker's first-call setup
    await Promise.all(channels.map((c) => c.run([new Float32Array(pixels)], 1)));
    return pools.map((pool, i) => ({ run: (images: Float32Array[], n: number) => channels[i].run(images, n), close: () => pool.close() }));
  } catch (err) {
    await Promise.all(pools.map((p) => p.close()));
    throw err;
  }
}

/** The weights as one array in weightSpecs order (GradientPool.publish's layout). */
function flatWeights(model: ServedModel): Float32Array {
  const specs = weightSpecs(model.net);
  const sizes = specs.map((s) => s.shape.reduce((a, b) => a * b, 1));
  const out = new Float32Array(sizes.reduce((a, b) => a + b, 0));
  let offset = 0;
  specs.forEach((s, i) => {
    const t = model.params.get(s.name);
    if (t === undefined) throw new Error(`the model has no ${s.name}`);
    out.set(t.dataSync() as Float32Array, offset);
    offset += sizes[i];
  });
  return out;
}
