/**
 * Batched inference: the one loop that turns many images into predicted classes (or probabilities).
 * Evaluation, the training workers, the figures, the benchmark and the page all classify through it.
 *
 * In batches because the wasm heap grows to the largest batch's activations and never shrinks
 * (5,000 images at once would keep about 1 GB).
 */
import * as tf from '@tensorflow/tfjs';
import { imageFloats, type ImageSet } from '../data/images.ts';
import { classCount, type NetworkConfig } from '../model/config.ts';
import { CLASSIFY_BATCH, classifyBatch } from '../model/architecture.ts';
import { forward, predictProbabilities, type Params } from '../model/cnn.ts';
import { evaluatePredictions, type Evaluation } from './metrics.ts';

export { CLASSIFY_BATCH, classifyBatch };

/** Consecutive batches of `count` NHWC images (`images` holds them flat), each disposed when the caller moves on. */
function* inBatches(net: NetworkConfig, images: Float32Array, count: number, batchSize: number): Generator<{ x: tf.Tensor4D; start: number; n: number }> {
  const { height, width, channels } = net.input;
  const pixels = height * width * channels;
  if (images.length < count * pixels)
    throw new RangeError(`${count} images of ${height}x${width}x${channels} need ${count * pixels} values, got ${images.length}`);
  for (let start = 0; start < count; start += batchSize) {
    const n = Math.min(batchSize, count - start);
    const x = tf.tensor4d(images.subarray(start * pixels, (start + n) * pixels), [n, height, width, channels]); // [n,H,W,C]
    try {
      yield { x, start, n };
    } finally {
      x.dispose();
    }
  }
}

/** The predicted class of each of `count` images. */
export function classify(net: NetworkConfig, params: Params, images: Float32Array, count: number, batchSize = classifyBatch(net)): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(count);
  for (const { x, start } of inBatches(net, images, count, batchSize)) {
    const classes = tf.tidy(() => tf.argMax(forward(net, params, x), 1)); // [n]
    out.set(classes.dataSync(), start);
    classes.dispose();
  }
  return out;
}

/**
 * Softmax probabilities batch by batch, so that a caller can stop early: `p` is [n, classes] row-major
 * for images start .. start+n−1.
 */
export function* probabilityBatches(
  net: NetworkConfig,
  params: Params,
  images: Float32Array,
  count: number,
  batchSize = classifyBatch(net),
): Generator<{ start: number; n: number; p: Float32Array }> {
  for (const { x, start, n } of inBatches(net, images, count, batchSize)) {
    const probs = predictProbabilities(net, params, x); // [n,classes]
    const p = probs.dataSync() as Float32Array;
    probs.dispose();
    yield { start, n, p };
  }
}

/** Softmax probabilities of `count` images, row-major [count, classes] (for a server's batch of requests). */
export function probabilities(
  net: NetworkConfig,
  params: Params,
  images: Float32Array,
  count: number,
  batchSize = classifyBatch(net),
): Float32Array<ArrayBuffer> {
  const classes = classCount(net);
  const out = new Float32Array(count * classes);
  for (const { start, p } of probabilityBatches(net, params, images, count, batchSize)) out.set(p, start * classes);
  return out;
}

/** Classifies every image of `data` (floats, or bytes converted a few batches at a time) and scores the predictions. */
export function evaluate(net: NetworkConfig, params: Params, data: ImageSet, batchSize = classifyBatch(net)): Evaluation {
  const predicted = new Uint8Array(data.count);
  const chunk = 4 * batchSize;
  for (let start = 0; start < data.count; start += chunk) {
    const n = Math.min(chunk, data.count - start);
    predicted.set(classify(net, params, imageFloats(data, start, n), n, batchSize), start);
  }
  return evaluatePredictions(predicted, data.labels, classCount(net));
}
