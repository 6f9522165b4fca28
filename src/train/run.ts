/**
 * A whole training run, as `convlab train` and `npm start` do it: lock the output folder, load the data set,
 * initialise (or resume from a checkpoint), train with periodic checkpoints, test, save the model in the
 * TensorFlow.js layers-model format and write metrics.json.
 */
import { mkdir, open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { BackendName } from '../backend.ts';
import { Rng } from '../data/rng.ts';
import { loadMnist } from '../data/mnist.ts';
import type { DataSplits } from '../data/datasets.ts';
import { weightSpecs, type RunConfig } from '../model/config.ts';
import { disposeParams, initParams, paramsFrom, type Params } from '../model/cnn.ts';
import { saveModel } from '../model/checkpoint.ts';
import type { Evaluation } from '../eval/metrics.ts';
import * as tf from '@tensorflow/tfjs';
import { TrainingError, UsageError } from '../errors.ts';
import { train, type HistoryEntry, type TrainHooks, type TrainResult } from './loop.ts';
import { evaluateOn, withEngine } from './engine.ts';
import { CHECKPOINT_FILE, removeCheckpoint, writeCheckpoint, type Checkpoint } from './checkpoint.ts';
import { WriteError, asWriteError, writeJsonAtomic } from '../atomic-write.ts';

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
  /** The preset's name, or the config file the run came from. */
  preset: string;
  /** The data set, as `--dataset` names it (`mnist`, `idx:DIR`, `cifar10:DIR`; DIR absolute). */
  dataset: string;
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
  /** Write a checkpoint every this many iterations (0 = only when stopped). */
  checkpointEvery?: number;
  /** Continue this checkpoint (read from `outDir`) instead of starting afresh. */
  resume?: Checkpoint;
  /** Polled after every step: true checkpoints and stops (Ctrl-C). */
  shouldStop?: () => boolean;
  /** The data set, already loaded (default: MNIST). */
  data?: DataSplits;
}

export type RunResult = { stopped: false; metrics: Metrics; test: Evaluation; params: Params } | { stopped: true; iterations: number; params: Params };

/** Trains, evaluates on the test split and writes `outDir`. The caller disposes `result.params`. */
export async function trainRun(options: RunOptions, hooks: TrainHooks = {}): Promise<RunResult> {
  const { run, outDir } = options;
  let unlock: () => Promise<void>;
  try {
    await mkdir(outDir, { recursive: true }).catch((err) => Promise.reject(asWriteError(outDir, err)));
    unlock = await lockFolder(outDir);
  } catch (err) {
    throw err instanceof WriteError ? err.withAdvice('nothing was written', 'choose another --out, or make the folder writable') : err;
  }
  let params: Params | undefined;
  let lastCheckpoint = options.resume?.header.iteration;
  try {
    const data = options.data ?? { ...(await loadMnist()), classes: 10, name: 'mnist' };
    params = options.resume ? restoredParams(options.resume) : initParams(run.network, new Rng(run.train.seed));
    const p = params;
    return await withEngine(run.network, { workers: options.workers, backend: options.backend }, async (engine): Promise<RunResult> => {
      let result: TrainResult;
      try {
        result = await train(run, p, { train: data.train, validation: data.validation }, hooks, {
          engine,
          resume: options.resume?.state,
          checkpointEvery: options.checkpointEvery,
          shouldStop: options.shouldStop,
          onCheckpoint: async (state) => {
            await writeCheckpoint(outDir, {
              run,
              preset: options.preset,
              dataset: data.name,
              backend: options.backend,
              workers: options.workers,
              checkpointEvery: options.checkpointEvery ?? 0,
              params: p,
              state,
            });
            lastCheckpoint = state.iteration;
          },
        });
      } catch (err) {
        if (err instanceof TrainingError && lastCheckpoint !== undefined) {
          throw new TrainingError(err.code, `${err.message}. The last good checkpoint (iteration ${lastCheckpoint}) is kept in ${outDir}`, { cause: err });
        }
        throw err;
      }
      if (result.stopped) return { stopped: true, iterations: result.iterations, params: p };

      // The test split on the engine (in parallel on the workers when there are any).
      const test = await evaluateOn(engine, run.network, data.test);
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
        dataset: data.name,
        config: run,
        history: result.history,
        confusionMatrix: test.confusion,
        createdAt: new Date().toISOString(),
      };
      await saveModel(outDir, run.network, p, {
        train: run.train,
        dataset: data.name,
        metrics: { testAccuracy: test.accuracy, validationAccuracy: result.validation.accuracy, iterations: result.iterations },
      });
      await writeJsonAtomic(join(outDir, 'metrics.json'), metrics);
      await removeCheckpoint(outDir); // the run is complete: nothing left to resume
      return { stopped: false, metrics, test, params: p };
    });
  } catch (err) {
    if (params) disposeParams(params);
    throw err instanceof WriteError ? writeAdvice(err, outDir, lastCheckpoint) : err;
  } finally {
    await unlock();
  }
}

/** A failed write (full disk, read-only folder, no permission) with what is intact and how to go on. */
function writeAdvice(err: WriteError, outDir: string, lastCheckpoint: number | undefined): WriteError {
  const fix = err.code === 'DISK_FULL' ? 'free some space' : `make ${outDir} writable`;
  if (lastCheckpoint === undefined)
    return err.withAdvice('no checkpoint of this run was written (--checkpoint-every N keeps one)', `${fix}, then run it again`);
  return err.withAdvice(
    `the last checkpoint (iteration ${lastCheckpoint}, ${join(outDir, CHECKPOINT_FILE)}) is intact`,
    `${fix}, then continue with: convlab train --resume ${outDir}`,
  );
}

function restoredParams(c: Checkpoint): Params {
  const net = c.header.run.network;
  return paramsFrom(net, new Map(weightSpecs(net).map((s) => [s.name, tf.tensor(c.weights.get(s.name)!, s.shape)])));
}

/** Throws OUT_LOCKED if a live convlab run holds `dir`. */
export async function assertNotLocked(dir: string): Promise<void> {
  const pid = Number((await readFile(join(dir, '.lock'), 'utf8').catch(() => '')).trim());
  if (Number.isInteger(pid) && pid > 0 && isAlive(pid)) throw lockedError(dir, pid);
}

function lockedError(dir: string, pid: number): UsageError {
  return new UsageError('OUT_LOCKED', `${dir} is in use by another convlab run (pid ${pid}); choose another --out or wait for it to finish`);
}

/**
 * Claims `dir` for this process: `dir/.lock` holds our pid. A second run on the same folder is refused
 * while the first is alive; a lock left by a killed run (its pid is gone) is taken over.
 */
export async function lockFolder(dir: string): Promise<() => Promise<void>> {
  const path = join(dir, '.lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(path, 'wx');
      await handle.writeFile(`${process.pid}\n`);
      await handle.close();
      return () => rm(path, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw asWriteError(path, err);
      const pid = Number((await readFile(path, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(pid) && pid > 0 && isAlive(pid)) {
        throw lockedError(dir, pid);
      }
      await rm(path, { force: true }); // stale: its owner is gone
    }
  }
  throw new UsageError('OUT_LOCKED', `${dir}: could not take the lock file ${path}`);
}

function isAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
