/**
 * Dropout masks, drawn in plain JavaScript from seeded generators rather than inside the graph: each image
 * of a step draws its rows of every mask from its own stream (prepare.ts), so whichever worker draws them,
 * 1 worker, N workers and a resumed run all drop exactly the same values.
 */
import * as tf from '@tensorflow/tfjs';
import { layerShapes, type NetworkConfig } from '../model/config.ts';
import type { DropoutMasks } from '../model/cnn.ts';
import type { Rng } from '../data/rng.ts';

/** Per layer with dropout, the batch's mask flattened [B, ...shape]; undefined for layers without. */
export interface MaskArrays {
  conv: (Float32Array | undefined)[];
  dense: (Float32Array | undefined)[];
}

export function hasDropout(net: NetworkConfig): boolean {
  return net.conv.some((b) => b.dropout > 0) || net.dense.some((d) => d.dropout > 0);
}

/** Values per example of each layer's output, and its dropout rate. */
function layers(net: NetworkConfig): { conv: { size: number; rate: number }[]; dense: { size: number; rate: number }[] } {
  const shapes = layerShapes(net);
  return {
    conv: shapes.conv.map(([h, w, c], i) => ({ size: h * w * c, rate: net.conv[i].dropout })),
    dense: shapes.dense.map(([u], j) => ({ size: u, rate: net.dense[j].dropout })),
  };
}

/** Keep each value with probability 1−rate, scaled by 1/(1−rate) so the expected output is unchanged. */
export function drawDropoutMasks(net: NetworkConfig, count: number, rng: Rng): MaskArrays {
  const draw = ({ size, rate }: { size: number; rate: number }): Float32Array | undefined => {
    if (rate === 0) return undefined;
    const keep = 1 / (1 - rate);
    const mask = new Float32Array(count * size);
    for (let k = 0; k < mask.length; k++) mask[k] = rng.next() < rate ? 0 : keep;
    return mask;
  };
  const l = layers(net);
  return { conv: l.conv.map(draw), dense: l.dense.map(draw) };
}

/**
 * Masks of `count` images, image j's rows of every layer (in layer order) drawn from `rng(j)`: the same rows
 * for an image whichever slice of the batch it is drawn in.
 */
export function drawImageMasks(net: NetworkConfig, count: number, rng: (image: number) => Rng): MaskArrays {
  const l = layers(net);
  const all = [...l.conv, ...l.dense];
  const masks = all.map(({ size, rate }) => (rate === 0 ? undefined : new Float32Array(count * size)));
  for (let j = 0; j < count; j++) {
    const r = rng(j);
    all.forEach(({ size, rate }, i) => {
      const mask = masks[i];
      if (mask === undefined) return;
      const keep = 1 / (1 - rate);
      for (let k = j * size; k < (j + 1) * size; k++) mask[k] = r.next() < rate ? 0 : keep;
    });
  }
  return { conv: masks.slice(0, l.conv.length), dense: masks.slice(l.conv.length) };
}

/** Rows `start` to `end` (exclusive) of every mask: a worker's slice of the batch. */
export function sliceMasks(net: NetworkConfig, masks: MaskArrays, start: number, end: number): MaskArrays {
  const l = layers(net);
  const cut = (m: Float32Array | undefined, size: number) => m?.slice(start * size, end * size);
  return { conv: masks.conv.map((m, i) => cut(m, l.conv[i].size)), dense: masks.dense.map((m, j) => cut(m, l.dense[j].size)) };
}

/** The masks of `count` examples as tensors for `forward`; the caller disposes them (or runs in a tidy). */
export function maskTensors(net: NetworkConfig, masks: MaskArrays, count: number): DropoutMasks {
  const shapes = layerShapes(net);
  return {
    conv: masks.conv.map((m, i) => (m ? tf.tensor4d(m, [count, ...shapes.conv[i]]) : undefined)),
    dense: masks.dense.map((m, j) => (m ? tf.tensor2d(m, [count, shapes.dense[j][0]]) : undefined)),
  };
}

/** Every buffer of `masks`, for transferring them to a worker. */
export function maskBuffers(masks: MaskArrays): ArrayBuffer[] {
  return [...masks.conv, ...masks.dense].filter((m): m is Float32Array => m !== undefined).map((m) => m.buffer as ArrayBuffer);
}
