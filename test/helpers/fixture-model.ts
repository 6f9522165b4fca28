/**
 * A small trained model shared by tests that need one (figures, server, predict): 300 Adam steps on
 * 2,000 MNIST training images (~93% accuracy), trained once and cached under test-artifacts/ so that
 * test files, which run in separate processes, do not each train their own. The cache key covers the
 * training recipe and the model format version; delete test-artifacts/ to force a retrain.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rm, writeFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { useBackend } from '../../src/backend.ts';
import { Rng } from '../../src/data/batches.ts';
import { loadMnist, subset } from '../../src/data/mnist.ts';
import { presets, type RunConfig } from '../../src/model/config.ts';
import { disposeParams, initParams } from '../../src/model/cnn.ts';
import { saveModel } from '../../src/model/checkpoint.ts';
import { evaluate, train } from '../../src/train/loop.ts';

export const fixtureRun: RunConfig = {
  network: presets.seed.network,
  train: {
    ...presets.seed.train,
    iterations: 300,
    optimizer: { ...presets.seed.train.optimizer, learningRate: 1e-3 },
    seed: 3,
    logEvery: 30,
    validateEvery: 0,
  },
};

const root = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));
const key = JSON.stringify({ v: 1, fixtureRun });

/** Path of a folder holding model.json, weights.bin and metrics.json of the fixture model. */
export async function fixtureModelDir(): Promise<string> {
  const dir = join(root, 'fixture-model');
  if (existsSync(join(dir, 'key.json')) && readFileSync(join(dir, 'key.json'), 'utf8') === key) return dir;
  await useBackend('wasm');
  const mnist = await loadMnist();
  const params = initParams(fixtureRun.network, new Rng(fixtureRun.train.seed));
  const result = await train(fixtureRun, params, { train: subset(mnist.train, 0, 2000), validation: subset(mnist.validation, 0, 1000) });
  const test = evaluate(fixtureRun.network, params, mnist.test);
  const tmp = `${dir}.${process.pid}.tmp`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  await saveModel(tmp, fixtureRun.network, params, { train: fixtureRun.train });
  const metrics = {
    testAccuracy: test.accuracy,
    testCorrect: test.correct,
    testTotal: test.total,
    validationAccuracy: result.validation.accuracy,
    iterations: result.iterations,
    trainSeconds: result.trainSeconds,
    trainImagesPerSecond: result.trainImagesPerSecond,
    seed: fixtureRun.train.seed,
    backend: 'wasm',
    preset: 'fixture',
    config: fixtureRun,
    history: result.history,
    confusionMatrix: test.confusion,
  };
  await writeFile(join(tmp, 'metrics.json'), JSON.stringify(metrics, null, 2));
  await writeFile(join(tmp, 'key.json'), key);
  disposeParams(params);
  await rm(dir, { recursive: true, force: true });
  await rename(tmp, dir);
  return dir;
}
