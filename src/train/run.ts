/**
 * A whole training run, as `convlab train` and `npm start` do it: load MNIST, initialise, train, test,
 * save the model in the TensorFlow.js layers-model format and write metrics.json.
 */
import { mkdir, rename, open } from 'node:fs/promises';
import { join } from 'node:path';
import type { BackendName } from '../backend.ts';
import { Rng } from '../data/batches.ts';
import { loadMnist, type MnistSplits } from '../data/mnist.ts';
import type { RunConfig } from '../model/config.ts';
import { disposeParams, initParams, type Params } from '../model/cnn.ts';
import { saveModel } from '../model/checkpoint.ts';
import type { Evaluation } from '../eval/metrics.ts';
import { evaluate, train, type HistoryEntry, type TrainHooks } from './loop.ts';
import { GradientPool } from './parallel.ts';

export interface Metrics {
  testAccuracy: number;
  testCorrect: number;
  testTotal: number;
  validationAccuracy: number;
  iterations: number;
  epochs: number;
  trainSeconds: number;
  trainImagesPerSecond: number;
  workers: number;
  seed: number;
  backend: BackendName;
  preset: string;
  config: RunConfig;
  history: HistoryEntry[];
  /** confusionMatrix[true][predicted] on the test set. */
  confusionMatrix: number[][];
  createdAt: string;
}

export interface RunOptions {
  run: RunConfig;
  preset: string;
  backend: BackendName;
  outDir: string;
  /** Worker threads computing gradients (0 = all in this thread). */
  workers: number;
  data?: MnistSplits;
}

export interface RunResult {
  metrics: Metrics;
  test: Evaluation;
  params: Params;
}

/** Trains, evaluates on the test split and writes `outDir`. The caller disposes `result.params`. */
export async function trainRun(options: RunOptions, hooks: TrainHooks = {}): Promise<RunResult> {
  const { run, outDir } = options;
  const data = options.data ?? (await loadMnist());
  const params = initParams(run.network, new Rng(run.train.seed));
  const pool = options.workers > 0 ? await GradientPool.start(run.network, options.workers, options.backend) : undefined;
  try {
    const result = await train(run, params, { train: data.train, validation: data.validation }, hooks, { pool });
    const test = evaluate(run.network, params, data.test);
    const metrics: Metrics = {
      testAccuracy: test.accuracy,
      testCorrect: test.correct,
      testTotal: test.total,
      validationAccuracy: result.validation.accuracy,
      iterations: result.iterations,
      epochs: (result.iterations * run.train.batchSize) / data.train.count,
      trainSeconds: result.trainSeconds,
      trainImagesPerSecond: result.trainImagesPerSecond,
      workers: options.workers,
      seed: run.train.seed,
      backend: options.backend,
      preset: options.preset,
      config: run,
      history: result.history,
      confusionMatrix: test.confusion,
      createdAt: new Date().toISOString(),
    };
    await mkdir(outDir, { recursive: true });
    await saveModel(outDir, run.network, params, {
      train: run.train,
      metrics: { testAccuracy: test.accuracy, validationAccuracy: result.validation.accuracy, iterations: result.iterations },
    });
    await writeJsonAtomic(join(outDir, 'metrics.json'), metrics);
    return { metrics, test, params };
  } catch (err) {
    disposeParams(params);
    throw err;
  } finally {
    await pool?.close();
  }
}

/** Writes JSON to a temporary file, flushes it, then renames it into place. */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  const handle = await open(tmp, 'w');
  try {
    await handle.writeFile(JSON.stringify(value, null, 2) + '\n');
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(tmp, path);
}

