/** Loading a saved model back into convlab's own network (parameters as variables). */
import type { NetworkConfig } from './config.ts';
import { loadModel } from './checkpoint.ts';
import { paramsFrom, type Params } from './cnn.ts';

export interface LoadedModel {
  net: NetworkConfig;
  params: Params;
  metadata: Record<string, unknown>;
}

export async function loadParams(dir: string): Promise<LoadedModel> {
  const { net, weights, metadata } = await loadModel(dir);
  return { net, params: paramsFrom(net, weights), metadata };
}
