/**
 * Seeded randomness and mini-batches. Same seed → same numbers → same data order, on every platform:
 * the generator is pure 32-bit integer arithmetic (`Math.imul`, shifts), no `Math.random`.
 */
import { UsageError, formatCount } from '../errors.ts';
import type { LabeledImages } from './idx.ts';

const TWO_POW_32 = 0x1_0000_0000;

/**
 * sfc32 (Chris Doty-Humphrey's "small fast chaotic" generator, from PractRand), seeded by splitmix32.
 * 128 bits of state, passes BigCrush/PractRand, and its state fits in four JSON numbers.
 */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  /** `seed` is any number; it is reduced to a 32-bit integer. */
  constructor(seed: number) {
    // splitmix32 spreads one 32-bit seed over three state words, so nearby seeds give unrelated streams.
    let s = seed >>> 0;
    const splitmix32 = (): number => {
      s = (s + 0x9e3779b9) | 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
      z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
      return (z ^ (z >>> 15)) >>> 0;
    };
    this.a = splitmix32();
    this.b = splitmix32();
    this.c = splitmix32();
    this.d = 1; // sfc's counter: guarantees a period of at least 2^32
    for (let i = 0; i < 12; i++) this.uint32(); // the reference seeding discards the first 12 outputs
  }

  /** A uniform 32-bit unsigned integer. */
  uint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform in [0, 1), with 32 bits of resolution. */
  next(): number {
    return this.uint32() / TWO_POW_32;
  }

  /** Uniform integer in [0, n), unbiased (rejects the top sliver of the 32-bit range). 1 ≤ n ≤ 2^32. */
  int(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > TWO_POW_32) {
      throw new RangeError(`Rng.int: n must be an integer in [1, 2^32], got ${n}`);
    }
    const limit = TWO_POW_32 - (TWO_POW_32 % n);
    let x = this.uint32();
    while (x >= limit) x = this.uint32();
    return x % n;
  }

  /**
   * Standard normal, by Box–Muller (one of the pair is discarded, so the state stays four integers).
   * Bit-exact wherever `Math.log`/`Math.cos` are (every V8, i.e. Node and Chromium, uses the same fdlibm port).
   */
  normal(): number {
    const u1 = 1 - this.next(); // (0, 1]: log(0) would be -Infinity
    const u2 = this.next();
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }

  /** Normal with mean 0 and `stddev`, redrawn while more than 2 stddev out (as `tf.truncatedNormal`). */
  truncatedNormal(stddev: number): number {
    let x = this.normal();
    while (Math.abs(x) > 2) x = this.normal();
    return x * stddev;
  }

  /**
   * A generator for one use of one step, e.g. `Rng.derive(seed, iteration, STREAM_DROPOUT)`: randomness that
   * depends only on its coordinates needs nothing saved in a checkpoint and is the same however a batch is
   * split between workers. The parts are hashed together (FNV-1a over 32-bit words, then a murmur3 finaliser).
   */
  static derive(...parts: number[]): Rng {
    let h = 0x811c9dc5;
    for (const part of parts) {
      h = Math.imul(h ^ (part >>> 0), 0x01000193);
      h ^= h >>> 16;
      h = Math.imul(h, 0x85ebca6b);
      h ^= h >>> 13;
    }
    return new Rng(h >>> 0);
  }

  /** The full generator state, four uint32s, for checkpoints. */
  state(): number[] {
    return [this.a >>> 0, this.b >>> 0, this.c >>> 0, this.d >>> 0];
  }

  /** A generator that continues exactly where the one that produced `s` (via `state()`) was. */
  static fromState(s: readonly number[]): Rng {
    if (s.length !== 4 || s.some((w) => !Number.isInteger(w) || w < 0 || w >= TWO_POW_32)) {
      throw new UsageError('BAD_RNG_STATE', `Rng state must be four uint32 numbers, got ${JSON.stringify(s)} — the checkpoint is corrupt`);
    }
    const rng = new Rng(0);
    [rng.a, rng.b, rng.c, rng.d] = s.map((w) => w | 0);
    return rng;
  }
}

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

  constructor(
    private readonly data: LabeledImages,
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
  static fromState(data: LabeledImages, batchSize: number, s: SamplerState): BatchSampler {
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
      throw new UsageError('BAD_SAMPLER_STATE', `the saved batch order does not fit a data set of ${formatCount(n)} examples — the checkpoint is corrupt or from other data`);
    }
    this.order.set(s.order);
    this.position = s.position;
    this.epoch = s.epoch;
  }

  /** The next `batchSize` examples, copied out of the data set. */
  next(): Batch {
    const { batchSize, pixels, data } = this;
    const images = new Float32Array(batchSize * pixels); // [B, H, W, C]
    const labels = new Uint8Array(batchSize);
    const indices = new Uint32Array(batchSize);
    for (let i = 0; i < batchSize; i++) {
      const k = this.order[this.position];
      indices[i] = k;
      labels[i] = data.labels[k];
      images.set(data.images.subarray(k * pixels, (k + 1) * pixels), i * pixels);
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
