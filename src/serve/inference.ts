/**
 * What the server computes for a request: checked inputs → 28x28 pixels → the network's answers.
 * Every tensor is created and freed inside `tf.tidy`, and values are read only after the tidy returns
 * (reading inside it makes tidy walk the typed arrays), so `tf.memory().numTensors` stays flat.
 */
import * as tf from '@tensorflow/tfjs';
import { ConvlabError } from '../errors.ts';
import type { NetworkConfig } from '../model/config.ts';
import { forward, type Activations as Recorded, type Params } from '../model/cnn.ts';
import { colourInput, decodeRgba, digitFromBytes } from '../predict/preprocess.ts';
import { architecture } from '../model/architecture.ts';
import { ApiError, LIMITS, isErrorCode, type Activations, type LayerActivation, type Prediction } from './schema.ts';
import type { CheckedInput } from './checks.ts';

/** A checked input → the pixels the network takes. Pictures are preprocessed like `convlab predict`. */
export async function toPixels(input: CheckedInput, name: string, net?: NetworkConfig): Promise<Float32Array> {
  if ('pixels' in input) return input.pixels;
  return pixelsFromImage(Buffer.from(input.base64, 'base64'), name, net);
}

/**
 * PNG/JPEG bytes → the network's input: MNIST-style pixels, or for a colour model (3 channels) the picture
 * resized to its input by area averaging (`colourInput`, as the page does). Image errors become ApiErrors
 * with the same code.
 */
export async function pixelsFromImage(bytes: Uint8Array, name: string, net?: NetworkConfig): Promise<Float32Array> {
  try {
    if (net?.input.channels === 3) {
      const picture = await decodeRgba(bytes, name);
      return colourInput(picture.rgba, picture.width, picture.height, net.input);
    }
    return (await digitFromBytes(bytes, name)).pixels; // refuses a picture with no ink (IMAGE_NO_INK, 400)
  } catch (err) {
    if (err instanceof ConvlabError) throw new ApiError(isErrorCode(err.code) ? err.code : 'IMAGE_DECODE', err.message, { cause: err });
    throw new ApiError('IMAGE_DECODE', `${name}: could not be decoded (${(err as Error)?.message ?? err}); send a PNG or JPEG`, { cause: err });
  }
}

/** B images of 784 pixels → one NHWC tensor [B,28,28,1]. Call inside tf.tidy. */
function batchTensor(net: NetworkConfig, images: Float32Array[]): tf.Tensor4D {
  const { height, width, channels } = net.input;
  const size = height * width * channels;
  const flat = new Float32Array(images.length * size);
  images.forEach((im, i) => flat.set(im, i * size));
  return tf.tensor4d(flat, [images.length, height, width, channels]);
}

/** Class probabilities for each image, as one forward pass over the batch. */
export function predict(net: NetworkConfig, params: Params, images: Float32Array[], ms: number[]): Prediction[] {
  const t0 = performance.now();
  const values = softmaxOf(net, params, images);
  const share = (performance.now() - t0) / images.length;
  return answers(
    values,
    images.length,
    ms.map((m) => m + share),
  );
}

/** softmax(forward(images)) as one flat array [B × classes], in this thread. */
export function softmaxOf(net: NetworkConfig, params: Params, images: Float32Array[]): Float32Array {
  const probs = tf.tidy(() => tf.softmax(forward(net, params, batchTensor(net, images)))); // [B,classes]
  const values = probs.dataSync() as Float32Array;
  probs.dispose();
  return values;
}

/** B answers from a flat [B × classes] array of probabilities. */
export function answers(values: Float32Array, count: number, ms: number[]): Prediction[] {
  const classes = values.length / count;
  return Array.from({ length: count }, (_, i) => answer(Array.from(values.subarray(i * classes, (i + 1) * classes)), ms[i]));
}

/** Every layer's output for each image: conv maps (after pool + ReLU), dense layers, softmax. */
export function activations(net: NetworkConfig, params: Params, images: Float32Array[], ms: number[]): Activations[] {
  const t0 = performance.now();
  const tensors = tf.tidy(() => {
    const record: Recorded = { conv: [], dense: [] };
    const logits = forward(net, params, batchTensor(net, images), record);
    return [...record.conv, ...record.dense, tf.softmax(logits)] as tf.Tensor[];
  });
  const values = tensors.map((t) => t.dataSync());
  const shapes = tensors.map((t) => t.shape.slice(1)); // per example
  tf.dispose(tensors);
  const share = (performance.now() - t0) / images.length;
  const layers = architecture(net);
  return images.map((pixels, i) => {
    const out: LayerActivation[] = layers.map((layer, k) => {
      const size = shapes[k].reduce((a, b) => a * b, 1);
      return { name: layer.name, kind: layer.kind, shape: shapes[k], data: Array.from(values[k].subarray(i * size, (i + 1) * size)) };
    });
    const probabilities = out[out.length - 1].data;
    return {
      ...answer(probabilities, ms[i] + share),
      input: { shape: [net.input.height, net.input.width], data: Array.from(pixels) },
      layers: out,
    };
  });
}

function answer(probabilities: number[], ms: number): Prediction {
  let best = 0;
  for (let k = 1; k < probabilities.length; k++) if (probabilities[k] > probabilities[best]) best = k;
  return { class: best, probabilities, ms: Math.round(ms * 1000) / 1000 };
}
