/**
 * Writing the trained network in the TensorFlow.js layers-model format: `model.json` (a Keras
 * `Sequential` topology + weights manifest + convlab's config) and `weights.bin` (float32, little-endian).
 * `tf.loadLayersModel` loads the result and predicts the same probabilities as convlab's forward pass;
 * load.ts reads it back into convlab.
 *
 * The Keras field set below is copied from what tfjs-layers 4.22 emits for the same model
 * (`tf.sequential` + `model.toJSON(null, false)`); tf.layers itself is never used here.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { ModelFormatError } from '../errors.ts';
import { writeFileAtomic } from '../atomic-write.ts';
import { weightSpecs, type NetworkConfig } from './config.ts';

export const MODEL_FILE = 'model.json';
export const WEIGHTS_FILE = 'weights.bin';
const KERAS_VERSION = 'tfjs-layers 4.22.0';
export const BYTES_PER_FLOAT = 4;

// ---------------------------------------------------------------------------------------------------------
// Topology
// ---------------------------------------------------------------------------------------------------------

/** One layer of a Keras `model_config`, as tfjs-layers serialises it. */
export interface KerasLayerJson {
  class_name: string;
  config: Record<string, unknown>;
}

/** The `modelTopology` of a layers-model `model.json`. */
export interface LayersTopology {
  class_name: 'Sequential';
  config: { name: string; layers: KerasLayerJson[] };
  keras_version: string;
  backend: string;
}

// Initialisers are never used when loading weights, but tfjs-layers deserialises them, so they must be valid.
const glorotNormal = {
  class_name: 'VarianceScaling',
  config: { scale: 1, mode: 'fan_avg', distribution: 'normal', seed: null },
};
const zeros = { class_name: 'Zeros', config: {} };
const noRegularisers = {
  kernel_regularizer: null,
  bias_regularizer: null,
  activity_regularizer: null,
  kernel_constraint: null,
  bias_constraint: null,
};

/** Keras' Dropout: the identity at inference, which is all a loaded model does. */
function dropoutLayer(rate: number, name: string): KerasLayerJson {
  return { class_name: 'Dropout', config: { rate, noise_shape: null, seed: null, name, trainable: true } };
}

/**
 * The Keras `Sequential` topology of `net`, layer by layer as convlab computes it:
 * conv{i} (linear + bias) → pool{i} (Max/AveragePooling2D, if pooling) → relu{i} (or the other order)
 * → dropout{i} (if any), ..., flatten, fc{j} → fc{j}_dropout (if any), ..., softmax.
 * Layer names fix the weight names (`conv1/kernel`, `fc2/bias`), so they must match `weightSpecs(net)`.
 */
export function layersTopology(net: NetworkConfig): LayersTopology {
  const { height, width, channels } = net.input;
  const layers: KerasLayerJson[] = [];
  const withInputShape = (config: Record<string, unknown>): Record<string, unknown> =>
    layers.length === 0 ? { ...config, batch_input_shape: [null, height, width, channels], dtype: 'float32' } : config;

  net.conv.forEach((block, index) => {
    const i = index + 1;
    layers.push({
      class_name: 'Conv2D',
      config: withInputShape({
        filters: block.filters,
        kernel_initializer: glorotNormal,
        kernel_size: [block.size, block.size],
        strides: [block.stride, block.stride],
        padding: block.padding,
        data_format: 'channels_last',
        dilation_rate: [1, 1],
        activation: 'linear',
        use_bias: true,
        bias_initializer: zeros,
        ...noRegularisers,
        name: `conv${i}`,
        trainable: true,
      }),
    });
    const poolLayer = (): void => {
      if (block.pool === 'none') return;
      layers.push({
        class_name: block.pool === 'max' ? 'MaxPooling2D' : 'AveragePooling2D',
        config: {
          pool_size: [block.poolSize, block.poolSize],
          padding: 'same',
          strides: [block.poolSize, block.poolSize],
          data_format: 'channels_last',
          name: `pool${i}`,
          trainable: true,
        },
      });
    };
    // Named after the function (relu1, tanh1, ...), as the lesson's network has always named it.
    const activationLayer = (): void => {
      layers.push({ class_name: 'Activation', config: { activation: block.activation, name: `${block.activation}${i}`, trainable: true } });
    };
    if (block.order === 'activation-then-pool') {
      activationLayer();
      poolLayer();
    } else {
      poolLayer();
      activationLayer();
    }
    if (block.dropout > 0) layers.push(dropoutLayer(block.dropout, `dropout${i}`));
  });

  // Keras' Flatten on channels_last is a row-major reshape of [B,H,W,C], the same as tf.reshape(x, [B, -1]).
  layers.push({ class_name: 'Flatten', config: withInputShape({ name: 'flatten', trainable: true }) });

  net.dense.forEach((layer, index) => {
    const isLast = index === net.dense.length - 1;
    // Fold the softmax into the logits layer when it is linear (the usual case); otherwise add it below.
    const activation = isLast && layer.activation === 'linear' ? 'softmax' : layer.activation;
    layers.push({
      class_name: 'Dense',
      config: {
        units: layer.units,
        activation,
        use_bias: true,
        kernel_initializer: glorotNormal,
        bias_initializer: zeros,
        ...noRegularisers,
        name: `fc${index + 1}`,
        trainable: true,
      },
    });
    if (layer.dropout > 0) layers.push(dropoutLayer(layer.dropout, `fc${index + 1}_dropout`));
  });
  const last = net.dense[net.dense.length - 1];
  if (last === undefined || last.activation !== 'linear') {
    layers.push({ class_name: 'Activation', config: { activation: 'softmax', name: 'softmax', trainable: true } });
  }

  return {
    class_name: 'Sequential',
    config: { name: 'convlab', layers },
    keras_version: KERAS_VERSION,
    backend: 'tensor_flow.js',
  };
}

// ---------------------------------------------------------------------------------------------------------
// Save
// ---------------------------------------------------------------------------------------------------------

/**
 * Write `dir/weights.bin` then `dir/model.json`, each atomically (temp file in `dir`, fsync, rename), so a
 * crash or error never leaves a half-written file under either name. `metadata` (e.g. the train config and
 * final metrics) is stored next to the network config in `userDefinedMetadata.convlab`.
 */
export async function saveModel(
  dir: string,
  net: NetworkConfig,
  weights: Map<string, tf.Tensor> | Record<string, tf.Tensor>,
  metadata: Record<string, unknown>,
): Promise<void> {
  const lookup = weights instanceof Map ? weights : new Map(Object.entries(weights));
  const specs = weightSpecs(net);

  // Check and serialise everything before touching the disk.
  const bytes = new Uint8Array(specs.reduce((n, s) => n + sizeOf(s.shape), 0) * BYTES_PER_FLOAT);
  const view = new DataView(bytes.buffer);
  let offset = 0;
  for (const spec of specs) {
    const tensor = lookup.get(spec.name);
    if (tensor === undefined) {
      throw new ModelFormatError(
        'MODEL_WEIGHT_SHAPE',
        `cannot save ${dir}: no tensor for weight ${spec.name} [${spec.shape}] — pass every name in weightSpecs(net)`,
      );
    }
    if (!sameShape(tensor.shape, spec.shape)) {
      throw new ModelFormatError(
        'MODEL_WEIGHT_SHAPE',
        `cannot save ${dir}: weight ${spec.name} has shape [${tensor.shape}], the network needs [${spec.shape}]`,
      );
    }
    const values = tensor.dataSync();
    const bad = firstNonFinite(values);
    if (bad >= 0) {
      throw new ModelFormatError(
        'MODEL_WEIGHTS_NAN',
        `cannot save ${dir}: weight ${spec.name} holds ${values[bad]} at index ${bad} — training diverged; lower the learning rate`,
      );
    }
    for (let k = 0; k < values.length; k++, offset += BYTES_PER_FLOAT) view.setFloat32(offset, values[k], true);
  }

  // `network` comes first in the JSON and cannot be overridden by a `metadata.network` key.
  const convlab: Record<string, unknown> = { network: net, ...metadata };
  convlab.network = net;
  const modelJson = {
    format: 'layers-model',
    generatedBy: 'convlab',
    convertedBy: null,
    modelTopology: layersTopology(net),
    weightsManifest: [{ paths: [WEIGHTS_FILE], weights: specs.map((s) => ({ name: s.name, shape: s.shape, dtype: 'float32' })) }],
    userDefinedMetadata: { convlab },
  };
  const text = JSON.stringify(modelJson, null, 2) + '\n';

  await fs.mkdir(dir, { recursive: true });
  // Weights first: model.json is what readers look for, so it appears only once its weights are in place.
  await writeFileAtomic(path.join(dir, WEIGHTS_FILE), bytes);
  await writeFileAtomic(path.join(dir, MODEL_FILE), text);
}

export function sizeOf(shape: readonly number[]): number {
  return shape.reduce((n, d) => n * d, 1);
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Index of the first NaN or ±Infinity, or -1. */
export function firstNonFinite(values: ArrayLike<number>): number {
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) return i;
  return -1;
}
