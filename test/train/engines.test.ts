/**
 * One update per optimizer, whichever engine runs the step. The in-thread engine and the page apply the
 * flat update rule the workers run (src/train/flat.ts), so: training in this thread equals the gradients
 * plus the flat rule applied by hand, bit for bit; this thread and one worker train to the same bytes; a
 * checkpoint's optimizer state continues on any number of workers or none; and the page's step is the
 * library's, with no update arithmetic of its own.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../../src/backend.ts';
import { BatchSampler, Rng } from '../../src/data/batches.ts';
import type { ImageSet } from '../../src/data/images.ts';
import { loadMnist, subset, type MnistSplits } from '../../src/data/mnist.ts';
import { defaults, presets, type OptimizerConfig, type RunConfig } from '../../src/model/config.ts';
import { disposeParams, initParams, paramsFrom } from '../../src/model/cnn.ts';
import { assignFlat, flattenParams, paramLayout } from '../../src/train/layout.ts';
import { computeGradients } from '../../src/train/step.ts';
import { makeFlatOptimizer } from '../../src/train/flat.ts';
import { scheduledRate } from '../../src/train/optimizer.ts';
import { train, type TrainState } from '../../src/train/loop.ts';
import { GradientPool } from '../../src/train/parallel.ts';
import { readCheckpoint, writeCheckpoint } from '../../src/train/checkpoint.ts';
import { BrowserTrainer } from '../../web/src/training.ts';
import { assertSameTraining } from '../helpers/weights.ts';

let mnist: MnistSplits;
let data: { train: ImageSet; validation: ImageSet };
let dir: string;
const pools = new Map<number, GradientPool>();
const net = presets.seed.network;

before(async () => {
  await useBackend('wasm');
  mnist = await loadMnist();
  data = { train: subset(mnist.train, 0, 640), validation: subset(mnist.validation, 0, 50) };
  dir = await mkdtemp(join(tmpdir(), 'convlab-engines-'));
  for (const n of [1, 2, 3]) pools.set(n, await GradientPool.start(net, n, 'wasm'));
});

after(async () => {
  for (const pool of pools.values()) await pool.close();
  await rm(dir, { recursive: true, force: true });
});

const schedule = { type: 'cosine', finalLearningRate: 1e-4 } as const;
const rules: OptimizerConfig[] = [
  { ...defaults.optimizer.adam, learningRate: 1e-3, schedule },
  { ...defaults.optimizer.sgd, learningRate: 0.05, momentum: 0.9, nesterov: true, schedule },
  { ...defaults.optimizer.rmsprop, learningRate: 1e-3, momentum: 0.5, schedule },
];

function recipe(optimizer: OptimizerConfig, iterations: number): RunConfig {
  return { network: net, train: { ...presets.seed.train, batchSize: 32, iterations, optimizer, seed: 17, logEvery: 100, validateEvery: 0 } };
}

/**
 * `steps` steps by hand, as the loop draws them: the batch sampler, computeGradients, the gradients read
 * out into one flat array, the flat rule (makeFlatOptimizer) on a flat copy of the weights.
 */
function byHand(run: RunConfig, steps: number, params = initParams(run.network, new Rng(run.train.seed))): Float32Array {
  const { optimizer, batchSize, seed, iterations } = run.train;
  const layout = paramLayout(run.network);
  const theta = flattenParams(run.network, params);
  const rule = makeFlatOptimizer(optimizer, layout);
  const sampler = new BatchSampler(data.train, batchSize, new Rng(seed + 1));
  for (let i = 0; i < steps; i++) {
    const batch = sampler.next();
    const g = new Float32Array(theta.length);
    tf.tidy(() => {
      const x = tf.tensor4d(batch.images, [batch.labels.length, 28, 28, 1]);
      const r = computeGradients(run.network, params, x, tf.tensor1d(batch.labels, 'int32'));
      for (const { name, offset } of layout) g.set(r.grads.get(name)!.dataSync() as Float32Array, offset);
      r.correct.dispose();
    });
    rule.apply(theta, g, scheduledRate(optimizer.schedule, optimizer.learningRate, i, iterations));
    assignFlat(run.network, params, theta);
  }
  disposeParams(params);
  return theta;
}

/** The weights after `run` on `workers` workers (0: this thread). */
async function trained(run: RunConfig, workers: number): Promise<Float32Array> {
  const params = initParams(run.network, new Rng(run.train.seed));
  try {
    await train(run, params, data, {}, { pool: pools.get(workers) });
    return flattenParams(run.network, params);
  } finally {
    disposeParams(params);
  }
}

const bytes = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

test('in this thread, every rule is the flat update applied by hand to the gradients, bit for bit', async () => {
  for (const optimizer of rules) {
    const run = recipe(optimizer, 6);
    assert.ok(bytes(await trained(run, 0)).equals(bytes(byHand(run, 6))), `${optimizer.type}: the in-thread engine is not the flat update`);
  }
});

test('this thread and one worker train to the same bytes (Adam, SGD, RMSProp)', async () => {
  for (const optimizer of rules) {
    const run = recipe(optimizer, 6);
    assert.ok(bytes(await trained(run, 0)).equals(bytes(await trained(run, 1))), `${optimizer.type}: 0 and 1 workers differ`);
  }
});

/** A run of `run` stopped after `at` steps on `from` workers, its checkpoint file, resumed on `to` workers. */
async function stopAndResume(run: RunConfig, at: number, from: number, to: number): Promise<Float32Array> {
  const out = join(dir, `${run.train.optimizer.type}-${from}-${to}`);
  await mkdir(out);
  const first = initParams(run.network, new Rng(run.train.seed));
  let steps = 0;
  await train(
    run,
    first,
    data,
    { onStep: () => steps++ },
    {
      pool: pools.get(from),
      shouldStop: () => steps === at,
      onCheckpoint: (state: TrainState) =>
        writeCheckpoint(out, { run, preset: 'test', dataset: 'mnist', backend: 'wasm', workers: from, checkpointEvery: 0, params: first, state }),
    },
  );
  disposeParams(first);
  const c = await readCheckpoint(out);
  assert.equal(c.header.iteration, at);
  const params = paramsFrom(
    run.network,
    new Map([...c.weights].map(([name, v]) => [name, tf.tensor(v, paramLayout(run.network).find((p) => p.name === name)!.shape)])),
  );
  try {
    await train(run, params, data, {}, { resume: c.state, pool: pools.get(to) });
    return flattenParams(run.network, params);
  } finally {
    disposeParams(params);
  }
}

test('a checkpoint written on N workers continues on any number of workers or none', async () => {
  for (const optimizer of [rules[0], rules[2]]) {
    const run = recipe(optimizer, 8);
    const straight = await trained(run, 1);
    // 0 and 1 workers do the same arithmetic: switching between them mid-run changes no bit.
    assert.ok(bytes(await stopAndResume(run, 3, 1, 0)).equals(bytes(straight)), `${optimizer.type}: 1 worker → this thread`);
    assert.ok(bytes(await stopAndResume(run, 3, 0, 1)).equals(bytes(straight)), `${optimizer.type}: this thread → 1 worker`);
    // 2 and 3 workers sum the slices' gradients in another order: the same training up to float noise.
    const init = initParams(run.network, new Rng(run.train.seed));
    const start = flattenParams(run.network, init);
    disposeParams(init);
    const two = { weights: await trained(run, 2), losses: [] };
    for (const to of [0, 1, 3])
      assertSameTraining(two, { weights: await stopAndResume(run, 3, 2, to), losses: [] }, start, `${optimizer.type}: 2 workers → ${to}`);
  }
});

test("the page's trainer takes the library's step: its weights are the flat Adam applied by hand", async () => {
  const settings = { batchSize: 32, learningRate: 2e-3, seed: 17, validateEvery: 1000 };
  let stopped: Promise<void> | undefined;
  const trainer = new BrowserTrainer(net, data, settings, {
    onStep: (r) => {
      if (r.step === 4) stopped = trainer.pause();
    },
    onValidate: () => {},
    onError: (err) => {
      throw err;
    },
  });
  trainer.resume();
  while (stopped === undefined) await new Promise((resolve) => setTimeout(resolve, 5));
  await stopped;
  assert.equal(trainer.step, 4);
  const page = flattenParams(net, trainer.network.params);
  await trainer.dispose();
  const run = recipe({ ...defaults.optimizer.adam, learningRate: settings.learningRate, schedule: { type: 'constant' } }, 4);
  assert.ok(bytes(page).equals(bytes(byHand(run, 4))), "the page's weights are not the library's flat Adam");
});

test('the page has no update arithmetic of its own: no optimizer constants, tensor writes or tf.train', async () => {
  const root = new URL('../../web/src/', import.meta.url);
  const files = (await readdir(root, { recursive: true })).filter((f) => f.endsWith('.ts'));
  assert.ok(files.includes('training.ts'));
  const forbidden = [
    /\b0\.999\b/,
    /\b1e-[78]\b/,
    /\b(beta[12]|epsilon|momentum|rho)\b/,
    /(?<!Object)\.assign\(/,
    /\btf\.(train|sqrt|variableGrads|grads?)\b/,
    /\.minimize\(/,
  ];
  const found: string[] = [];
  for (const f of files) {
    const code = (await readFile(new URL(f, root), 'utf8')).replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
    for (const pattern of forbidden) if (pattern.test(code)) found.push(`web/src/${f}: ${pattern}`);
  }
  assert.deepEqual(found, []);
  const page = await readFile(new URL('training.ts', root), 'utf8');
  assert.match(page, /import \{ InThreadStep \} from '..\/..\/src\/train\/step.ts'/);
});
