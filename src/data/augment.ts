/**
 * Data augmentation: random changes to each training image so the network sees more variety than the data
 * set holds. Digits get small shifts (a digit moved by two pixels is the same digit); CIFAR images get the
 * usual "pad by 4, crop a random 32x32" (the same as a shift of up to 4 with zero fill) and left-right
 * mirroring (a mirrored cat is a cat; a mirrored 2 is not a 2, so digits are never flipped).
 *
 * For pictures of real handwriting the default recipe also warps each digit the way a different writer or
 * a tilted camera would, after the preprocessing in predict/ has done what it can (box, centre, stroke width):
 * - a small rotation and a change of scale (an affine map, sampled bilinearly);
 * - an elastic distortion: a smooth random displacement field (Simard, Steinkraus & Platt, "Best practices
 *   for convolutional neural networks applied to visual document analysis", ICDAR 2003). Simard smooths a
 *   per-pixel random field with a Gaussian; here the field is random on a coarse 4x4 grid of control points
 *   and bilinearly interpolated between them, which is as smooth and costs 16 draws instead of 2x784;
 * - a change of stroke thickness: a fraction of a 4-neighbour dilation (thicker pen) or erosion (thinner).
 * All of it costs well under a millisecond per batch of 64 (measured in test/data/augment.test.ts).
 *
 * The training loop gives each image of a step its own random stream, derived from (seed, iteration, position
 * in the batch), and each training worker augments its own slice (train/prepare.ts): runs are reproducible,
 * resumable and the same on any number of workers, and the work is split between the cores.
 */
import type { AugmentConfig } from '../model/config.ts';
import type { Rng } from './batches.ts';

export interface ImageShape {
  height: number;
  width: number;
  channels: number;
}

/** True when the warp (rotation, scale, elastic, thickness) is on, beyond integer shifts and flips. */
function isWarping(a: AugmentConfig): boolean {
  return (a.rotate ?? 0) > 0 || (a.scale ?? 0) > 0 || (a.elastic ?? 0) > 0 || (a.thickness ?? 0) > 0;
}

export function isAugmenting(a: AugmentConfig): boolean {
  return a.shift > 0 || a.flip || isWarping(a);
}

/**
 * Augments `count` NHWC images in place. Without the warp options, per image and in this order: a flip
 * (if enabled, probability 1/2), then a shift by dx, dy uniform integers in [−shift, shift]; pixels shifted
 * in from outside are 0. With any warp option, see `warpImage` (the shift is then sub-pixel).
 */
export function augmentBatch(images: Float32Array, count: number, shape: ImageShape, augment: AugmentConfig, rng: Rng): void {
  const scratch = augmentScratch(shape);
  const size = shape.height * shape.width * shape.channels;
  for (let n = 0; n < count; n++) augmentImage(images.subarray(n * size, (n + 1) * size), shape, augment, rng, scratch);
}

/** Work space for `augmentImage`: two images' worth, reused across calls. */
export interface AugmentScratch {
  out: Float32Array;
  tmp: Float32Array;
}

export function augmentScratch(shape: ImageShape): AugmentScratch {
  const size = shape.height * shape.width * shape.channels;
  return { out: new Float32Array(size), tmp: new Float32Array(size) };
}

/**
 * One image in place, its random choices drawn from `rng` (see augmentBatch). The training loop gives every
 * image of a batch its own stream, derived from (seed, iteration, position in the batch), so whichever
 * thread augments it, and whatever the rest of the batch is, it comes out the same.
 */
export function augmentImage(image: Float32Array, shape: ImageShape, augment: AugmentConfig, rng: Rng, scratch: AugmentScratch): void {
  if (isWarping(augment)) {
    warpImage(image, shape, augment, rng, scratch.out, scratch.tmp);
    return;
  }
  const { height: h, width: w, channels: c } = shape;
  const s = augment.shift;
  const flip = augment.flip && rng.int(2) === 1;
  const dx = s > 0 ? rng.int(2 * s + 1) - s : 0;
  const dy = s > 0 ? rng.int(2 * s + 1) - s : 0;
  if (!flip && dx === 0 && dy === 0) return;
  const out = scratch.out;
  out.fill(0);
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
      for (let k = 0; k < c; k++) out[to + k] = image[from + k];
    }
  }
  image.set(out);
}

/** Side of the coarse grid of control points of the elastic field (GRID x GRID over the image). */
const GRID = 4;

/**
 * One image, in place: thickness change, then out(p) = in(A⁻¹(p − c − t) + c + e(p)) sampled bilinearly
 * (0 outside), where c is the image centre, A a rotation by θ ∈ [−rotate, rotate]° times a scale
 * 1 + u, u ∈ [−scale, scale], t a shift uniform in [−shift, shift]² and e(p) the elastic field with each
 * control point's displacement uniform in [−elastic, elastic]² pixels. Flips, if enabled, mirror first.
 * Draws: flip?, thickness, θ, u, tx, ty, then 2·GRID² field values, always the same number per image.
 */
function warpImage(image: Float32Array, shape: ImageShape, a: AugmentConfig, rng: Rng, out: Float32Array, tmp: Float32Array): void {
  const { height: h, width: w, channels: c } = shape;
  const uniform = (r: number) => (2 * rng.next() - 1) * r;
  const flip = a.flip && rng.int(2) === 1;
  const thick = uniform(a.thickness ?? 0);
  const theta = (uniform(a.rotate ?? 0) * Math.PI) / 180;
  const s = 1 + uniform(a.scale ?? 0);
  const tx = uniform(a.shift),
    ty = uniform(a.shift);
  const e = a.elastic ?? 0;
  const field = new Float32Array(2 * GRID * GRID);
  for (let i = 0; i < field.length; i++) field[i] = uniform(e);

  // thickness: v + |t|·(max or min of the 4-neighbourhood − v), per channel (outside the image is 0)
  let src = image;
  if (thick !== 0) {
    const k = Math.abs(thick),
      grow = thick > 0,
      row = w * c;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        for (let ch = 0; ch < c; ch++) {
          const at = (y * w + x) * c + ch,
            v = image[at];
          const up = y > 0 ? image[at - row] : 0,
            down = y < h - 1 ? image[at + row] : 0;
          const left = x > 0 ? image[at - c] : 0,
            right = x < w - 1 ? image[at + c] : 0;
          const m = grow ? Math.max(v, up, down, left, right) : Math.min(v, up, down, left, right);
          tmp[at] = v + k * (m - v);
        }
      }
    }
    src = tmp;
  }

  // inverse map: rotate by −θ and scale by 1/s
  const cos = Math.cos(theta) / s,
    sin = Math.sin(theta) / s;
  const cx = (w - 1) / 2,
    cy = (h - 1) / 2;
  const gx = (GRID - 1) / Math.max(w - 1, 1),
    gy = (GRID - 1) / Math.max(h - 1, 1);
  for (let y = 0; y < h; y++) {
    const fy = y * gy,
      j0 = Math.min(Math.floor(fy), GRID - 2),
      ay = fy - j0;
    for (let x = 0; x < w; x++) {
      // elastic displacement at (x, y): bilinear in the control grid
      let ex = 0,
        ey = 0;
      if (e !== 0) {
        const fx = x * gx,
          i0 = Math.min(Math.floor(fx), GRID - 2),
          ax = fx - i0;
        const q00 = 2 * (j0 * GRID + i0),
          q01 = q00 + 2,
          q10 = q00 + 2 * GRID,
          q11 = q10 + 2;
        const w00 = (1 - ay) * (1 - ax),
          w01 = (1 - ay) * ax,
          w10 = ay * (1 - ax),
          w11 = ay * ax;
        ex = w00 * field[q00] + w01 * field[q01] + w10 * field[q10] + w11 * field[q11];
        ey = w00 * field[q00 + 1] + w01 * field[q01 + 1] + w10 * field[q10 + 1] + w11 * field[q11 + 1];
      }
      const px = x - cx - tx,
        py = y - cy - ty;
      let sx = cos * px + sin * py + cx + ex;
      const sy = -sin * px + cos * py + cy + ey;
      if (flip) sx = w - 1 - sx;
      const x0 = Math.floor(sx),
        y0 = Math.floor(sy),
        bx = sx - x0,
        by = sy - y0;
      const in00 = y0 >= 0 && y0 < h && x0 >= 0 && x0 < w,
        in01 = y0 >= 0 && y0 < h && x0 + 1 >= 0 && x0 + 1 < w;
      const in10 = y0 + 1 >= 0 && y0 + 1 < h && x0 >= 0 && x0 < w,
        in11 = y0 + 1 >= 0 && y0 + 1 < h && x0 + 1 >= 0 && x0 + 1 < w;
      const b00 = (1 - by) * (1 - bx),
        b01 = (1 - by) * bx,
        b10 = by * (1 - bx),
        b11 = by * bx;
      const base = (y0 * w + x0) * c,
        to = (y * w + x) * c;
      for (let ch = 0; ch < c; ch++) {
        out[to + ch] =
          (in00 ? b00 * src[base + ch] : 0) +
          (in01 ? b01 * src[base + c + ch] : 0) +
          (in10 ? b10 * src[base + w * c + ch] : 0) +
          (in11 ? b11 * src[base + w * c + c + ch] : 0);
      }
    }
  }
  image.set(out);
}
