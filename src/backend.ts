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
  shimNodeUtil(require('node:util'));
  // A computed specifier keeps bundlers and the type checker from requiring the optional package.
  const specifier = '@tensorflow/tfjs-node';
  await import(specifier);
}

/**
 * `@tensorflow/tfjs-node` 4.22 (the newest release) calls `util.isNullOrUndefined`, which Node 23 removed
 * (DEP0051), in its kernel backend and TopK kernel; its `util.isArray` call is deprecated (DEP0044) but
 * still there in Node 24 and 26. Upstream fixed both (tensorflow/tfjs#8425) but has not released the fix.
 * The package looks them up on the `util` module at call time, so defining the missing ones on that
 * module before it runs is enough. Only missing functions are added; existing ones are left alone.
 */
export function shimNodeUtil(util: object): string[] {
  const shims: Record<string, (value: unknown) => boolean> = {
    isNullOrUndefined: (value) => value === null || value === undefined,
    isArray: (value) => Array.isArray(value),
  };
  const added: string[] = [];
  const target = util as Record<string, unknown>;
  for (const [name, fn] of Object.entries(shims)) {
    if (typeof target[name] === 'function') continue;
    Object.defineProperty(target, name, { value: fn, writable: true, configurable: true, enumerable: false });
    added.push(name);
  }
  return added;
}
