/**
 * Seeded randomness: same seed → same numbers, on every platform. The generator is pure 32-bit integer
 * arithmetic (`Math.imul`, shifts), no `Math.random`. Used by the initial weights, the batch order,
 * augmentation, dropout masks and the hyperparameter search.
 */
import { UsageError } from '../errors.ts';

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
