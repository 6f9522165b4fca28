/**
 * convlab as a library: `import { train, loadMnist, ... } from 'convlab'`.
 *
 * A thin list of re-exports of the modules the CLI itself uses, plus three small helpers for predicting
 * (the CLI and the server each do it inline). Importing this module does no work: no backend is started,
 * no data set is read, no worker is spawned; call `useBackend()` first, as the CLI does.
 * See the README, "Using convlab as a library", and examples/library.mjs.
 */
import * as tf from '@tensorflow/tfjs';
import type { NetworkConfig } from './model/config.ts';
import { predictProbabilities, type Params } from './model/cnn.ts';
import { decodeImage, preprocessFile, toMnist } from './predict/preprocess.ts';

// Backends
export { backendNames, isBackendName, useBackend, type BackendName } from './backend.ts';

// Configs, presets, shapes
export * from './model/config.ts';
export { parseRunConfig, loadRunConfigFile, resolveRunConfig, parseAugmentFlag, type RunDraft, type DataShape } from './model/validate.ts';

// The network
export { initParams, paramsFrom, disposeParams, forward, loss, predictProbabilities, type Params, type Activations, type DropoutMasks } from './model/cnn.ts';

// Saving and loading (the TensorFlow.js layers-model format)
export { saveModel, loadModel, layersTopology, layersModelIOHandler } from './model/checkpoint.ts';
export { loadParams, type LoadedModel } from './model/load.ts';

// Data
export { loadMnist, mnistDir, subset, type MnistSplits } from './data/mnist.ts';
export { loadDataset, parseDatasetSpec, datasetName, type DatasetSpec, type DataSplits } from './data/datasets.ts';
export { imageFloats, toFloats, type LabeledImages, type LabeledBytes, type ImageSet } from './data/images.ts';
export { Rng } from './data/batches.ts';

// Training: `train` is the loop on parameters in memory; `trainRun` is `convlab train` (workers, checkpoints,
// Ctrl-C, the run folder). Both take the hooks the CLI's progress bar and log lines use.
export { train, evaluate, type TrainHooks, type TrainOptions, type TrainResult, type TrainData, type TrainState, type HistoryEntry } from './train/loop.ts';
export { trainRun, type RunOptions, type RunResult, type Metrics } from './train/run.ts';

// Evaluation
export { evaluatePredictions, perClass, accuracyLine, confusionTable, type Evaluation, type ClassReport } from './eval/metrics.ts';

// Pictures → MNIST-like digits
export {
  toMnist,
  decodeImage,
  preprocessFile,
  grayFromRgba,
  PREPROCESS_DEFAULTS,
  type GrayImage,
  type MnistDigit,
  type PreprocessConfig,
} from './predict/preprocess.ts';

// Figures and report.html
export { visualize, type VisualizeOptions, type VisualizeResult, type ImageChoice } from './viz/run.ts';

// The HTTP server (Fastify): `await createServer({ modelDir })`, then `.listen({ port: 0, host: '127.0.0.1' })`.
export { buildServer as createServer, type ServerOptions } from './serve/server.ts';
export { ensureWebBuild, type WebBuild } from './serve/web-build.ts';

// Errors: every failure convlab expects is a ConvlabError with a `code` and an actionable message.
export { ConvlabError, DataFormatError, ModelFormatError, ImageError, UsageError, TrainingError } from './errors.ts';

/** One classified image. */
export interface Prediction {
  /** The most probable class. */
  class: number;
  /** Softmax output, one value per class. */
  probabilities: number[];
}

/** A model as `loadParams` returns it (or any network with its parameters). */
export interface Classifier {
  net: NetworkConfig;
  params: Params;
}

/**
 * Classifies images given as pixels: each a Float32Array of height*width*channels values in [0,1]
 * (for MNIST models 784 values, 28x28 row by row, white ink on black).
 */
export function predict(model: Classifier, images: Float32Array | Float32Array[]): Prediction[] {
  const list = Array.isArray(images) ? images : [images];
  const { height, width, channels } = model.net.input;
  const size = height * width * channels;
  const flat = new Float32Array(list.length * size);
  list.forEach((im, i) => {
    if (im.length !== size) throw new RangeError(`image ${i} has ${im.length} values, expected ${size} (${height}x${width}x${channels})`);
    flat.set(im, i * size);
  });
  const probs = tf.tidy(() => predictProbabilities(model.net, model.params, tf.tensor4d(flat, [list.length, height, width, channels])));
  const values = probs.dataSync(); // read outside tidy (see TFJS-NOTES: tidy walks returned arrays)
  const classes = probs.shape[1];
  probs.dispose();
  return list.map((_, i) => {
    const probabilities = Array.from(values.subarray(i * classes, (i + 1) * classes));
    return { class: probabilities.indexOf(Math.max(...probabilities)), probabilities };
  });
}

/** A picture (a PNG/JPEG file path, or its bytes) → the 28x28 MNIST-like pixels `convlab predict` classifies. */
export async function preprocess(picture: string | Uint8Array): Promise<Float32Array> {
  if (typeof picture === 'string') return preprocessFile(picture);
  return toMnist(await decodeImage(picture, 'picture')).pixels;
}

/** Classifies pictures of digits (file paths or PNG/JPEG bytes), preprocessed as `convlab predict` does. */
export async function predictPictures(model: Classifier, pictures: (string | Uint8Array)[]): Promise<Prediction[]> {
  const pixels: Float32Array[] = [];
  for (const p of pictures) pixels.push(await preprocess(p));
  return predict(model, pixels);
}
