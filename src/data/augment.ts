/**
 * Data augmentation: random changes to each training image so the network sees more variety than the data
 * set holds. Digits get small shifts (a digit moved by two pixels is the same digit); CIFAR images get the
 * usual "pad by 4, crop a random 32x32" (the same as a shift of up to 4 with zero fill) and left-right
 * mirroring (a mirrored cat is a cat; a mirrored 2 is not a 2, so digits are never flipped).
 *
 * The training loop draws the randomness from (seed, iteration) and augments the whole batch in the main
 * thread before splitting it between workers, so runs are reproducible, resumable and worker-count free.
 */
import type { AugmentConfig } from '../model/config.ts';
import type { Rng } from './batches.ts';

export interface ImageShape {
  height: number;
  width: number;
  channels: number;
}

export function isAugmenting(a: AugmentConfig): boolean {
  return a.shift > 0 || a.flip;
}

/**
 * Augments `count` NHWC images in place. Per image, in this order: a flip (if enabled, probability 1/2),
 * then a shift by dx, dy uniform in [−shift, shift]; pixels shifted in from outside are 0.
 */
export function augmentBatch(images: Float32Array, count: number, shape: ImageShape, augment: AugmentConfig, rng: Rng): void {
  const { height: h, width: w, channels: c } = shape;
  const size = h * w * c;
  const scratch = new Float32Array(size);
  const s = augment.shift;
  for (let n = 0; n < count; n++) {
    const flip = augment.flip && rng.int(2) === 1;
    const dx = s > 0 ? rng.int(2 * s + 1) - s : 0;
    const dy = s > 0 ? rng.int(2 * s + 1) - s : 0;
    if (!flip && dx === 0 && dy === 0) continue;
    const image = images.subarray(n * size, (n + 1) * size);
    scratch.fill(0);
    // out(y, x) = in(y − dy, x' − dx), where x' mirrors x when flipping.
    for (let y = 0; y < h; y++) {
      const sy = y - dy;
      if (sy < 0 || sy >= h) continue;
      for (let x = 0; x < w; x++) {
        let sx = x - dx;
        if (sx < 0 || sx >= w) continue;
        if (flip) sx = w - 1 - sx;
        const from = (sy * w + sx) * c;
        const to = (y * w + x) * c;
        for (let k = 0; k < c; k++) scratch[to + k] = image[from + k];
      }
    }
    image.set(scratch);
  }
}
