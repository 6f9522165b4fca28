/**
 * Choosing and starting a TensorFlow.js backend in Node.
 *
 * - `wasm` (default): XNNPACK kernels, SIMD, one thread (wasm threads do not run in Node), plus
 *   convlab's gradient kernels (src/kernels/wasm.ts) so that training works and is fast.
 * - `cpu`: plain JavaScript kernels, the reference for correctness; far too slow to train on.
 * - `tensorflow`: native libtensorflow through `@tensorflow/tfjs-node`, used only when the user has
 *   installed it (it is never a dependency: its install script downloads libtensorflow).
 */
import * as tf from '@tensorflow/tfjs';
import { createRequire } from 'node:module';
import { UsageError } from './errors.ts';
import { installWasmGradients } from './kernels/wasm.ts';

export const backendNames = ['wasm', 'cpu', 'tensorflow'] as const;
export type BackendName = (typeof backendNames)[number];

export function isBackendName(name: string): name is BackendName {
  return (backendNames as readonly string[]).includes(name);
}

/** Makes `name` the active backend and waits until it is ready. Safe to call repeatedly. */
export async function useBackend(name: BackendName): Promise<void> {
  // Production mode: no debug checks, and no "install tfjs-node" banner on the cpu backend's first use.
  tf.enableProdMode();
  if (name === 'wasm') await import('@tensorflow/tfjs-backend-wasm');
  else if (name === 'tensorflow') await loadTfjsNode();
  const ok = await tf.setBackend(name);
  if (!ok) throw new UsageError('BACKEND_INIT', `backend "${name}" failed to initialise`);
  await tf.ready();
  // After initialisation: the backend runs each stock kernel's setup (binding its wasm function) only
  // for kernels registered when it starts, and our replacements call some of those stock kernels.
  if (name === 'wasm') installWasmGradients();
}

async function loadTfjsNode(): Promise<void> {
  const require = createRequire(import.meta.url);
  try {
    require.resolve('@tensorflow/tfjs-node');
  } catch {
    throw new UsageError(
      'BACKEND_MISSING',
      'backend "tensorflow" needs @tensorflow/tfjs-node, which is not installed: run `npm install @tensorflow/tfjs-node@4.22.0` (it downloads libtensorflow), or use --backend wasm',
    );
  }
  // A computed specifier keeps bundlers and the type checker from requiring the optional package.
  const specifier = '@tensorflow/tfjs-node';
  await import(specifier);
}
