/**
 * Mini-batches: a seeded sampler over a data set (same seed → same data order). The generator is in rng.ts.
 */
import { UsageError, formatCount } from '../errors.ts';
import { copyImageFloats, type ImageSet } from './images.ts';
import { Rng } from './rng.ts';

/** Re-exported for older imports; new code imports it from rng.ts. */
export { Rng };

/** A BatchSampler's position in its data, as plain JSON. */
export interface SamplerState {
  /** The current epoch's permutation of example indices. */
  order: number[];
  position: number;
  epoch: number;
  /** The generator that will shuffle the next epochs. */
  rng: number[];
}

/** One mini-batch. `images` and `labels` are fresh arrays the caller may keep. */
export interface Batch {
  /** batch*H*W*C pixels, NHWC. */
  images: Float32Array;
  /** batch class indices. */
  labels: Uint8Array;
  /** Which examples of the data set these are. */
  indices: Uint32Array;
}

/**
 * Epoch-wise shuffled mini-batches: each epoch is a fresh Fisher–Yates permutation, so every example is seen
 * exactly once per epoch. A batch that runs past the end of an epoch continues into the next permutation.
 */
export class BatchSampler {
  /** Completed epochs: the number of full passes over the data so far. */
  epoch = 0;
  /** Index into the current epoch's permutation of the next example to draw. */
  position = 0;

  private readonly order: Uint32Array;
  private readonly pixels: number; // per example: H*W*C
  /** Where the last `next()` started; the order and generator too when that batch reshuffled them. */
  private before: { position: number; epoch: number; order?: Uint32Array; rng?: number[] } | undefined;

  constructor(
    private readonly data: ImageSet,
    readonly batchSize: number,
    private readonly rng: Rng,
    restore?: SamplerState,
  ) {
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new UsageError('BAD_BATCH_SIZE', `batch size must be a positive integer, got ${batchSize}`);
    }
    if (data.count < 1) {
      throw new UsageError('EMPTY_DATA_SET', 'cannot draw batches from an empty data set — check the data size options');
    }
    this.pixels = data.height * data.width * data.channels;
    this.order = new Uint32Array(data.count);
    if (restore) {
      this.restore(restore);
      return;
    }
    for (let i = 0; i < data.count; i++) this.order[i] = i;
    this.shuffle();
  }

  /** Everything needed to continue drawing exactly the same batches later (for checkpoints). */
  state(): SamplerState {
    return { order: Array.from(this.order), position: this.position, epoch: this.epoch, rng: this.rng.state() };
  }

  /** A sampler that continues exactly where the one that produced `s` (via `state()`) was. */
  static fromState(data: ImageSet, batchSize: number, s: SamplerState): BatchSampler {
    return new BatchSampler(data, batchSize, Rng.fromState(s.rng), s);
  }

  private restore(s: SamplerState): void {
    const n = this.data.count;
    const seen = new Uint8Array(n);
    const valid =
      Array.isArray(s.order) &&
      s.order.length === n &&
      s.order.every((k) => Number.isInteger(k) && k >= 0 && k < n && seen[k]++ === 0) &&
      Number.isInteger(s.position) &&
      s.position >= 0 &&
      s.position < n &&
      Number.isInteger(s.epoch) &&
      s.epoch >= 0;
    if (!valid) {
      throw new UsageError(
        'BAD_SAMPLER_STATE',
        `the saved batch order does not fit a data set of ${formatCount(n)} examples — the checkpoint is corrupt or from other data`,
      );
    }
    this.order.set(s.order);
    this.position = s.position;
    this.epoch = s.epoch;
  }

  /**
   * The state as it was before the last `next()`, for a caller that draws one batch ahead (the training
   * loop): resuming from it draws that batch again. Cheap, except after a batch that crossed an epoch.
   */
  stateBeforeLast(): SamplerState {
    const b = this.before;
    if (b === undefined) return this.state();
    return { order: Array.from(b.order ?? this.order), position: b.position, epoch: b.epoch, rng: b.rng ?? this.rng.state() };
  }

  /** The next `batchSize` examples, copied out of the data set (as floats, whichever form it keeps). */
  next(): Batch {
    const { batchSize, pixels, data } = this;
    // a batch that reaches the end of the epoch reshuffles: keep what it changes (once per epoch)
    const crosses = this.position + batchSize >= data.count;
    this.before = {
      position: this.position,
      epoch: this.epoch,
      ...(crosses ? { order: this.order.slice(), rng: this.rng.state() } : {}),
    };
    const images = new Float32Array(batchSize * pixels); // [B, H, W, C]
    const labels = new Uint8Array(batchSize);
    const indices = new Uint32Array(batchSize);
    for (let i = 0; i < batchSize; i++) {
      const k = this.order[this.position];
      indices[i] = k;
      labels[i] = data.labels[k];
      copyImageFloats(data, k, images, i * pixels);
      if (++this.position === data.count) {
        this.epoch++;
        this.position = 0;
        this.shuffle();
      }
    }
    return { images, labels, indices };
  }

  /** Epochs as a fraction, e.g. 2.5 = halfway through the third pass. */
  get epochs(): number {
    return this.epoch + this.position / this.data.count;
  }

  /** Fisher–Yates (Durstenfeld): swap each slot from the end with a uniformly chosen earlier-or-same slot. */
  private shuffle(): void {
    const order = this.order;
    for (let i = order.length - 1; i > 0; i--) {
      const j = this.rng.int(i + 1);
      const tmp = order[i];
      order[i] = order[j];
      order[j] = tmp;
    }
  }
}
