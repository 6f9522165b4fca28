/**
 * Save and load the trained network in the TensorFlow.js layers-model format: `model.json` (a Keras
 * `Sequential` topology + weights manifest + convlab's config) and `weights.bin` (float32, little-endian).
 * `tf.loadLayersModel` loads the result and predicts the same probabilities as convlab's forward pass.
 *
 * The Keras field set below is copied from what tfjs-layers 4.22 emits for the same model
 * (`tf.sequential` + `model.toJSON(null, false)`); tf.layers itself is never used here.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { formatCount, ModelFormatError } from '../errors.ts';
import { writeFileAtomic } from '../atomic-write.ts';
import { weightSpecs, type NetworkConfig } from './config.ts';

const MODEL_FILE = 'model.json';
const WEIGHTS_FILE = 'weights.bin';
const KERAS_VERSION = 'tfjs-layers 4.22.0';
const BYTES_PER_FLOAT = 4;

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
    weightsManifest: [
      { paths: [WEIGHTS_FILE], weights: specs.map((s) => ({ name: s.name, shape: s.shape, dtype: 'float32' })) },
    ],
    userDefinedMetadata: { convlab },
  };
  const text = JSON.stringify(modelJson, null, 2) + '\n';

  await fs.mkdir(dir, { recursive: true });
  // Weights first: model.json is what readers look for, so it appears only once its weights are in place.
  await writeFileAtomic(path.join(dir, WEIGHTS_FILE), bytes);
  await writeFileAtomic(path.join(dir, MODEL_FILE), text);
}

// ---------------------------------------------------------------------------------------------------------
// Load
// ---------------------------------------------------------------------------------------------------------

/** A `model.json` and its weight bytes, checked for presence and length but not against convlab's network. */
interface RawModel {
  json: Record<string, unknown>;
  manifest: Manifest;
  weightData: ArrayBuffer;
}

/** The weights manifest, flattened across groups: entries in byte order, and the files that hold them. */
interface Manifest {
  entries: tf.io.WeightsManifestEntry[];
  paths: string[];
}

/**
 * Read a model that `saveModel` wrote. The tensors are new; the caller owns (and disposes) them.
 * Throws `ModelFormatError` naming the file and the fix for anything missing, malformed or inconsistent.
 */
export async function loadModel(
  dir: string,
): Promise<{ net: NetworkConfig; weights: Map<string, tf.Tensor>; metadata: Record<string, unknown> }> {
  const modelFile = path.join(dir, MODEL_FILE);
  const json = await readModelJson(dir);

  const meta = json.userDefinedMetadata;
  const convlab = isRecord(meta) ? meta.convlab : undefined;
  if (!isRecord(convlab) || convlab.network === undefined) {
    throw new ModelFormatError(
      'MODEL_NO_CONFIG',
      `${modelFile}: not written by convlab (no userDefinedMetadata.convlab.network) — load it with tf.loadLayersModel, or pass a folder that \`convlab train\` wrote`,
    );
  }
  const net = checkNetwork(convlab.network, modelFile);
  const { network: _network, ...metadata } = convlab;

  // The manifest must describe exactly the weights this network needs, before any bytes are read.
  const manifest = readManifest(json, modelFile);
  const byName = new Map(manifest.entries.map((entry) => [entry.name, entry]));
  const specs = weightSpecs(net);
  for (const spec of specs) {
    const entry = byName.get(spec.name);
    if (entry === undefined) {
      throw new ModelFormatError(
        'MODEL_WEIGHT_SHAPE',
        `${modelFile}: weights manifest has no ${spec.name} [${spec.shape}] that the saved network needs — the file was edited or is from another model; re-run \`convlab train\``,
      );
    }
    if (!sameShape(entry.shape, spec.shape)) {
      throw new ModelFormatError(
        'MODEL_WEIGHT_SHAPE',
        `${modelFile}: weight ${spec.name} has shape [${entry.shape}] in the manifest, the saved network needs [${spec.shape}] — the file was edited; re-run \`convlab train\``,
      );
    }
  }
  if (manifest.entries.length !== specs.length) {
    const extra = manifest.entries.find((entry) => !specs.some((s) => s.name === entry.name));
    throw new ModelFormatError(
      'MODEL_WEIGHT_SHAPE',
      `${modelFile}: weights manifest lists ${extra?.name ?? 'a duplicate weight'}, which the saved network does not have — re-run \`convlab train\``,
    );
  }

  const weightData = await readWeightData(dir, manifest);
  const view = new DataView(weightData);
  // Decode and check every value before creating any tensor, so an error leaks none.
  const decoded: [tf.io.WeightsManifestEntry, Float32Array][] = [];
  let offset = 0;
  for (const entry of manifest.entries) {
    const values = new Float32Array(sizeOf(entry.shape));
    for (let k = 0; k < values.length; k++, offset += BYTES_PER_FLOAT) values[k] = view.getFloat32(offset, true);
    const bad = firstNonFinite(values);
    if (bad >= 0) {
      throw new ModelFormatError(
        'MODEL_WEIGHTS_NAN',
        `${path.join(dir, WEIGHTS_FILE)}: weight ${entry.name} holds ${values[bad]} at index ${bad} — the model is corrupt or diverged; re-run \`convlab train\``,
      );
    }
    decoded.push([entry, values]);
  }
  const weights = new Map(decoded.map(([entry, values]) => [entry.name, tf.tensor(values, entry.shape, 'float32')]));
  return { net, weights, metadata };
}

/**
 * A `tf.io.IOHandler` that loads `dir/model.json` and its weight files from disk, for Node without
 * tfjs-node (which has no `file://` handler): `tf.loadLayersModel(layersModelIOHandler(dir))`.
 */
export function layersModelIOHandler(dir: string): tf.io.IOHandler {
  return {
    load: async (): Promise<tf.io.ModelArtifacts> => {
      const raw = await readRawModel(dir);
      const { json } = raw;
      return {
        modelTopology: json.modelTopology as {},
        weightSpecs: raw.manifest.entries,
        weightData: raw.weightData,
        format: typeof json.format === 'string' ? json.format : undefined,
        generatedBy: typeof json.generatedBy === 'string' ? json.generatedBy : undefined,
        convertedBy: typeof json.convertedBy === 'string' ? json.convertedBy : null,
        userDefinedMetadata: isRecord(json.userDefinedMetadata)
          ? (json.userDefinedMetadata as { [key: string]: {} })
          : undefined,
      };
    },
  };
}

async function readRawModel(dir: string): Promise<RawModel> {
  const json = await readModelJson(dir);
  const manifest = readManifest(json, path.join(dir, MODEL_FILE));
  return { json, manifest, weightData: await readWeightData(dir, manifest) };
}

async function readModelJson(dir: string): Promise<Record<string, unknown>> {
  const modelFile = path.join(dir, MODEL_FILE);
  let text: string;
  try {
    text = await fs.readFile(modelFile, 'utf8');
  } catch (err) {
    throw new ModelFormatError(
      'MODEL_NOT_FOUND',
      `${dir}: no ${MODEL_FILE} — pass the folder that \`convlab train\` wrote`,
      { cause: err },
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ModelFormatError(
      'MODEL_BAD_JSON',
      `${modelFile}: not valid JSON (${(err as Error).message}) — the file is damaged; re-run \`convlab train\``,
      { cause: err },
    );
  }
  if (!isRecord(json)) {
    throw new ModelFormatError(
      'MODEL_BAD_JSON',
      `${modelFile}: expected a JSON object, got ${Array.isArray(json) ? 'an array' : typeof json} — pass the folder that \`convlab train\` wrote`,
    );
  }
  return json;
}

/** The weights manifest of `model.json`; float32 and unquantised only, files next to model.json only. */
function readManifest(json: Record<string, unknown>, modelFile: string): Manifest {
  const bad = (what: string): ModelFormatError =>
    new ModelFormatError(
      'MODEL_BAD_MANIFEST',
      `${modelFile}: weightsManifest ${what} — the file was edited or is not a float32 layers model; re-run \`convlab train\``,
    );
  const groups = json.weightsManifest;
  if (!Array.isArray(groups) || groups.length === 0) throw bad('is missing or empty');
  const entries: tf.io.WeightsManifestEntry[] = [];
  const paths: string[] = [];
  for (const group of groups) {
    if (!isRecord(group) || !Array.isArray(group.weights) || !Array.isArray(group.paths)) {
      throw bad('has a group without paths and weights');
    }
    for (const name of group.paths as unknown[]) {
      // Weight files live next to model.json; refuse paths that would read elsewhere on disk.
      if (typeof name !== 'string' || name === '' || path.basename(name) !== name) {
        throw bad(`path ${JSON.stringify(name)} is not a file name in the model folder`);
      }
      paths.push(name);
    }
    for (const entry of group.weights as unknown[]) {
      if (
        !isRecord(entry) ||
        typeof entry.name !== 'string' ||
        !Array.isArray(entry.shape) ||
        !entry.shape.every((d) => Number.isInteger(d) && d >= 0)
      ) {
        throw bad('has an entry without a name and an integer shape');
      }
      if (entry.dtype !== 'float32' || entry.quantization !== undefined) {
        throw bad(`stores ${entry.name} as ${String(entry.dtype)}${entry.quantization ? ' (quantised)' : ''}, not float32`);
      }
      entries.push({ name: entry.name, shape: entry.shape as number[], dtype: 'float32' });
    }
  }
  return { entries, paths };
}

/** The manifest's weight files, concatenated in order, checked against the byte count the manifest implies. */
async function readWeightData(dir: string, manifest: Manifest): Promise<ArrayBuffer> {
  const parts: Uint8Array[] = [];
  for (const name of manifest.paths) {
    const file = path.join(dir, name);
    try {
      parts.push(await fs.readFile(file));
    } catch (err) {
      throw new ModelFormatError(
        'MODEL_NO_WEIGHTS',
        `${file}: missing — model.json needs its weights next to it; copy the whole folder that \`convlab train\` wrote`,
        { cause: err },
      );
    }
  }
  const expected = manifest.entries.reduce((n, e) => n + sizeOf(e.shape), 0) * BYTES_PER_FLOAT;
  const got = parts.reduce((n, p) => n + p.byteLength, 0);
  if (got !== expected) {
    throw new ModelFormatError(
      'MODEL_WEIGHTS_LENGTH',
      `${path.join(dir, manifest.paths.join('+'))}: expected ${formatCount(expected)} bytes for the manifest in model.json, got ${formatCount(got)} — the file is truncated or from another model; copy it again or re-run \`convlab train\``,
    );
  }
  // A fresh ArrayBuffer: Node's Buffers may be views into a shared pool.
  const out = new Uint8Array(expected);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.byteLength;
  }
  return out.buffer;
}

// ---------------------------------------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------------------------------------

/** The saved network config, checked field by field so that weightSpecs() can trust it. */
function checkNetwork(value: unknown, modelFile: string): NetworkConfig {
  const fail = (field: string, want: string): never => {
    throw new ModelFormatError(
      'MODEL_NO_CONFIG',
      `${modelFile}: userDefinedMetadata.convlab.network.${field} must be ${want} — the file was edited; re-run \`convlab train\``,
    );
  };
  const positiveInt = (v: unknown, field: string): void => {
    if (!Number.isInteger(v) || (v as number) < 1) fail(field, 'a positive integer');
  };
  if (!isRecord(value)) return fail('', 'an object');
  const input = value.input;
  if (!isRecord(input)) return fail('input', 'an object {height, width, channels}');
  positiveInt(input.height, 'input.height');
  positiveInt(input.width, 'input.width');
  positiveInt(input.channels, 'input.channels');
  if (!Array.isArray(value.conv)) return fail('conv', 'an array');
  const dropout = (v: unknown, field: string): void => {
    if (typeof v !== 'number' || !(v >= 0 && v < 1)) fail(field, 'a number in [0, 1)');
  };
  value.conv.forEach((block: unknown, i) => {
    if (!isRecord(block)) return fail(`conv[${i}]`, 'an object');
    positiveInt(block.filters, `conv[${i}].filters`);
    positiveInt(block.size, `conv[${i}].size`);
    positiveInt(block.stride, `conv[${i}].stride`);
    positiveInt(block.poolSize, `conv[${i}].poolSize`);
    if (block.padding !== 'same' && block.padding !== 'valid') fail(`conv[${i}].padding`, "'same' or 'valid'");
    if (block.pool !== 'max' && block.pool !== 'avg' && block.pool !== 'none') fail(`conv[${i}].pool`, "'max', 'avg' or 'none'");
    if (block.activation !== 'relu' && block.activation !== 'sigmoid' && block.activation !== 'tanh') fail(`conv[${i}].activation`, "'relu', 'sigmoid' or 'tanh'");
    // Models saved before these fields existed were all pool-then-activation without dropout.
    block.order ??= 'pool-then-activation';
    block.dropout ??= 0;
    if (block.order !== 'pool-then-activation' && block.order !== 'activation-then-pool') fail(`conv[${i}].order`, "'pool-then-activation' or 'activation-then-pool'");
    dropout(block.dropout, `conv[${i}].dropout`);
  });
  if (!Array.isArray(value.dense) || value.dense.length === 0) return fail('dense', 'a non-empty array');
  value.dense.forEach((layer: unknown, i) => {
    if (!isRecord(layer)) return fail(`dense[${i}]`, 'an object');
    positiveInt(layer.units, `dense[${i}].units`);
    if (!['relu', 'sigmoid', 'tanh', 'linear'].includes(layer.activation as string)) fail(`dense[${i}].activation`, "'relu', 'sigmoid', 'tanh' or 'linear'");
    layer.dropout ??= 0;
    dropout(layer.dropout, `dense[${i}].dropout`);
  });
  if (typeof value.weightStddev !== 'number') fail('weightStddev', 'a number');
  if (typeof value.biasInit !== 'number') fail('biasInit', 'a number');
  return value as unknown as NetworkConfig;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function sizeOf(shape: readonly number[]): number {
  return shape.reduce((n, d) => n * d, 1);
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Index of the first NaN or ±Infinity, or -1. */
function firstNonFinite(values: ArrayLike<number>): number {
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) return i;
  return -1;
}
