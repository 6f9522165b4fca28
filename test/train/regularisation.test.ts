/**
 * Dropout, augmentation, other optimizers and colour images in real training: worker-count independence,
 * bit-identical resume from a checkpoint file, and an RGB data set learned to ≥ 90%.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../../src/backend.ts';
import { Rng } from '../../src/data/batches.ts';
import { loadMnist, subset, type MnistSplits } from '../../src/data/mnist.ts';
import { loadDataset } from '../../src/data/datasets.ts';
import { presets, type RunConfig } from '../../src/model/config.ts';
import { parseRunConfig, resolveRunConfig } from '../../src/model/validate.ts';
import { disposeParams, initParams, paramsFrom } from '../../src/model/cnn.ts';
import { evaluate, flattenParams, train, type TrainState } from '../../src/train/loop.ts';
import { GradientPool } from '../../src/train/parallel.ts';
import { assertSameTraining, maxAbsDiff } from '../helpers/weights.ts';
import { readCheckpoint, writeCheckpoint } from '../../src/train/checkpoint.ts';
import { colourBars, writeCifarDataset } from '../helpers/datasets.ts';

let mnist: MnistSplits;
let dir: string;

before(async () => {
  await useBackend('wasm');
  mnist = await loadMnist();
  dir = await mkdtemp(join(tmpdir(), 'convlab-reg-'));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The lesson's network with dropout in a conv block and after fc1, digit shifts, and `optimizer`. */
function regularised(optimizer: RunConfig['train']['optimizer'], iterations: number): RunConfig {
  const net = presets.seed.network;
  return {
    network: { ...net, conv: [net.conv[0], { ...net.conv[1], dropout: 0.2 }], dense: [{ ...net.dense[0], dropout: 0.5 }, net.dense[1]] },
    train: { ...presets.seed.train, iterations, optimizer, augment: { shift: 2, flip: false }, seed: 13, logEvery: 5, validateEvery: 0 },
  };
}

const adam = { ...presets.seed.train.optimizer, learningRate: 1e-3 };

async function trainWith(run: RunConfig, workers: number) {
  const params = initParams(run.network, new Rng(run.train.seed));
  const pool = workers > 0 ? await GradientPool.start(run.network, workers, 'wasm') : undefined;
  try {
    const r = await train(run, params, { train: subset(mnist.train, 0, 1280), validation: subset(mnist.validation, 0, 200) }, {}, { pool });
    return { weights: flattenParams(run.network, params), losses: r.history.map((h) => h.loss) };
  } finally {
    await pool?.close();
    disposeParams(params);
  }
}

test('dropout and augmentation are decided per image, not per worker: 0 and 1 workers train to the same bytes, 2 agree within float tolerance', async () => {
  const run = regularised(adam, 10);
  const local = await trainWith(run, 0);
  const init = initParams(run.network, new Rng(run.train.seed));
  const start = flattenParams(run.network, init);
  disposeParams(init);
  // One worker prepares the whole batch as this thread does (prepare.ts), and sums one gradient: same bytes.
  assert.deepEqual(await trainWith(run, 1), local);
  assertSameTraining(local, await trainWith(run, 2), start, '2 workers vs this thread');
  // A fixed worker count is deterministic, and dropout really changes training.
  assert.deepEqual(await trainWith(run, 0), local);
  const plain = await trainWith({ ...run, network: presets.seed.network, train: { ...run.train, augment: { shift: 0, flip: false } } }, 0);
  assert.ok(maxAbsDiff(plain.weights, local.weights) > 1e-3, 'dropout and augmentation made no difference');
});

test('stop, checkpoint file, resume: bit-identical weights with dropout, augmentation and SGD/RMSProp state, in this thread and on 2 workers', async () => {
  for (const [workers, optimizer] of [
    [0, { type: 'sgd', learningRate: 0.05, schedule: { type: 'cosine', finalLearningRate: 5e-4 }, momentum: 0.9, nesterov: true }],
    [0, { type: 'rmsprop', learningRate: 1e-3, schedule: { type: 'step', every: 4, factor: 0.5 }, rho: 0.9, momentum: 0.5, epsilon: 1e-7 }],
    [2, { type: 'sgd', learningRate: 0.05, schedule: { type: 'cosine', finalLearningRate: 5e-4 }, momentum: 0.9, nesterov: true }],
    [2, { type: 'rmsprop', learningRate: 1e-3, schedule: { type: 'step', every: 4, factor: 0.5 }, rho: 0.9, momentum: 0.5, epsilon: 1e-7 }],
  ] as const) {
    const run = regularised(optimizer, 12);
    // With workers the update runs on the shared flat weights (flat.ts): its state must resume exactly too.
    const pool = workers > 0 ? await GradientPool.start(run.network, workers, 'wasm') : undefined;
    const data = { train: subset(mnist.train, 0, 640), validation: subset(mnist.validation, 0, 100) };
    const straight = initParams(run.network, new Rng(run.train.seed));
    await train(run, straight, data, {}, { pool });

    const out = join(dir, `${optimizer.type}-${workers}`);
    await mkdir(out);
    const first = initParams(run.network, new Rng(run.train.seed));
    let steps = 0;
    const stopped = await train(
      run,
      first,
      data,
      { onStep: () => steps++ },
      {
        pool,
        shouldStop: () => steps === 5,
        onCheckpoint: (state: TrainState) =>
          writeCheckpoint(out, { run, preset: 'test', dataset: 'mnist', backend: 'wasm', workers, checkpointEvery: 0, params: first, state }),
      },
    );
    assert.equal(stopped.stopped, true);
    disposeParams(first);

    const c = await readCheckpoint(out);
    assert.equal(c.header.iteration, 5);
    assert.equal(c.header.dataset, 'mnist');
    assert.deepEqual(Object.keys(c.state.optimizer.slots).sort(), optimizer.type === 'sgd' ? ['velocity'] : ['mom', 'ms']);
    const resumed = paramsFrom(run.network, new Map([...c.weights].map(([name, v]) => [name, tf.tensor(v, straight.get(name)!.shape)])));
    await train(run, resumed, data, {}, { resume: c.state, pool });
    await pool?.close();
    assert.deepEqual(
      Buffer.from(flattenParams(run.network, resumed).buffer),
      Buffer.from(flattenParams(run.network, straight).buffer),
      `${optimizer.type}, ${workers} workers: resumed weights differ`,
    );
    disposeParams(resumed);
    disposeParams(straight);
  }
});

test('colour: a network learns an RGB data set (CIFAR-10 format) whose classes differ by colour and orientation to ≥ 90%', async () => {
  const cifar = join(dir, 'colour-bars');
  await writeCifarDataset(cifar, colourBars(1000, 1), colourBars(300, 2));
  const data = await loadDataset({ kind: 'cifar10', dir: cifar });
  assert.deepEqual([data.train.count, data.validation.count, data.test.count, data.train.channels], [900, 100, 300, 3]);
  const draft = parseRunConfig(
    {
      network: {
        conv: [
          { filters: 8, size: 5 },
          { filters: 16, size: 5 },
        ],
        dense: [{ units: 32 }, {}],
      },
      train: {
        batchSize: 32,
        iterations: 600,
        optimizer: { type: 'adam', learningRate: 0.003 },
        augment: { shift: 2, flip: true },
        logEvery: 100,
        validateEvery: 0,
      },
    },
    'colour test',
  );
  const run = resolveRunConfig(draft, { ...data.train, classes: data.classes, name: data.name }, 'colour test');
  assert.deepEqual(run.network.input, { height: 32, width: 32, channels: 3 });
  const params = initParams(run.network, new Rng(1));
  const untrained = evaluate(run.network, params, data.test);
  const result = await train(run, params, data);
  const test = evaluate(run.network, params, data.test);
  console.log(
    `colour bars: untrained ${untrained.accuracy}, validation ${result.validation.accuracy}, test ${test.accuracy}, ${result.trainSeconds.toFixed(1)} s`,
  );
  assert.ok(untrained.accuracy < 0.35, `untrained accuracy should be near chance (1/6), got ${untrained.accuracy}`);
  assert.ok(test.accuracy >= 0.9, `test accuracy ${test.accuracy} < 0.90`);
  // Colour is needed: red, green and blue bars of one orientation are confused only rarely.
  const colourMistakes = test.confusion.reduce((n, row, t) => n + row.reduce((m, c, p) => m + (p !== t && p % 2 === t % 2 ? c : 0), 0), 0);
  assert.ok(colourMistakes <= 0.05 * test.total, `${colourMistakes} images got the wrong colour`);
  disposeParams(params);
});
