/**
 * The network in the page: convlab's own `forward` (src/model/cnn.ts) on parameters fetched from the
 * server's model.json + weights.bin, or freshly initialised for training. Same code, same numbers as Node.
 */
import * as tf from '@tensorflow/tfjs';
import { forward, initParams, paramsFrom, type Activations as Recorded, type Params } from '../../src/model/cnn.ts';
import { weightSpecs, type NetworkConfig } from '../../src/model/config.ts';
import { Rng } from '../../src/data/rng.ts';
import { architecture, type LayerKind } from '../../src/model/architecture.ts';

export interface Network {
  net: NetworkConfig;
  params: Params;
}

/** Fetches a layers-model (model.json + its weight files) that `convlab train` wrote, as convlab params. */
export async function loadNetwork(modelJsonUrl: string): Promise<Network> {
  const response = await fetch(modelJsonUrl);
  if (!response.ok) throw new Error(`${modelJsonUrl}: HTTP ${response.status}`);
  const json = (await response.json()) as {
    weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[];
    userDefinedMetadata?: { convlab?: { network?: NetworkConfig } };
  };
  const net = json.userDefinedMetadata?.convlab?.network;
  if (!net) throw new Error(`${modelJsonUrl}: no userDefinedMetadata.convlab.network; not a model written by convlab`);

  const base = new URL('.', new URL(modelJsonUrl, location.href));
  const entries = json.weightsManifest.flatMap((g) => g.weights);
  const buffers = await Promise.all(
    json.weightsManifest
      .flatMap((g) => g.paths)
      .map(async (p) => {
        const r = await fetch(new URL(p, base));
        if (!r.ok) throw new Error(`${p}: HTTP ${r.status}`);
        return r.arrayBuffer();
      }),
  );
  const weights = tf.io.decodeWeights(tf.io.concatenateArrayBuffers(buffers), entries);
  for (const spec of weightSpecs(net)) {
    const t = weights[spec.name];
    if (!t || t.shape.join() !== spec.shape.join()) {
      tf.dispose(Object.values(weights));
      throw new Error(`${modelJsonUrl}: weight ${spec.name} should have shape [${spec.shape}], got ${t ? `[${t.shape}]` : 'none'}`);
    }
  }
  return { net, params: paramsFrom(net, new Map(Object.entries(weights))) };
}

/** The lesson's initialisation (truncated normal 0.05, biases 0.05), seeded: the start of in-page training. */
export function freshNetwork(net: NetworkConfig, seed: number): Network {
  return { net, params: initParams(net, new Rng(seed)) };
}

export interface LayerOutput {
  name: string;
  kind: LayerKind;
  /** Without the batch dimension: [h, w, channels] for conv maps, [units] for dense layers. */
  shape: number[];
  data: Float32Array;
}

/** Everything the page shows for one drawing. */
export interface Look {
  /** The 28x28 input the network received. */
  input: Float32Array;
  /** conv1, conv2 (after pool + ReLU), fc1, fc2 (logits), softmax: the same list /api/activations returns. */
  layers: LayerOutput[];
  probabilities: Float32Array;
  class: number;
  /** Wall time of the forward pass and read-back. */
  ms: number;
}

/** Runs the network on one 28x28 image and reads every layer's output. */
export function look(network: Network, pixels: Float32Array): Look {
  const { net, params } = network;
  const t0 = performance.now();
  const tensors = tf.tidy(() => {
    const x = tf.tensor4d(pixels, [1, net.input.height, net.input.width, net.input.channels]);
    const record: Recorded = { conv: [], dense: [] };
    const logits = forward(net, params, x, record);
    return [...record.conv, ...record.dense, tf.softmax(logits)] as tf.Tensor[];
  });
  const values = tensors.map((t) => t.dataSync() as Float32Array); // outside tidy: see TFJS-NOTES "Traps"
  const shapes = tensors.map((t) => t.shape.slice(1));
  tf.dispose(tensors);
  const ms = performance.now() - t0;
  const layers = architecture(net).map((layer, k) => ({ name: layer.name, kind: layer.kind, shape: shapes[k], data: values[k] }));
  const probabilities = values[values.length - 1];
  let best = 0;
  for (let k = 1; k < probabilities.length; k++) if (probabilities[k] > probabilities[best]) best = k;
  return { input: pixels, layers, probabilities, class: best, ms };
}

export interface FilterBank {
  name: string;
  /** [size, size, inChannels, filters], as stored. */
  shape: number[];
  data: Float32Array;
}

/** The conv kernels, read back for drawing. */
export function filterBanks(network: Network): FilterBank[] {
  return network.net.conv.map((_, i) => {
    const w = network.params.get(`conv${i + 1}/kernel`)!;
    return { name: `conv${i + 1}`, shape: w.shape, data: w.dataSync() as Float32Array };
  });
}
