/**
 * What the wasm kernels share: calling other wasm kernels from inside a kernel, views on the backend's heap,
 * convolution geometry, zero padding, and the hand-written SIMD kernels of simd.wat on the backend's own memory.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { simdModuleBase64 } from './simd-module.ts';

export type TensorInfo = tf.TensorInfo;
export type KernelFunc = tf.KernelConfig['kernelFunc'];
export type Pad = { top: number; bottom: number; left: number; right: number };

// ---------------------------------------------------------------------------------------------------------
// Calling other wasm kernels from inside a kernel: intermediate results are TensorInfos we must free.

export function run(backend: BackendWasm, name: string, inputs: Record<string, TensorInfo>, attrs: object): TensorInfo {
  const kernel = tf.getKernel(name, 'wasm');
  if (kernel === undefined) throw new Error(`wasm kernel ${name} is not registered`);
  return kernel.kernelFunc({ inputs, attrs: attrs as tf.NamedAttrMap, backend }) as TensorInfo;
}

export function free(backend: BackendWasm, ...infos: TensorInfo[]): void {
  for (const info of infos) backend.disposeData(info.dataId);
}

export function transpose(backend: BackendWasm, x: TensorInfo, perm: number[]): TensorInfo {
  return run(backend, 'Transpose', { x }, { perm });
}

/** Views on the wasm heap. Take them after the last allocation: growing the heap detaches old views. */
export function heap(backend: BackendWasm, t: TensorInfo): Float32Array {
  return backend.typedArrayFromHeap(t as never) as Float32Array;
}

export function conv2DInfo(
  xShape: number[],
  filterShape: number[],
  attrs: { strides: number | [number, number]; pad: unknown; dilations?: number | [number, number]; dimRoundingMode?: unknown; dataFormat?: unknown },
) {
  return tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides,
    attrs.dilations ?? 1,
    attrs.pad as 'same',
    attrs.dimRoundingMode as 'round' | undefined,
    false,
    'channelsLast',
  );
}

export function isNhwc(dataFormat: unknown): boolean {
  return dataFormat === undefined || dataFormat === 'NHWC' || dataFormat === 'channelsLast';
}

/** Zero-pads (positive amounts) or crops (negative amounts) the spatial dims of an NHWC tensor. */
export function padOrCrop(backend: BackendWasm, x: TensorInfo, top: number, bottom: number, left: number, right: number): TensorInfo {
  const [b, h, w, c] = x.shape;
  const oh = h + top + bottom;
  const ow = w + left + right;
  const out = backend.makeOutput([b, oh, ow, c], 'float32');
  const src = heap(backend, x);
  const dst = heap(backend, out);
  dst.fill(0);
  const y0 = Math.max(0, -top);
  const y1 = Math.min(h, oh - top);
  const x0 = Math.max(0, -left);
  const x1 = Math.min(w, ow - left);
  if (x1 > x0) {
    const rowLen = (x1 - x0) * c;
    for (let n = 0; n < b; n++) {
      for (let y = y0; y < y1; y++) {
        const s = ((n * h + y) * w + x0) * c;
        const d = ((n * oh + y + top) * ow + x0 + left) * c;
        dst.set(src.subarray(s, s + rowLen), d);
      }
    }
  }
  return out;
}

/** The kernels of simd.wat, instantiated on the backend's own memory; undefined where that is not possible. */
export interface SimdKernels {
  maxPoolGrad2x2(x: number, dy: number, dx: number, rows: number, wo: number, c: number): void;
  convFilterGrad1x16(
    xp: number,
    dq: number,
    dy: number,
    dw0: number,
    dw1: number,
    nb: number,
    h: number,
    w: number,
    cb: number,
    rowSkip: number,
    imgSkip: number,
  ): void;
  sumRows(x: number, out: number, m: number, cols: number): void;
  addRows(a: number, b: number, out: number, rows: number, cb: number): void;
}
let simd: SimdKernels | null | undefined;
let simdAllowed = true;

/** Turns the SIMD kernels off (or back on): tests and benchmarks compare them with the JavaScript loops. */
export function allowSimdKernels(allowed: boolean): void {
  simdAllowed = allowed;
}

/** The wasm backend's own memory (every tensor lives in it), or undefined where the build does not expose it. */
export function backendMemory(backend: BackendWasm): WebAssembly.Memory | undefined {
  const memory = (backend.wasm as unknown as { asm?: { memory?: unknown } }).asm?.memory;
  return memory instanceof WebAssembly.Memory ? memory : undefined;
}

export function simdKernels(backend: BackendWasm): SimdKernels | undefined {
  if (!simdAllowed) return undefined;
  if (simd === undefined) {
    simd = null;
    const memory = backendMemory(backend);
    if (memory) {
      try {
        const bytes = Uint8Array.from(atob(simdModuleBase64), (ch) => ch.charCodeAt(0));
        simd = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } }).exports as unknown as SimdKernels;
      } catch {
        simd = null; // no wasm SIMD here: the JavaScript loops below are the fallback
      }
    }
  }
  return simd ?? undefined;
}
