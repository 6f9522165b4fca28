/** The server, as the page knows it: typed by src/serve/schema.ts, nothing else. */
import type { LabeledImages } from '../../src/data/idx.ts';
import type { ApiErrorBody, MnistSplit, MnistSubset, ModelInfo, Prediction } from '../../src/serve/schema.ts';

async function call<T>(url: string, init?: RequestInit): Promise<T> {
  const response = await fetch(url, init);
  const body = (await response.json().catch(() => null)) as T | ApiErrorBody | null;
  if (!response.ok) {
    const error = (body as ApiErrorBody | null)?.error;
    throw new Error(error ? `${error.code}: ${error.message}` : `${url}: HTTP ${response.status}`);
  }
  return body as T;
}

export const getModelInfo = (): Promise<ModelInfo> => call('/api/model');

export function predictOnServer(pixels: Float32Array): Promise<Prediction> {
  return call('/api/predict', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ pixels: Array.from(pixels) }),
  });
}

/** MNIST examples from the server, decoded to what the training code takes (pixels in [0,1]). */
export async function getMnist(split: MnistSplit, count: number, offset = 0): Promise<LabeledImages> {
  const s = await call<MnistSubset>(`/api/mnist-subset?split=${split}&count=${count}&offset=${offset}`);
  const bytes = fromBase64(s.pixels);
  const images = new Float32Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) images[i] = bytes[i] / 255;
  return { images, labels: fromBase64(s.labels), count: s.count, height: s.height, width: s.width, channels: 1 };
}

function fromBase64(text: string): Uint8Array {
  const binary = atob(text);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

// --- the explain routes (src/serve/explain-routes.ts)
import type { Embedding, ErrorCell, TestRun } from '../../src/explain/api.ts';

export const getTestRun = (): Promise<TestRun> => call('/api/explain/test-run');
export const getErrors = (trueClass: number, predicted: number, limit = 48): Promise<ErrorCell> =>
  call(`/api/explain/errors?true=${trueClass}&predicted=${predicted}&limit=${limit}`);
export const getEmbedding = (): Promise<Embedding> => call('/api/explain/embedding');

/** A test image's base64 bytes (pixel*255) → the network's floats in [0,1]. */
export function pixelsFromBase64(text: string): Float32Array {
  const bytes = fromBase64(text);
  const out = new Float32Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) out[i] = bytes[i] / 255;
  return out;
}
