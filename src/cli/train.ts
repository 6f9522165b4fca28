import { join } from 'node:path';
import { access } from 'node:fs/promises';
import { useBackend, type BackendName } from '../backend.ts';
import { presets, type PresetName, type RunConfig } from '../model/config.ts';
import { disposeParams } from '../model/cnn.ts';
import { accuracyLine } from '../eval/metrics.ts';
import { assertNotLocked, trainRun, type RunOptions } from '../train/run.ts';
import { CHECKPOINT_FILE, readCheckpoint } from '../train/checkpoint.ts';
import { UsageError } from '../errors.ts';
import { reporter } from './output.ts';
import { writeReport } from './visualize.ts';
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
  /** False with --no-report: skip the figures and report.html. */
  report?: boolean;
  checkpointEvery?: number;
  resume?: string;
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
  if (flags.resume !== undefined) return resumeCommand(flags);
  const run = runConfig(flags);
  const outDir = flags.out ?? join('runs', timestamp());
  await assertNotLocked(outDir);
  if (await exists(join(outDir, 'model.json'))) {
    throw new UsageError('OUT_EXISTS', `${outDir} already holds a model; choose another --out (nothing was overwritten)`);
  }
  if (await exists(join(outDir, CHECKPOINT_FILE))) {
    throw new UsageError('OUT_HAS_CHECKPOINT', `${outDir} holds an unfinished run; continue it with --resume ${outDir}, or choose another --out`);
  }
  // tfjs-node is multithreaded itself; wasm and cpu use one core per TensorFlow.js instance.
  const workers = flags.workers ?? (flags.backend === 'tensorflow' ? 0 : defaultWorkerCount());
  await execute({ run, preset: flags.preset, backend: flags.backend, outDir, workers, checkpointEvery: flags.checkpointEvery }, flags);
}

/** `--resume DIR`: the saved run's config, backend and worker count, so the result is bit-identical. */
async function resumeCommand(flags: TrainFlags): Promise<void> {
  const outDir = flags.resume!;
  const conflicting = (['iterations', 'epochs', 'batchSize', 'learningRate', 'seed', 'workers', 'out'] as const).filter((k) => flags[k] !== undefined);
  if (conflicting.length > 0) {
    const names = conflicting.map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`).join(', ');
    throw new UsageError('RESUME_FLAGS', `--resume continues the saved run exactly as it was configured; drop ${names}`);
  }
  const checkpoint = await readCheckpoint(outDir);
  const h = checkpoint.header;
  console.log(`resuming ${outDir} at iteration ${h.iteration}/${h.run.train.iterations}`);
  await execute(
    { run: h.run, preset: h.preset, backend: h.backend, outDir, workers: h.workers, checkpointEvery: flags.checkpointEvery ?? h.checkpointEvery, resume: checkpoint },
    flags,
  );
}

async function execute(options: RunOptions, flags: TrainFlags): Promise<void> {
  const { run, outDir, workers } = options;
  await useBackend(options.backend);
  const t = run.train;
  if (!options.resume) {
    console.log(
      `convlab train: preset ${options.preset}, ${t.iterations} iterations of ${t.batchSize} images, ` +
        `Adam lr ${t.learningRate}${t.schedule === 'cosine' ? ` → ${t.finalLearningRate} (cosine)` : ''}, seed ${t.seed}, ` +
        `backend ${options.backend}, ${workers === 0 ? 'no worker threads' : `${workers} worker thread${workers > 1 ? 's' : ''}`}`,
    );
  }
  // Ctrl-C: finish the current step, checkpoint, exit 130. A second Ctrl-C exits at once.
  let interrupted = false;
  const onSigint = () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    process.stderr.write('\nstopping after this step (Ctrl-C again to quit without a checkpoint)...\n');
  };
  process.on('SIGINT', onSigint);
  const ui = reporter();
  let result;
  try {
    result = await trainRun({ ...options, shouldStop: () => interrupted }, ui.hooks);
  } finally {
    ui.stop();
    process.off('SIGINT', onSigint);
  }
  if (result.stopped) {
    disposeParams(result.params);
    console.log(`interrupted at iteration ${result.iterations}/${t.iterations}; checkpoint saved in ${join(outDir, CHECKPOINT_FILE)}`);
    console.log(`resume with: convlab train --resume ${outDir}`);
    process.exitCode = 130;
    return;
  }
  const m = result.metrics;
  console.log(`trained in ${m.trainSeconds.toFixed(1)} s (${Math.round(m.trainImagesPerSecond).toLocaleString('en-US')} images/s)`);
  console.log(accuracyLine('test', result.test));
  console.log(`wrote ${join(outDir, 'model.json')}, weights.bin, metrics.json`);
  disposeParams(result.params);
  if (flags.report !== false) console.log(await writeReport(outDir));
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
