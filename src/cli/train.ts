import { join } from 'node:path';
import { access } from 'node:fs/promises';
import { useBackend, type BackendName } from '../backend.ts';
import { describeAugment, describeOptimizer, presets, type AugmentConfig, type PresetName, type RunConfig } from '../model/config.ts';
import { draftFromRun, loadRunConfigFile, resolveRunConfig, type RunDraft } from '../model/validate.ts';
import { loadDataset, parseDatasetSpec } from '../data/datasets.ts';
import { disposeParams } from '../model/cnn.ts';
import { accuracyLine } from '../eval/metrics.ts';
import { assertNotLocked, trainRun, type RunOptions } from '../train/run.ts';
import { overrideTrain } from '../train/overrides.ts';
import { CHECKPOINT_FILE, readCheckpoint } from '../train/checkpoint.ts';
import { UsageError } from '../errors.ts';
import { reporter } from './output.ts';
import { writeReport } from './visualize.ts';
import { defaultWorkerCount } from '../train/parallel.ts';

export interface TrainFlags {
  preset: PresetName;
  /** --config net.json: the network and training recipe from a file instead of a preset. */
  config?: string;
  /** --dataset mnist | idx:DIR | cifar10:DIR (default mnist). */
  dataset?: string;
  /** --augment shift=N,flip | none: overrides the config's train.augment. */
  augment?: AugmentConfig;
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

/** The preset or config file, before the data set fills in the input shape and class count. */
export async function runDraft(flags: Pick<TrainFlags, 'preset' | 'config'>): Promise<{ draft: RunDraft; source: string }> {
  if (flags.config !== undefined) return { draft: await loadRunConfigFile(flags.config), source: flags.config };
  return { draft: draftFromRun(presets[flags.preset]), source: flags.preset };
}

/** The user's flags applied on top of a config's training recipe (rules in train/overrides.ts); `trainCount` converts --epochs. */
export function withFlags(run: RunConfig, flags: TrainFlags, trainCount: number): RunConfig {
  return overrideTrain(run, flags, trainCount);
}

function timestamp(date = new Date()): string {
  return date.toISOString().replace(/[:]/g, '-').replace(/\..+$/, '');
}

export async function trainCommand(flags: TrainFlags): Promise<void> {
  if (flags.resume !== undefined) return resumeCommand(flags);
  // Check everything that can be checked cheaply before loading data.
  const { draft, source } = await runDraft(flags);
  const spec = parseDatasetSpec(flags.dataset ?? 'mnist');
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
  const data = await loadDataset(spec);
  // The input shape and class count come from the data set; every layer's shape is checked here.
  const run = withFlags(resolveRunConfig(draft, { ...data.train, classes: data.classes, name: data.name }, source), flags, data.train.count);
  await execute({ run, preset: source, backend: flags.backend, outDir, workers, checkpointEvery: flags.checkpointEvery, data }, flags);
}

/** `--resume DIR`: the saved run's config, backend and worker count, so the result is bit-identical. */
async function resumeCommand(flags: TrainFlags): Promise<void> {
  const outDir = flags.resume!;
  const conflicting = (['iterations', 'epochs', 'batchSize', 'learningRate', 'seed', 'workers', 'out', 'config', 'dataset', 'augment'] as const).filter(
    (k) => flags[k] !== undefined,
  );
  if (conflicting.length > 0) {
    const names = conflicting.map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`).join(', ');
    throw new UsageError('RESUME_FLAGS', `--resume continues the saved run exactly as it was configured; drop ${names}`);
  }
  const checkpoint = await readCheckpoint(outDir);
  const h = checkpoint.header;
  console.log(`resuming ${outDir} at iteration ${h.iteration}/${h.run.train.iterations}`);
  const data = await loadDataset(parseDatasetSpec(h.dataset));
  await execute(
    {
      run: h.run,
      preset: h.preset,
      backend: h.backend,
      outDir,
      workers: h.workers,
      checkpointEvery: flags.checkpointEvery ?? h.checkpointEvery,
      resume: checkpoint,
      data,
    },
    flags,
  );
}

async function execute(options: RunOptions, flags: TrainFlags): Promise<void> {
  const { run, outDir, workers } = options;
  await useBackend(options.backend);
  const t = run.train;
  if (!options.resume) {
    console.log(
      `convlab train: ${options.preset}, ${options.data?.name ?? 'mnist'}, ${t.iterations} iterations of ${t.batchSize} images, ` +
        `${describeOptimizer(t.optimizer)}, augmentation ${describeAugment(t.augment)}, seed ${t.seed}, ` +
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
  let result: Awaited<ReturnType<typeof trainRun>>;
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
  if (flags.report !== false) console.log(await writeReport(outDir, options.data));
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
