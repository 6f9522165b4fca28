/**
 * The parameters as one flat vector: every weight tensor in weightSpecs order, concatenated. The worker
 * pool keeps the weights this way in shared memory, and the flat update rules (flat.ts) work on it.
 */
import * as tf from '@tensorflow/tfjs';
import { weightSpecs, type NetworkConfig } from '../model/config.ts';
import type { Params } from '../model/cnn.ts';

/** Where each parameter sits in the flat vector (weightSpecs order). */
export interface ParamSlice {
  name: string;
  shape: number[];
  offset: number;
  size: number;
}

export function paramLayout(net: NetworkConfig): ParamSlice[] {
  let offset = 0;
  return weightSpecs(net).map(({ name, shape }) => {
    const size = shape.reduce((a, b) => a * b, 1);
    const slice = { name, shape, offset, size };
    offset += size;
    return slice;
  });
}

export function paramCount(layout: ParamSlice[]): number {
  return layout.reduce((n, s) => n + s.size, 0);
}

/** All parameters concatenated in weightSpecs order. */
export function flattenParams(net: NetworkConfig, params: Params): Float32Array {
  const layout = paramLayout(net);
  const out = new Float32Array(paramCount(layout));
  for (const { name, offset } of layout) out.set(params.get(name)!.dataSync() as Float32Array, offset);
  return out;
}

/** Writes the flat weights (weightSpecs order) into `params`. */
export function assignFlat(net: NetworkConfig, params: Params, flat: Float32Array): void {
  for (const { name, shape, offset, size } of paramLayout(net)) {
    const values = tf.tensor(flat.slice(offset, offset + size), shape);
    params.get(name)!.assign(values);
    values.dispose();
  }
}
