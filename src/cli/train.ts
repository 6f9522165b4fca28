import { join } from 'node:path';
import { access } from 'node:fs/promises';
import { useBackend, type BackendName } from '../backend.ts';
import { presets, type PresetName, type RunConfig } from '../model/config.ts';
import { disposeParams } from '../model/cnn.ts';
import { accuracyLine } from '../eval/metrics.ts';
import { trainRun } from '../train/run.ts';
import { UsageError } from '../errors.ts';
import { reporter } from './output.ts';
import { defaultWorkerCount } from '../train/parallel.ts';

export interface TrainFlags {
  preset: PresetName;
  iterations?: number;
  epochs?: number;
  batchSize?: number;
  learningRate?: number;
  seed?: number;
  backend: BackendName;
  out?: string;
  logEvery?: number;
  validateEvery?: number;
  workers?: number;
}

const TRAIN_SIZE = 55_000;

/** The preset with the user's flags applied on top. */
export function runConfig(flags: TrainFlags): RunConfig {
  const base = presets[flags.preset];
  const train = { ...base.train };
  if (flags.batchSize !== undefined) train.batchSize = flags.batchSize;
  if (flags.learningRate !== undefined) {
    // Keep the schedule's shape: scale the final rate with the starting one.
    train.finalLearningRate = (train.finalLearningRate / train.learningRate) * flags.learningRate;
    train.learningRate = flags.learningRate;
  }
  if (flags.seed !== undefined) train.seed = flags.seed;
  if (flags.iterations !== undefined) train.iterations = flags.iterations;
  if (flags.epochs !== undefined) train.iterations = Math.ceil((flags.epochs * TRAIN_SIZE) / train.batchSize);
  // Short runs still get about ten log lines; --log-every / --validate-every override.
  train.logEvery = flags.logEvery ?? Math.max(1, Math.min(train.logEvery, Math.ceil(train.iterations / 10)));
  train.validateEvery = flags.validateEvery ?? train.validateEvery;
  return { network: base.network, train };
}

function timestamp(date = new Date()): string {
  return date.toISOString().replace(/[:]/g, '-').replace(/\..+$/, '');
}

export async function trainCommand(flags: TrainFlags): Promise<void> {
  const run = runConfig(flags);
  const outDir = flags.out ?? join('runs', timestamp());
  if (await exists(join(outDir, 'model.json'))) {
    throw new UsageError('OUT_EXISTS', `${outDir} already holds a model; choose another --out (nothing was overwritten)`);
  }
  await useBackend(flags.backend);
  // tfjs-node is multithreaded itself; wasm and cpu use one core per TensorFlow.js instance.
  const workers = flags.workers ?? (flags.backend === 'tensorflow' ? 0 : defaultWorkerCount());
  const t = run.train;
  console.log(
    `convlab train: preset ${flags.preset}, ${t.iterations} iterations of ${t.batchSize} images, ` +
      `Adam lr ${t.learningRate}${t.schedule === 'cosine' ? ` → ${t.finalLearningRate} (cosine)` : ''}, seed ${t.seed}, backend ${flags.backend}, ${workers === 0 ? 'no worker threads' : `${workers} worker thread${workers > 1 ? 's' : ''}`}`,
  );
  const ui = reporter();
  let result;
  try {
    result = await trainRun({ run, preset: flags.preset, backend: flags.backend, outDir, workers }, ui.hooks);
  } finally {
    ui.stop();
  }
  const m = result.metrics;
  console.log(`trained in ${m.trainSeconds.toFixed(1)} s (${Math.round(m.trainImagesPerSecond).toLocaleString('en-US')} images/s)`);
  console.log(accuracyLine('test', result.test));
  console.log(`wrote ${join(outDir, 'model.json')}, weights.bin, metrics.json`);
  disposeParams(result.params);
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
