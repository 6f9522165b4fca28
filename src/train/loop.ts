/**
 * The training loop: labelled phases per iteration — learning rate, batch (with its augmentation and
 * dropout masks), step, log, validate, checkpoint. Where the step runs (this thread or worker threads) is
 * the engine's business (engine.ts); the loop does not know which. Side effects (progress bars, charts)
 * come in through `hooks`; this module prints nothing. Every random choice of a step comes from
 * (seed, iteration), so resuming needs only the sampler's state and the optimizer's.
 *
 * The batch is drawn one step ahead: while the workers compute step i, this thread draws batch i+1. Its
 * augmentation and dropout masks are the engine's to apply (on workers, each prepares its own slice, so
 * this thread stays nearly idle), from per-image streams (prepare.ts). A checkpoint saves the sampler as it
 * was before that batch, so a resumed run draws it again.
 */
import type { ImageSet } from '../data/images.ts';
import { BatchSampler, type SamplerState } from '../data/batches.ts';
import { Rng } from '../data/rng.ts';
import type { RunConfig } from '../model/config.ts';
import type { Params } from '../model/cnn.ts';
import type { Evaluation } from '../eval/metrics.ts';
import { TrainingError } from '../errors.ts';
import { scheduledRate, type OptimizerState } from './optimizer.ts';
import type { GradientPool } from './parallel.ts';
import { InThreadEngine, WorkerEngine, evaluateOn, type StepBatch, type StepEngine } from './engine.ts';

// Older import sites: these moved to step.ts, eval/classify.ts and layout.ts.
export { computeGradients } from './step.ts';
export { evaluate } from '../eval/classify.ts';
export { assignFlat, flattenParams } from './layout.ts';

export { STREAM_AUGMENT, STREAM_DROPOUT } from './prepare.ts';

/** One row of the learning curve, written every `logEvery` iterations. */
export interface HistoryEntry {
  /** 1-based iteration number (number of updates applied). */
  iteration: number;
  /** Mean training loss over the interval. */
  loss: number;
  /** Mean batch accuracy over the interval, 0..1. */
  batchAccuracy: number;
  /** Training throughput over the interval. */
  imagesPerSecond: number;
  learningRate: number;
  /** Present at validation intervals. */
  validationAccuracy?: number;
}

export interface TrainHooks {
  /** After every step (for progress bars). */
  onStep?(iteration: number, total: number): void;
  /** Every `logEvery` iterations. */
  onLog?(entry: HistoryEntry, total: number): void;
  /** Every `validateEvery` iterations and at the end. */
  onValidate?(iteration: number, total: number, evaluation: Evaluation): void;
}

export interface TrainResult {
  history: HistoryEntry[];
  /** Iterations completed (fewer than configured when stopped). */
  iterations: number;
  /** True when `shouldStop` ended the run early. */
  stopped: boolean;
  /** Wall time of the optimisation steps only (validation passes excluded). */
  trainSeconds: number;
  trainImagesPerSecond: number;
  validation: Evaluation;
}

export interface TrainOptions {
  /** Where the steps run (engine.ts); the caller closes it. Default: this thread. */
  engine?: StepEngine;
  /** Shorthand for `engine: new WorkerEngine(net, pool, false)`: the steps on the pool's workers. */
  pool?: GradientPool;
  /** Continue from a checkpoint (the caller has already restored the weights into `params`). */
  resume?: TrainState;
  /** Call `onCheckpoint` every this many iterations (0 = never, except when stopping). */
  checkpointEvery?: number;
  onCheckpoint?(state: TrainState): Promise<void>;
  /** Polled after every step; true stops training after a checkpoint (e.g. on Ctrl-C). */
  shouldStop?(): boolean;
}

/**
 * Everything besides the weights that the loop needs to continue a run exactly: with the same weights,
 * the continued run makes bit-for-bit the same updates as one that never stopped.
 */
export interface TrainState {
  /** Completed iterations. */
  iteration: number;
  sampler: SamplerState;
  optimizer: OptimizerState;
  history: HistoryEntry[];
  trainMs: number;
  /** The partial logging interval, so log lines after a resume average the same steps. */
  interval: { loss: number; correct: number; steps: number; ms: number };
}

export interface TrainData {
  /** Floats or bytes (data/images.ts). */
  train: ImageSet;
  validation: ImageSet;
}

/** Trains `params` in place. Throws TrainingError on a non-finite loss. */
export async function train(run: RunConfig, params: Params, data: TrainData, hooks: TrainHooks = {}, options: TrainOptions = {}): Promise<TrainResult> {
  const { network: net, train: cfg } = run;
  const resume = options.resume;
  // The init used `seed`; batches draw from their own stream.
  const sampler = resume
    ? BatchSampler.fromState(data.train, cfg.batchSize, resume.sampler)
    : new BatchSampler(data.train, cfg.batchSize, new Rng(cfg.seed + 1));
  const engine = options.engine ?? (options.pool ? new WorkerEngine(net, options.pool, false) : new InThreadEngine(net));
  const validate = () => evaluateOn(engine, net, data.validation);
  const history: HistoryEntry[] = resume ? [...resume.history] : [];
  let trainMs = resume?.trainMs ?? 0;
  const interval = { ...(resume?.interval ?? { loss: 0, correct: 0, steps: 0, ms: 0 }) };
  let validation: Evaluation | undefined;
  let done = resume?.iteration ?? 0;
  let stopped = false;

  // The batch of the next iteration, drawn one step ahead: batch i+1 is drawn while the engine computes
  // step i. Its augmentation and dropout come from (seed, iteration, image) and are the engine's to apply.
  const prepare = (): StepBatch => {
    const batch = sampler.next();
    return { images: batch.images, labels: batch.labels };
  };
  let ahead: StepBatch | undefined;

  const state = async (): Promise<TrainState> => ({
    iteration: done,
    // the sampler has drawn the batch ahead: save it as it was before, so that a resumed run draws it again
    sampler: ahead ? sampler.stateBeforeLast() : sampler.state(),
    optimizer: await engine.optimizerState(),
    history: [...history],
    trainMs,
    interval: { ...interval },
  });

  try {
    await engine.restore(params, cfg.optimizer, resume?.optimizer);
    let t0 = performance.now();
    if (done < cfg.iterations) ahead = prepare();
    for (let i = done; i < cfg.iterations; i++) {
      // --- learning rate
      const lr = scheduledRate(cfg.optimizer.schedule, cfg.optimizer.learningRate, i, cfg.iterations);

      // --- forward, backward, update (in this thread or on the workers: the engine's business); the
      // workers have the batch once step() returns, so the next one is prepared while they compute
      const pending = engine.step(ahead!, lr, { seed: cfg.seed, iteration: i, augment: cfg.augment });
      ahead = i + 1 < cfg.iterations ? prepare() : undefined;
      const { loss: lossNumber, correct: correctNumber } = await pending;
      const dt = performance.now() - t0;
      if (!Number.isFinite(lossNumber)) {
        throw new TrainingError(
          'LOSS_NOT_FINITE',
          `iteration ${i + 1}: the loss is ${lossNumber}; training diverged. The learning rate (${lr.toPrecision(3)}) is the likely cause: try a smaller --learning-rate`,
        );
      }
      trainMs += dt;
      interval.ms += dt;
      interval.loss += lossNumber;
      interval.correct += correctNumber;
      interval.steps += 1;
      const iteration = (done = i + 1);
      hooks.onStep?.(iteration, cfg.iterations);

      // --- logging and validation
      const last = iteration === cfg.iterations;
      if (iteration % cfg.logEvery === 0 || last) {
        const entry: HistoryEntry = {
          iteration,
          loss: interval.loss / interval.steps,
          batchAccuracy: interval.correct / (interval.steps * cfg.batchSize),
          imagesPerSecond: (interval.steps * cfg.batchSize) / (interval.ms / 1000),
          learningRate: lr,
        };
        if ((cfg.validateEvery > 0 && iteration % cfg.validateEvery === 0) || last) {
          validation = await validate();
          entry.validationAccuracy = validation.accuracy;
        }
        history.push(entry);
        hooks.onLog?.(entry, cfg.iterations);
        if (entry.validationAccuracy !== undefined) hooks.onValidate?.(iteration, cfg.iterations, validation!);
        Object.assign(interval, { loss: 0, correct: 0, steps: 0, ms: 0 });
      }

      // --- checkpoint, or stop when asked to (after a whole step, so nothing is half-applied)
      stopped = !last && (options.shouldStop?.() ?? false);
      const every = options.checkpointEvery ?? 0;
      if (options.onCheckpoint && (stopped || (every > 0 && iteration % every === 0 && !last))) {
        engine.weights(params);
        await options.onCheckpoint(await state());
      }
      if (stopped) break;
      t0 = performance.now(); // logging, validation and checkpoints are not training time
    }
    engine.weights(params);
    validation ??= await validate();
  } finally {
    if (options.engine === undefined) await engine.close(); // frees the optimizer state, never a caller's pool
  }
  return {
    history,
    iterations: done,
    stopped,
    trainSeconds: trainMs / 1000,
    trainImagesPerSecond: (done * cfg.batchSize) / (trainMs / 1000 || 1),
    validation,
  };
}
