/**
 * Choosing the TensorFlow.js backend in the browser: WebGL (the GPU) when it works, else wasm (XNNPACK,
 * SIMD), else plain JavaScript. `?backend=wasm` in the page's address forces one.
 *
 * The wasm backend's binaries come from the server (/tfjs-wasm/, copied from node_modules), never a CDN.
 * It has no Conv2DBackpropFilter, so for training we register convlab's gradient kernels on it.
 */
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { installWasmGradients } from '../../src/kernels/wasm.ts';

export const BACKEND_ORDER = ['webgl', 'wasm', 'cpu'] as const;
export type WebBackend = (typeof BACKEND_ORDER)[number];

function isWebBackend(name: string | null): name is WebBackend {
  return (BACKEND_ORDER as readonly (string | null)[]).includes(name);
}

/** Tries each backend in order (or only `requested`) and returns the first that runs a tiny op. */
export async function chooseBackend(requested: string | null, onSkip: (name: string, why: string) => void): Promise<WebBackend> {
  setWasmPaths('/tfjs-wasm/');
  tf.enableProdMode();
  const order: readonly WebBackend[] = isWebBackend(requested) ? [requested] : BACKEND_ORDER;
  for (const name of order) {
    try {
      const software = name === 'webgl' && order.length > 1 ? softwareWebGL() : null;
      if (software) {
        onSkip(name, `software rendering (${software}) is slower than wasm here`);
        continue;
      }
      if (!(await tf.setBackend(name))) {
        onSkip(name, 'not available here');
        continue;
      }
      await tf.ready();
      const probe = tf.tidy(() => tf.sum(tf.add(tf.ones([2, 2]), 1)));
      const value = (await probe.data())[0];
      probe.dispose();
      if (value !== 8) throw new Error(`probe computed ${value}, expected 8`);
      if (name === 'wasm') installWasmGradients();
      return name;
    } catch (err) {
      onSkip(name, (err as Error)?.message ?? String(err));
    }
  }
  throw new Error(`no TensorFlow.js backend works in this browser (tried ${order.join(', ')})`);
}

/**
 * The renderer's name when WebGL runs on the CPU (SwiftShader, llvmpipe: machines without a GPU, headless
 * browsers), else null. There, WebGL is the slowest choice: measured in headless Chromium, a forward pass
 * took ~20 ms on SwiftShader against ~2 ms on wasm, and training was over 20 times slower.
 */
function softwareWebGL(): string | null {
  try {
    const gl = document.createElement('canvas').getContext('webgl2') ?? document.createElement('canvas').getContext('webgl');
    if (!gl) return null; // no WebGL at all: setBackend('webgl') will say so
    const info = gl.getExtension('WEBGL_debug_renderer_info');
    const renderer = String(gl.getParameter(info ? info.UNMASKED_RENDERER_WEBGL : gl.RENDERER));
    gl.getExtension('WEBGL_lose_context')?.loseContext();
    return /swiftshader|llvmpipe|softpipe|software|basic render/i.test(renderer) ? renderer : null;
  } catch {
    return null;
  }
}
