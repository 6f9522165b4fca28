/**
 * The rules for changing a config's training recipe from outside it — `convlab train`'s flags and
 * `convlab search`'s trials — in one place:
 *
 * - a new starting learning rate keeps the schedule's shape: a cosine schedule's final rate scales with it;
 * - a run gets about ten log lines, never fewer than the config's own interval asks for;
 * - `--epochs` becomes iterations of the (possibly overridden) batch size.
 */
import type { AugmentConfig, OptimizerConfig, RunConfig } from '../model/config.ts';

/** What may be set on top of a config (undefined: keep the config's value). */
export interface TrainOverrides {
  batchSize?: number;
  learningRate?: number;
  augment?: AugmentConfig;
  seed?: number;
  iterations?: number;
  /** Passes over the training split; converted to iterations (wins over `iterations`). */
  epochs?: number;
  /** Explicit intervals; without them the log interval follows `logInterval`. */
  logEvery?: number;
  validateEvery?: number;
}

/** `optimizer` starting at `learningRate`; a cosine schedule's final rate is scaled with it. */
export function withLearningRate<T extends OptimizerConfig>(optimizer: T, learningRate: number): T {
  const schedule = optimizer.schedule;
  if (schedule.type !== 'cosine') return { ...optimizer, learningRate };
  return { ...optimizer, learningRate, schedule: { ...schedule, finalLearningRate: (schedule.finalLearningRate / optimizer.learningRate) * learningRate } };
}

/** About ten log lines for a run of `iterations`, or the config's `logEvery` when that is more often. */
export function logInterval(iterations: number, logEvery = Infinity): number {
  return Math.max(1, Math.min(logEvery, Math.ceil(iterations / 10)));
}

/** `run` with `o` applied to its training recipe; `trainCount` (training images) converts epochs. */
export function overrideTrain(run: RunConfig, o: TrainOverrides, trainCount: number): RunConfig {
  const train = { ...run.train, optimizer: { ...run.train.optimizer } };
  if (o.batchSize !== undefined) train.batchSize = o.batchSize;
  if (o.learningRate !== undefined) train.optimizer = withLearningRate(train.optimizer, o.learningRate);
  if (o.augment !== undefined) train.augment = o.augment;
  if (o.seed !== undefined) train.seed = o.seed;
  if (o.iterations !== undefined) train.iterations = o.iterations;
  if (o.epochs !== undefined) train.iterations = Math.ceil((o.epochs * trainCount) / train.batchSize);
  train.logEvery = o.logEvery ?? logInterval(train.iterations, train.logEvery);
  train.validateEvery = o.validateEvery ?? train.validateEvery;
  return { ...run, train };
}
