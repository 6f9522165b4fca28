/**
 * What the network learned, as a map: the last hidden layer's values for a few thousand test images,
 * laid out in 2-D by UMAP (McInnes et al. 2018, through the maintained `umap-js`), seeded so the same
 * model always gives the same map. A new image (the page's drawing) is placed with the fitted map's own
 * `transform`: its nearest neighbours among the fitted images, then a short optimisation against their
 * fixed positions, as umap-learn does.
 *
 * The fitted map travels as plain JSON (`EmbeddingFile`): positions, labels, the hidden vectors and the
 * nearest-neighbour graph, which is all `transform` needs, so the page restores it without refitting.
 * No Node imports: the page imports this module (the server caches the file, see src/viz/embedding.ts).
 */
import * as tf from '@tensorflow/tfjs';
import { UMAP } from 'umap-js';
import { Rng } from '../data/rng.ts';
import { forward, type Activations, type Params } from '../model/cnn.ts';
import { flattenSize, type NetworkConfig } from '../model/config.ts';
import { classifyBatch } from '../model/architecture.ts';

export interface EmbeddingParams {
  /** Test images in the map (the first `count`). */
  count: number;
  nNeighbors: number;
  minDist: number;
  /** Optimisation epochs of the fit. */
  nEpochs: number;
  seed: number;
}

export const EMBEDDING_DEFAULTS: Readonly<EmbeddingParams> = { count: 2000, nNeighbors: 15, minDist: 0.1, nEpochs: 200, seed: 1 };

/** A fitted map, as the server caches it and the page receives it. */
export interface EmbeddingFile {
  version: 1;
  /** Identifies the model's weights (the caller's hash); a cached map with another key is stale. */
  key: string;
  params: EmbeddingParams;
  /** The layer whose values are mapped, e.g. `fc1` (or `flatten` for a network with one dense layer). */
  layer: string;
  count: number;
  /** Length of one hidden vector. */
  dims: number;
  labels: number[];
  predicted: number[];
  /** [x, y] per image. */
  points: [number, number][];
  /** count*dims float32, little-endian, base64. */
  features: string;
  knnIndices: number[][];
  knnDistances: number[][];
  /** Wall time of the fit. */
  fitSeconds: number;
}

/** The last hidden layer: the dense layer before the logits, or the flattened last conv block. */
export function hiddenLayer(net: NetworkConfig): { name: string; dims: number } {
  if (net.dense.length >= 2) return { name: `fc${net.dense.length - 1}`, dims: net.dense[net.dense.length - 2].units };
  return { name: 'flatten', dims: flattenSize(net) };
}

/**
 * The last hidden layer's values and the predicted class for `count` images (NHWC, concatenated), in
 * batches of at most 250 (fewer for large activations: `classifyBatch`). Returns count*dims values.
 */
export function hiddenFeatures(
  net: NetworkConfig,
  params: Params,
  images: Float32Array,
  count: number,
): { features: Float32Array; predicted: Int32Array; dims: number } {
  const { height, width, channels } = net.input;
  const size = height * width * channels;
  const { dims } = hiddenLayer(net);
  const features = new Float32Array(count * dims);
  const predicted = new Int32Array(count);
  const batch = Math.min(250, classifyBatch(net));
  for (let start = 0; start < count; start += batch) {
    const n = Math.min(batch, count - start);
    const [h, p] = tf.tidy(() => {
      const x = tf.tensor4d(images.subarray(start * size, (start + n) * size), [n, height, width, channels]);
      const record: Activations = { conv: [], dense: [] };
      const logits = forward(net, params, x, record);
      const hidden = net.dense.length >= 2 ? record.dense[net.dense.length - 2] : tf.reshape(record.conv[record.conv.length - 1], [n, -1]);
      return [hidden, tf.argMax(logits, 1)];
    });
    features.set(h.dataSync() as Float32Array, start * dims);
    predicted.set(p.dataSync() as Int32Array, start);
    tf.dispose([h, p]);
  }
  return { features, predicted, dims };
}

function rows(features: Float32Array, dims: number): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < features.length / dims; i++) out.push(Array.from(features.subarray(i * dims, (i + 1) * dims)));
  return out;
}

/** A seeded source of [0,1) numbers for umap-js (which otherwise uses Math.random). */
const seeded = (seed: number) => {
  const rng = new Rng(seed);
  return () => rng.next();
};

/** Fits the map. Deterministic for a seed. */
export function fitEmbedding(
  features: Float32Array,
  dims: number,
  meta: { key: string; layer: string; labels: ArrayLike<number>; predicted: ArrayLike<number> },
  params: EmbeddingParams = EMBEDDING_DEFAULTS,
): EmbeddingFile {
  const t0 = performance.now();
  const X = rows(features, dims);
  const umap = new UMAP({ nComponents: 2, nNeighbors: params.nNeighbors, minDist: params.minDist, nEpochs: params.nEpochs, random: seeded(params.seed) });
  const points = umap.fit(X).map((p) => [p[0], p[1]] as [number, number]);
  const internals = umap as unknown as { knnIndices: number[][]; knnDistances: number[][] };
  return {
    version: 1,
    key: meta.key,
    params,
    layer: meta.layer,
    count: X.length,
    dims,
    labels: Array.from(meta.labels),
    predicted: Array.from(meta.predicted),
    points,
    features: toBase64(new Uint8Array(features.buffer, features.byteOffset, features.byteLength)),
    knnIndices: internals.knnIndices.map((r) => Array.from(r)),
    knnDistances: internals.knnDistances.map((r) => Array.from(r, (v) => Math.fround(v))),
    fitSeconds: (performance.now() - t0) / 1000,
  };
}

/** The features of a file as a Float32Array. */
export function embeddingFeatures(file: EmbeddingFile): Float32Array {
  const bytes = fromBase64(file.features);
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
}

/** umap-js 1.4's internals that transform() uses after its neighbour search (private in its types). */
interface UmapInternals {
  embedding: number[][];
  random: () => number;
  smoothKNNDistance(distances: number[][], k: number, localConnectivity: number): { sigmas: number[]; rhos: number[] };
  makeEpochsPerSample(weights: number[], nEpochs: number): number[];
  assignOptimizationStateParameters(state: Record<string, unknown>): void;
  prepareForOptimizationLoop(): void;
  optimizeLayout(): number[][];
}

/**
 * A fitted map restored from its file: places new hidden vectors on it with umap-js's transform, step for
 * step, except for the neighbour search: umap-js searches its approximate neighbour graph and rebuilds that
 * graph's sparse form on every call (~100 ms for 2,000 points); here the 15 nearest fitted vectors are
 * found exactly, by brute force (2,000 distances, well under a millisecond).
 */
export class Projector {
  private readonly umap: UMAP;
  private readonly u: UmapInternals;
  private readonly seed: number;
  private readonly X: Float32Array;
  private readonly dims: number;
  private readonly k: number;

  constructor(file: EmbeddingFile) {
    this.X = embeddingFeatures(file);
    this.dims = file.dims;
    if (this.X.length !== file.count * file.dims || file.points.length !== file.count) {
      throw new Error(`embedding file holds ${this.X.length / file.dims} vectors and ${file.points.length} points, expected ${file.count}`);
    }
    this.seed = file.params.seed;
    this.k = file.params.nNeighbors;
    this.umap = new UMAP({ nComponents: 2, nNeighbors: file.params.nNeighbors, minDist: file.params.minDist, random: seeded(this.seed) });
    this.u = this.umap as unknown as UmapInternals;
    this.u.embedding = file.points.map((p) => [p[0], p[1]]);
  }

  /** Indices and distances of the k nearest fitted vectors, nearest first. */
  neighbours(vector: ArrayLike<number>): { indices: number[]; distances: number[] } {
    const { X, dims, k } = this;
    const n = X.length / dims;
    const best: { i: number; d: number }[] = [];
    for (let i = 0; i < n; i++) {
      let d = 0;
      for (let j = 0; j < dims; j++) {
        const t = X[i * dims + j] - vector[j];
        d += t * t;
      }
      if (best.length < k || d < best[best.length - 1].d) {
        best.push({ i, d });
        best.sort((a, b) => a.d - b.d);
        if (best.length > k) best.pop();
      }
    }
    return { indices: best.map((b) => b.i), distances: best.map((b) => Math.sqrt(b.d)) };
  }

  /** [x, y] of one hidden vector. Deterministic: the same vector always lands on the same spot. */
  project(vector: ArrayLike<number>): [number, number] {
    const u = this.u;
    u.random = seeded(this.seed);
    const { indices, distances } = this.neighbours(vector);
    // membership strengths of the fuzzy set, as umap-js transform (local connectivity 1 − 1 = 0)
    const { sigmas, rhos } = u.smoothKNNDistance([distances], this.k, 0);
    const vals = distances.map((d) => (d - rhos[0] <= 0 ? 1 : Math.exp(-(d - rhos[0]) / sigmas[0])));
    const total = vals.reduce((a, b) => a + b, 0) || 1;
    // start at the weighted mean of the neighbours' positions
    const start = [0, 0];
    indices.forEach((i, j) => {
      start[0] += (vals[j] / total) * u.embedding[i][0];
      start[1] += (vals[j] / total) * u.embedding[i][1];
    });
    // then umap's optimisation against the fixed map: 100 epochs, weak edges dropped
    const nEpochs = 100;
    const max = Math.max(...vals);
    const kept = vals.map((v, j) => ({ v, j })).filter(({ v }) => v >= max / nEpochs);
    u.assignOptimizationStateParameters({
      headEmbedding: [start],
      tailEmbedding: u.embedding,
      head: kept.map(() => 0),
      tail: kept.map(({ j }) => indices[j]),
      currentEpoch: 0,
      nEpochs,
      nVertices: u.embedding.length,
      epochsPerSample: u.makeEpochsPerSample(
        kept.map(({ v }) => v),
        nEpochs,
      ),
    });
    u.prepareForOptimizationLoop();
    const [p] = u.optimizeLayout();
    return [p[0], p[1]];
  }
}

function toBase64(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

function fromBase64(text: string): Uint8Array {
  const s = atob(text);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}
