/**
 * Batched inference: the one loop that turns many images into predicted classes (or probabilities).
 * Evaluation, the training workers, the figures, the benchmark and the page all classify through it.
 *
 * In batches because the wasm heap grows to the largest batch's activations and never shrinks
 * (5,000 images at once would keep about 1 GB).
 */
import * as tf from '@tensorflow/tfjs';
import type { LabeledImages } from '../data/idx.ts';
import { classCount, type NetworkConfig } from '../model/config.ts';
import { forward, predictProbabilities, type Params } from '../model/cnn.ts';
import { evaluatePredictions, type Evaluation } from './metrics.ts';

/** Images per forward pass unless a caller asks otherwise. */
export const CLASSIFY_BATCH = 500;

/** Calls `each(x, start, n)` for consecutive batches of `count` NHWC images (`images` holds them flat). */
function inBatches(net: NetworkConfig, images: Float32Array, count: number, batchSize: number, each: (x: tf.Tensor4D, start: number, n: number) => void): void {
  const { height, width, channels } = net.input;
  const pixels = height * width * channels;
  if (images.length < count * pixels) throw new RangeError(`${count} images of ${height}x${width}x${channels} need ${count * pixels} values, got ${images.length}`);
  for (let start = 0; start < count; start += batchSize) {
    const n = Math.min(batchSize, count - start);
    const x = tf.tensor4d(images.subarray(start * pixels, (start + n) * pixels), [n, height, width, channels]); // [n,H,W,C]
    try {
      each(x, start, n);
    } finally {
      x.dispose();
    }
  }
}

/** The predicted class of each of `count` images. */
export function classify(net: NetworkConfig, params: Params, images: Float32Array, count: number, batchSize = CLASSIFY_BATCH): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(count);
  inBatches(net, images, count, batchSize, (x, start) => {
    const classes = tf.tidy(() => tf.argMax(forward(net, params, x), 1)); // [n]
    out.set(classes.dataSync(), start);
    classes.dispose();
  });
  return out;
}

/** Softmax probabilities of `count` images, row-major [count, classes]. */
export function probabilities(net: NetworkConfig, params: Params, images: Float32Array, count: number, batchSize = CLASSIFY_BATCH): Float32Array<ArrayBuffer> {
  const classes = classCount(net);
  const out = new Float32Array(count * classes);
  inBatches(net, images, count, batchSize, (x, start) => {
    const p = predictProbabilities(net, params, x); // [n,classes]
    out.set(p.dataSync(), start * classes);
    p.dispose();
  });
  return out;
}

/** Classifies every image of `data` and scores the predictions. */
export function evaluate(net: NetworkConfig, params: Params, data: LabeledImages, batchSize = CLASSIFY_BATCH): Evaluation {
  return evaluatePredictions(classify(net, params, data.images, data.count, batchSize), data.labels, classCount(net));
}
