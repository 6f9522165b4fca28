/**
 * Training in the page, one step at a time so the page stays responsive and can pause: the library's
 * step (src/train/step.ts: the same gradients and the same Adam update, src/train/flat.ts, as
 * `convlab train` runs in one thread and on its workers), batches
 * (src/data/batches.ts) and evaluation (src/eval/classify.ts). Progress goes out through `hooks`; this
 * module draws nothing.
 */
import type { ImageSet } from '../../src/data/images.ts';
import { BatchSampler } from '../../src/data/batches.ts';
import { Rng } from '../../src/data/rng.ts';
import { defaults, type NetworkConfig } from '../../src/model/config.ts';
import { disposeParams } from '../../src/model/cnn.ts';
import { evaluate } from '../../src/eval/classify.ts';
import { InThreadStep } from '../../src/train/step.ts';
import { freshNetwork, type Network } from './network.ts';

export interface TrainSettings {
  batchSize: number;
  learningRate: number;
  /** Seeds the initial weights and the batch order. */
  seed: number;
  /** Measure validation accuracy every this many steps. */
  validateEvery: number;
}

export interface StepReport {
  step: number;
  loss: number;
  batchAccuracy: number;
  /** Passes over the training examples so far. */
  epochs: number;
  imagesPerSecond: number;
}

export interface TrainerHooks {
  onStep(report: StepReport): void;
  onValidate(step: number, accuracy: number): void;
  onError(error: Error): void;
}

export class BrowserTrainer {
  readonly network: Network;
  step = 0;
  /** The library's step, with Adam at its defaults (β1, β2, ε) and the page's learning rate. */
  private readonly inThread: InThreadStep;
  private readonly sampler: BatchSampler;
  private running = false;
  private loop: Promise<void> = Promise.resolve();
  private disposed = false;

  constructor(
    net: NetworkConfig,
    private readonly data: { train: ImageSet; validation: ImageSet },
    private readonly settings: TrainSettings,
    private readonly hooks: TrainerHooks,
  ) {
    this.network = freshNetwork(net, settings.seed);
    const adam = { ...defaults.optimizer.adam, learningRate: settings.learningRate, schedule: { type: 'constant' } } as const;
    this.inThread = new InThreadStep(net, this.network.params, adam);
    this.sampler = new BatchSampler(data.train, settings.batchSize, new Rng(settings.seed + 1));
  }

  get isRunning(): boolean {
    return this.running;
  }

  /** Starts or resumes; returns at once (the steps run in the background). */
  resume(): void {
    if (this.running || this.disposed) return;
    this.running = true;
    this.loop = this.run();
  }

  /** Stops after the current step; resolves once it has. */
  async pause(): Promise<void> {
    this.running = false;
    await this.loop;
  }

  async dispose(): Promise<void> {
    await this.pause();
    if (this.disposed) return;
    this.disposed = true;
    disposeParams(this.network.params);
  }

  /** Accuracy on the validation examples now. */
  validate(): number {
    return evaluate(this.network.net, this.network.params, this.data.validation, 250).accuracy;
  }

  private async run(): Promise<void> {
    try {
      while (this.running) {
        await this.trainStep();
        if (this.step % this.settings.validateEvery === 0) this.hooks.onValidate(this.step, this.validate());
        await new Promise((resolve) => setTimeout(resolve, 0)); // let the page draw and handle input
      }
    } catch (err) {
      this.running = false;
      this.hooks.onError(err as Error);
    }
  }

  private async trainStep(): Promise<void> {
    const { batchSize, learningRate } = this.settings;
    const t0 = performance.now();

    // --- forward, backward, update
    const { loss, correct } = await this.inThread.step(this.sampler.next(), learningRate);
    if (!Number.isFinite(loss)) {
      throw new Error(`step ${this.step + 1}: the loss is ${loss}; training diverged — reset and pick a smaller learning rate`);
    }

    // --- report
    this.step += 1;
    this.hooks.onStep({
      step: this.step,
      loss,
      batchAccuracy: correct / batchSize,
      epochs: this.sampler.epochs,
      imagesPerSecond: batchSize / ((performance.now() - t0) / 1000),
    });
  }
}
