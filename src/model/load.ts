/**
 * Reading a saved model (layers-model.ts writes it) back into convlab: every file is checked before use,
 * the network config by the one config validator (validate.ts), and anything missing, malformed or
 * inconsistent is a ModelFormatError naming the file and the fix.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { ConvlabError, formatCount, ModelFormatError } from '../errors.ts';
import { weightSpecs, type NetworkConfig } from './config.ts';
import { paramsFrom, type Params } from './cnn.ts';
import { parseSavedNetwork } from './validate.ts';
import { BYTES_PER_FLOAT, MODEL_FILE, WEIGHTS_FILE, firstNonFinite, sameShape, sizeOf } from './layers-model.ts';

export interface LoadedModel {
  net: NetworkConfig;
  params: Params;
  metadata: Record<string, unknown>;
}

/** A saved model as convlab's network, its parameters as variables (the caller disposes them). */
export async function loadParams(dir: string): Promise<LoadedModel> {
  const { net, weights, metadata } = await loadModel(dir);
  return { net, params: paramsFrom(net, weights), metadata };
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
export async function loadModel(dir: string): Promise<{ net: NetworkConfig; weights: Map<string, tf.Tensor>; metadata: Record<string, unknown> }> {
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
        userDefinedMetadata: isRecord(json.userDefinedMetadata) ? (json.userDefinedMetadata as { [key: string]: {} }) : undefined,
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
    throw new ModelFormatError('MODEL_NOT_FOUND', `${dir}: no ${MODEL_FILE} — pass the folder that \`convlab train\` wrote`, { cause: err });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ModelFormatError('MODEL_BAD_JSON', `${modelFile}: not valid JSON (${(err as Error).message}) — the file is damaged; re-run \`convlab train\``, {
      cause: err,
    });
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
      if (!isRecord(entry) || typeof entry.name !== 'string' || !Array.isArray(entry.shape) || !entry.shape.every((d) => Number.isInteger(d) && d >= 0)) {
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

/** The saved network config, read by the config validator so that weightSpecs() can trust it. */
function checkNetwork(value: unknown, modelFile: string): NetworkConfig {
  try {
    return parseSavedNetwork(value, `${modelFile}: userDefinedMetadata.convlab`);
  } catch (err) {
    if (!(err instanceof ConvlabError)) throw err;
    throw new ModelFormatError('MODEL_NO_CONFIG', `${err.message} — the file was edited; re-run \`convlab train\``, { cause: err });
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
