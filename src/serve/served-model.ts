/** The model as the server holds it: loaded once at start (checked by model/load.ts), disposed at close. */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadParams } from '../model/load.ts';
import { disposeParams, type Params } from '../model/cnn.ts';
import type { NetworkConfig } from '../model/config.ts';

export interface ServedModel {
  dir: string;
  net: NetworkConfig;
  params: Params;
  metadata: Record<string, unknown>;
  metrics: Record<string, unknown> | null;
  /** The files as on disk, served to the page and to tf.loadLayersModel. */
  modelJson: Buffer;
  weights: Buffer;
}

export async function loadServedModel(dir: string): Promise<ServedModel> {
  const { net, params, metadata } = await loadParams(dir); // checks every file and shape, with typed errors
  try {
    const [modelJson, weights] = await Promise.all([readFile(join(dir, 'model.json')), readFile(join(dir, 'weights.bin'))]);
    let metrics: Record<string, unknown> | null = null;
    try {
      metrics = JSON.parse(await readFile(join(dir, 'metrics.json'), 'utf8')) as Record<string, unknown>;
    } catch {
      // metrics.json is optional: a model saved by other means has none
    }
    return { dir, net, params, metadata, metrics, modelJson, weights };
  } catch (err) {
    disposeParams(params);
    throw err;
  }
}
