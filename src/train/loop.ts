/**
 * The training loop: sample a batch, augment it, draw dropout masks, forward, loss, gradients, optimizer
 * update; log at fixed intervals. Side effects (progress bars, charts) come in through `hooks`; this module
 * prints nothing. Every random choice of a step comes from (seed, iteration), so resuming needs only the
 * sampler's state and the optimizer's.
 */
import * as tf from '@tensorflow/tfjs';
import type { LabeledImages } from '../data/idx.ts';
import { BatchSampler, type SamplerState } from '../data/batches.ts';
import { Rng } from '../data/rng.ts';
import { augmentBatch, isAugmenting } from '../data/augment.ts';
import { classCount, weightSpecs, type NetworkConfig, type OptimizerConfig, type RunConfig } from '../model/config.ts';
import { forward, loss as lossFn, type DropoutMasks, type Params } from '../model/cnn.ts';
import { evaluatePredictions, type Evaluation } from '../eval/metrics.ts';
import { TrainingError } from '../errors.ts';
import { Adam } from './adam.ts';
import { RmsProp } from './rmsprop.ts';
import { Sgd } from './sgd.ts';
import { scheduledRate, type Optimizer, type OptimizerState } from './optimizer.ts';
import { drawDropoutMasks, hasDropout, maskTensors, type MaskArrays } from './dropout.ts';
import type { GradientPool } from './parallel.ts';
import { paramLayout } from './flat.ts';

/** Streams of per-step randomness: Rng.derive(seed, iteration, stream). */
export const STREAM_AUGMENT = 1;
export const STREAM_DROPOUT = 2;

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
  /** Compute each step's gradients on worker threads (see parallel.ts) instead of in this thread. */
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
  train: LabeledImages;
  validation: LabeledImages;
}

/** Turns a Float32Array of B images into an NHWC tensor. */
export function imagesTensor(images: Float32Array, count: number, d: LabeledImages): tf.Tensor4D {
  return tf.tensor4d(images, [count, d.height, d.width, d.channels]);
}

/** The update rule a config names. */
export function makeOptimizer(config: OptimizerConfig): Optimizer {
  switch (config.type) {
    case 'adam':
      return new Adam({ beta1: config.beta1, beta2: config.beta2, epsilon: config.epsilon });
    case 'sgd':
      return new Sgd({ momentum: config.momentum, nesterov: config.nesterov });
    case 'rmsprop':
      return new RmsProp({ rho: config.rho, momentum: config.momentum, epsilon: config.epsilon });
  }
}

/**
 * One optimisation step's gradients: returns the loss, the number of correct predictions in the batch,
 * and dLoss/dParam for every parameter. The caller owns (and must dispose) the gradient tensors.
 * `masks` (training with dropout) are the batch's dropout masks.
 */
export function computeGradients(
  net: NetworkConfig,
  params: Params,
  x: tf.Tensor4D,
  labels: tf.Tensor1D,
  masks?: DropoutMasks,
): { loss: tf.Scalar; correct: tf.Scalar; grads: Map<string, tf.Tensor> } {
  let correct: tf.Scalar | undefined;
  const { value, grads } = tf.variableGrads(() => {
    const logits = forward(net, params, x, undefined, masks); // [B,classes]
    correct = tf.keep(tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), labels), 'int32'))) as tf.Scalar;
    return lossFn(logits, labels);
  }, [...params.values()]);
  const byName = new Map<string, tf.Tensor>();
  for (const [name, v] of params) byName.set(name, grads[v.name]);
  return { loss: value as tf.Scalar, correct: correct!, grads: byName };
}

/** Trains `params` in place. Throws TrainingError on a non-finite loss. */
export async function train(
  run: RunConfig,
  params: Params,
  data: TrainData,
  hooks: TrainHooks = {},
  options: TrainOptions = {},
): Promise<TrainResult> {
  const { network: net, train: cfg } = run;
  const resume = options.resume;
  // The init used `seed`; batches draw from their own stream.
  const sampler = resume
    ? BatchSampler.fromState(data.train, cfg.batchSize, resume.sampler)
    : new BatchSampler(data.train, cfg.batchSize, new Rng(cfg.seed + 1));
  const pool = options.pool;
  // With workers the weights live in the pool's shared memory and the workers update them (parallel.ts);
  // `params` is brought up to date whenever someone outside the loop may read it (checkpoint, the end).
  const optimizer = pool ? undefined : makeOptimizer(cfg.optimizer);
  if (pool) {
    pool.publish(flattenParams(net, params));
    await pool.useOptimizer(cfg.optimizer, resume?.optimizer);
  } else if (resume) optimizer!.importState(resume.optimizer, params);
  const syncParams = () => {
    if (pool) assignFlat(net, params, pool.readWeights());
  };
  const validate = async () => (pool ? evaluateOnPool(net, pool, data.validation) : evaluate(net, params, data.validation));
  const dropout = hasDropout(net);
  const history: HistoryEntry[] = resume ? [...resume.history] : [];
  let trainMs = resume?.trainMs ?? 0;
  const interval = { ...(resume?.interval ?? { loss: 0, correct: 0, steps: 0, ms: 0 }) };
  let validation: Evaluation | undefined;
  let done = resume?.iteration ?? 0;
  let stopped = false;

  const state = async (): Promise<TrainState> => ({
    iteration: done,
    sampler: sampler.state(),
    optimizer: pool ? await pool.optimizerState() : optimizer!.exportState(),
    history: [...history],
    trainMs,
    interval: { ...interval },
  });

  try {
    for (let i = done; i < cfg.iterations; i++) {
      // --- learning rate
      const lr = scheduledRate(cfg.optimizer.schedule, cfg.optimizer.learningRate, i, cfg.iterations);

      // --- batch, augmentation and dropout masks, all decided here for the whole batch
      const t0 = performance.now();
      const batch = sampler.next();
      const n = batch.labels.length;
      if (isAugmenting(cfg.augment)) augmentBatch(batch.images, n, data.train, cfg.augment, Rng.derive(cfg.seed, i, STREAM_AUGMENT));
      const masks = dropout ? drawDropoutMasks(net, n, Rng.derive(cfg.seed, i, STREAM_DROPOUT)) : undefined;

      // --- forward, backward, update
      const { loss: lossNumber, correct: correctNumber } = pool
        ? await pool.step(batch.images, batch.labels, lr, masks)
        : localStep(net, params, optimizer!, imagesTensor(batch.images, n, data.train), batch.labels, lr, masks);
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
        syncParams();
        await options.onCheckpoint(await state());
      }
      if (stopped) break;
    }
  } finally {
    optimizer?.dispose();
  }
  syncParams();
  if (!stopped) validation ??= await validate();
  return {
    history,
    iterations: done,
    stopped,
    trainSeconds: trainMs / 1000,
    trainImagesPerSecond: (done * cfg.batchSize) / (trainMs / 1000 || 1),
    validation: validation ?? (await validate()),
  };
}

/** One step in this thread: gradients and the optimizer's update. */
function localStep(net: NetworkConfig, params: Params, optimizer: Optimizer, x: tf.Tensor4D, labels: Uint8Array, lr: number, masks?: MaskArrays) {
  const [loss, correct] = tf.tidy(() => {
    const y = tf.tensor1d(labels, 'int32');
    const g = computeGradients(net, params, x, y, masks && maskTensors(net, masks, labels.length));
    optimizer.apply(params, g.grads, lr);
    return [g.loss, g.correct];
  });
  x.dispose();
  const result = { loss: loss.dataSync()[0], correct: correct.dataSync()[0] };
  tf.dispose([loss, correct]);
  return result;
}

/** All parameters concatenated in weightSpecs order. */
export function flattenParams(net: NetworkConfig, params: Params): Float32Array {
  const specs = weightSpecs(net);
  const out = new Float32Array(specs.reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0));
  let offset = 0;
  for (const { name } of specs) {
    const values = params.get(name)!.dataSync() as Float32Array;
    out.set(values, offset);
    offset += values.length;
  }
  return out;
}

/** Writes the flat weights (weightSpecs order) into `params`. */
export function assignFlat(net: NetworkConfig, params: Params, flat: Float32Array): void {
  for (const { name, shape, offset, size } of paramLayout(net)) {
    const values = tf.tensor(flat.slice(offset, offset + size), shape);
    params.get(name)!.assign(values);
    values.dispose();
  }
}

/** Like `evaluate`, with the slices classified in parallel on the pool's workers (with its current weights). */
export async function evaluateOnPool(net: NetworkConfig, pool: GradientPool, data: LabeledImages): Promise<Evaluation> {
  return evaluatePredictions(await pool.predict(data.images, data.count), data.labels, classCount(net));
}

/** Classifies every image of `data` in batches and scores the predictions. */
export function evaluate(net: NetworkConfig, params: Params, data: LabeledImages, batchSize = 500): Evaluation {
  const predictions = new Uint8Array(data.count);
  const pixels = data.height * data.width * data.channels;
  for (let start = 0; start < data.count; start += batchSize) {
    const n = Math.min(batchSize, data.count - start);
    const classes = tf.tidy(() => {
      const x = imagesTensor(data.images.subarray(start * pixels, (start + n) * pixels), n, data);
      return tf.argMax(forward(net, params, x), 1);
    });
    predictions.set(classes.dataSync(), start);
    classes.dispose();
  }
  return evaluatePredictions(predictions, data.labels, classCount(net));
}
