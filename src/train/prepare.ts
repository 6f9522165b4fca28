/**
 * A step's random changes to its images: augmentation and dropout masks, decided per image. Image k of the
 * batch of iteration i draws from its own streams, Rng.derive(seed, i, STREAM_AUGMENT, k) and
 * Rng.derive(seed, i, STREAM_DROPOUT, k), so a slice of the batch can be prepared anywhere — each training
 * worker prepares its own (worker.ts), the in-thread engine the whole batch (engine.ts) — and 0, 1 or N
 * workers and a resumed run all see exactly the same batch. Nothing of it needs saving in a checkpoint.
 */
import { augmentImage, augmentScratch, isAugmenting } from '../data/augment.ts';
import { Rng } from '../data/rng.ts';
import type { AugmentConfig, NetworkConfig } from '../model/config.ts';
import { drawImageMasks, hasDropout, type MaskArrays } from './dropout.ts';

/** Streams of per-step randomness: Rng.derive(seed, iteration, stream, image). */
export const STREAM_AUGMENT = 1;
export const STREAM_DROPOUT = 2;

/** What decides a step's random changes: the run's seed and augmentation, and the iteration. */
export interface StepRandomness {
  seed: number;
  iteration: number;
  augment: AugmentConfig;
}

/**
 * Prepares images `first .. first+count−1` of the batch of `r.iteration`, given as `images` (NHWC, those
 * images only): augments them in place and returns their dropout masks (undefined without dropout).
 */
export function prepareSlice(net: NetworkConfig, images: Float32Array, count: number, first: number, r: StepRandomness): MaskArrays | undefined {
  const shape = net.input;
  if (isAugmenting(r.augment)) {
    const size = shape.height * shape.width * shape.channels;
    const scratch = augmentScratch(shape);
    for (let j = 0; j < count; j++) {
      augmentImage(images.subarray(j * size, (j + 1) * size), shape, r.augment, Rng.derive(r.seed, r.iteration, STREAM_AUGMENT, first + j), scratch);
    }
  }
  return hasDropout(net) ? drawImageMasks(net, count, (j) => Rng.derive(r.seed, r.iteration, STREAM_DROPOUT, first + j)) : undefined;
}
