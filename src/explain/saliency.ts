/**
 * Which pixels drove the answer, for one image and one class (the class *score*, the logit before softmax,
 * as in the Grad-CAM paper: softmax would mix in every other class).
 *
 * - gradient × input (Shrikumar et al. 2016; Ancona et al. 2018): ∂score/∂x · x per pixel, summed over the
 *   colour channels. For a ReLU network with no biases it adds up to the score itself, so its sign reads
 *   "this ink pushed towards the class" (positive) or "away from it" (negative).
 * - Grad-CAM (Selvaraju et al. 2017) on the last conv block's output A [h',w',K]: the weight of map k is
 *   the mean of ∂score/∂A_k, and the map is relu(Σ_k α_k A_k), coarse (7x7 for the lesson) and upsampled
 *   bilinearly to the input.
 *
 * Both use TensorFlow.js autodiff on convlab's own `forward` (src/model/cnn.ts), so the page, the report
 * and the tests compute the same thing. No Node imports: the page imports this module.
 */
import * as tf from '@tensorflow/tfjs';
import { forward, type Activations, type Params } from '../model/cnn.ts';
import type { NetworkConfig } from '../model/config.ts';

export type SaliencyMethod = 'gradient-x-input' | 'grad-cam';

export const SALIENCY_LABELS: Record<SaliencyMethod, string> = {
  'gradient-x-input': 'gradient × input',
  'grad-cam': 'Grad-CAM (last conv block)',
};

export interface SaliencyMap {
  method: SaliencyMethod;
  /** The class whose score was explained. */
  class: number;
  height: number;
  width: number;
  /** height*width values, row-major. Signed for gradient × input; ≥ 0 for Grad-CAM. */
  values: Float32Array;
  /** For Grad-CAM: the coarse map on the last conv block's grid, before upsampling. */
  coarse?: { height: number; width: number; values: Float32Array };
}

/** The class score (logit) of class `cls` for a batch of one: a scalar. Call inside a tidy. */
function score(logits: tf.Tensor2D, cls: number): tf.Scalar {
  return tf.reshape(tf.slice(logits, [0, cls], [1, 1]), []) as tf.Scalar;
}

function checkClass(net: NetworkConfig, cls: number): void {
  const classes = net.dense[net.dense.length - 1].units;
  if (!Number.isInteger(cls) || cls < 0 || cls >= classes) throw new RangeError(`class must be an integer in 0..${classes - 1}, got ${cls}`);
}

/** ∂score_cls/∂x for one image (height*width*channels values, NHWC): the raw input gradient. */
export function inputGradient(net: NetworkConfig, params: Params, pixels: Float32Array, cls: number): Float32Array {
  checkClass(net, cls);
  const { height, width, channels } = net.input;
  const g = tf.tidy(() => {
    const x = tf.tensor4d(pixels, [1, height, width, channels]);
    return tf.grad((xx) => score(forward(net, params, xx as tf.Tensor4D), cls))(x);
  });
  const values = g.dataSync() as Float32Array; // outside tidy: see TFJS-NOTES "Traps"
  g.dispose();
  return values;
}

/** Gradient × input, summed over colour channels: [height*width], signed. */
export function gradientTimesInput(net: NetworkConfig, params: Params, pixels: Float32Array, cls: number): SaliencyMap {
  const { height, width, channels } = net.input;
  const g = inputGradient(net, params, pixels, cls);
  const values = new Float32Array(height * width);
  for (let i = 0; i < values.length; i++) {
    let s = 0;
    for (let c = 0; c < channels; c++) s += g[i * channels + c] * pixels[i * channels + c];
    values[i] = s;
  }
  return { method: 'gradient-x-input', class: cls, height, width, values };
}

/**
 * Gradient × input for many images (NHWC, concatenated), each for its own class, in batches of `batch`:
 * one backward pass per batch instead of one per image. The images do not interact in the forward pass
 * (no batch statistics; dropout is off outside training), so ∂(Σ_j score_j)/∂x_i = ∂score_i/∂x_i and each
 * map equals `gradientTimesInput` of its image alone. Returns one [height*width] map per image.
 */
export function gradientTimesInputBatch(net: NetworkConfig, params: Params, images: Float32Array, classes: ArrayLike<number>, batch = 64): Float32Array[] {
  const { height, width, channels } = net.input;
  const size = height * width * channels;
  const count = classes.length;
  if (images.length !== count * size) throw new RangeError(`expected ${count} images of ${size} values, got ${images.length} values`);
  for (let i = 0; i < count; i++) checkClass(net, classes[i]);
  const k = net.dense[net.dense.length - 1].units;
  const out: Float32Array[] = [];
  for (let start = 0; start < count; start += batch) {
    const n = Math.min(batch, count - start);
    const maps = tf.tidy(() => {
      const x = tf.tensor4d(images.subarray(start * size, (start + n) * size), [n, height, width, channels]);
      const pick = tf.oneHot(
        tf.tensor1d(
          Array.from({ length: n }, (_, j) => classes[start + j]),
          'int32',
        ),
        k,
      ); // [n,k]
      const g = tf.grad((xx) => tf.sum(tf.mul(forward(net, params, xx as tf.Tensor4D), pick)))(x); // Σ_j score_j
      return tf.sum(tf.mul(g, x), 3); // [n,h,w]: summed over colour channels
    });
    const values = maps.dataSync() as Float32Array; // outside tidy: see TFJS-NOTES "Traps"
    maps.dispose();
    for (let j = 0; j < n; j++) out.push(values.slice(j * height * width, (j + 1) * height * width));
  }
  return out;
}

/**
 * The network after its last conv block: flatten → dense layers → logits, as a network of its own whose
 * input is the block's output. `forward` with no conv blocks is exactly that (same parameter names).
 */
export function headNetwork(net: NetworkConfig, blockShape: [number, number, number]): NetworkConfig {
  return { ...net, input: { height: blockShape[0], width: blockShape[1], channels: blockShape[2] }, conv: [] };
}

/** The last conv block's output A [h',w',K] for one image, and the Grad-CAM channel weights α [K]. */
export function gradCamWeights(
  net: NetworkConfig,
  params: Params,
  pixels: Float32Array,
  cls: number,
): { shape: [number, number, number]; maps: Float32Array; alpha: Float32Array } {
  checkClass(net, cls);
  if (net.conv.length === 0) throw new RangeError('Grad-CAM needs at least one conv block');
  const { height, width, channels } = net.input;
  const [a, alpha] = tf.tidy(() => {
    const x = tf.tensor4d(pixels, [1, height, width, channels]);
    const record: Activations = { conv: [], dense: [] };
    forward(net, params, x, record);
    const A = record.conv[record.conv.length - 1]; // [1,h',w',K]
    const head = headNetwork(net, A.shape.slice(1) as [number, number, number]);
    const dA = tf.grad((aa) => score(forward(head, params, aa as tf.Tensor4D), cls))(A); // [1,h',w',K]
    return [A, tf.mean(dA, [0, 1, 2])]; // α_k = mean over the map of ∂score/∂A_k
  });
  const shape = a.shape.slice(1) as [number, number, number];
  const maps = a.dataSync() as Float32Array;
  const weights = alpha.dataSync() as Float32Array;
  tf.dispose([a, alpha]);
  return { shape, maps, alpha: weights };
}

/** Grad-CAM for class `cls`: relu(Σ_k α_k A_k), upsampled to the input size. */
export function gradCam(net: NetworkConfig, params: Params, pixels: Float32Array, cls: number): SaliencyMap {
  const { shape, maps, alpha } = gradCamWeights(net, params, pixels, cls);
  const [h, w, k] = shape;
  const coarse = new Float32Array(h * w);
  for (let i = 0; i < h * w; i++) {
    let s = 0;
    for (let c = 0; c < k; c++) s += alpha[c] * maps[i * k + c];
    coarse[i] = Math.max(s, 0);
  }
  const { height, width } = net.input;
  return {
    method: 'grad-cam',
    class: cls,
    height,
    width,
    values: upsampleBilinear(coarse, h, w, height, width),
    coarse: { height: h, width: w, values: coarse },
  };
}

export function saliency(method: SaliencyMethod, net: NetworkConfig, params: Params, pixels: Float32Array, cls: number): SaliencyMap {
  return method === 'grad-cam' ? gradCam(net, params, pixels, cls) : gradientTimesInput(net, params, pixels, cls);
}

/** Bilinear resize with half-pixel centres (cell centres line up, as tf.image.resizeBilinear with halfPixelCenters). */
export function upsampleBilinear(values: Float32Array, h: number, w: number, outH: number, outW: number): Float32Array {
  const out = new Float32Array(outH * outW);
  const clamp = (v: number, hi: number) => Math.min(Math.max(v, 0), hi);
  for (let y = 0; y < outH; y++) {
    const sy = clamp(((y + 0.5) * h) / outH - 0.5, h - 1);
    const y0 = Math.floor(sy),
      y1 = Math.min(y0 + 1, h - 1),
      fy = sy - y0;
    for (let x = 0; x < outW; x++) {
      const sx = clamp(((x + 0.5) * w) / outW - 0.5, w - 1);
      const x0 = Math.floor(sx),
        x1 = Math.min(x0 + 1, w - 1),
        fx = sx - x0;
      const top = values[y0 * w + x0] * (1 - fx) + values[y0 * w + x1] * fx;
      const bottom = values[y1 * w + x0] * (1 - fx) + values[y1 * w + x1] * fx;
      out[y * outW + x] = top * (1 - fy) + bottom * fy;
    }
  }
  return out;
}

/** The class score for one image, for numerical checks. */
export function classScore(net: NetworkConfig, params: Params, pixels: Float32Array, cls: number): number {
  const { height, width, channels } = net.input;
  const s = tf.tidy(() => score(forward(net, params, tf.tensor4d(pixels, [1, height, width, channels])), cls));
  const v = s.dataSync()[0];
  s.dispose();
  return v;
}
