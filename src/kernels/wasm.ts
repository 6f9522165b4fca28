/**
 * Gradient kernels for the wasm backend.
 *
 * TensorFlow.js 4.22's wasm backend has no `Conv2DBackpropFilter` at all, and its `Conv2DBackpropInput`,
 * `MaxPoolGrad` and transposed `BatchMatMul` are 10x slower than its forward kernels (see
 * ../shared/TFJS-NOTES.md). We register replacements so that plain `tf.conv2d`, `tf.maxPool` and
 * `tf.matMul` train on wasm through ordinary autodiff:
 *
 * - Conv2D, and the stride-1 input and filter gradients: generated wasm SIMD kernels (conv-direct.ts,
 *   conv-filter-direct.ts), Winograd F(2x2, 5x5) for 5x5 filters with ≥ 8 channels both ways (winograd.ts).
 * - Conv2DBackpropFilter: dW is itself a convolution. Treat the padded input as Cin images of B channels
 *   and dy as an Ho x Wo filter from B to Cout channels; XNNPACK's forward conv does the rest. For filters with
 *   few taps (kh·kw·Cin ≤ 64, the first layer) one matrix product of the transposed patches with dy instead,
 *   or, for one input channel, stride 1 and Cout a multiple of 16, a SIMD kernel (simd.wat) that sums
 *   xpad·dy over the pixels directly.
 * - Conv2DBackpropInput (stride 1): dx is the correlation of dy with the 180°-rotated filter, again a
 *   forward conv (with explicit padding so asymmetric SAME padding is exact).
 * - MaxPoolGrad: a direct loop over the wasm heap that routes each dy to the first maximum of its window,
 *   exactly as TensorFlow's CPU kernel does (ties matter: on a blank background every value in a window
 *   is equal to the bias).
 * - BatchMatMul: the dense layers' three products on generated SIMD kernels (dense.ts); other transposed products
 *   transpose first (the smaller side), then run the fast non-transposed kernel.
 * - Sum over leading axes (bias gradients) without the stock kernel's transpose (SIMD, float32 blocks added in
 *   float64, when the kept size is a multiple of 4), and Identity (tfjs clones every tensor it saves for the
 *   backward pass) without a copy.
 * - Add of a bias (a [.., C] + b [C], C a multiple of 4): one SIMD pass instead of the stock broadcasting loop.
 *
 * Any configuration a fast path does not cover falls back to the stock kernel (or, for the filter
 * gradient, to a dilated-conv formulation that covers every stride), never to a wrong answer.
 * test/kernels/conformance.test.ts checks each against the cpu backend on random shapes.
 */
import * as tf from '@tensorflow/tfjs';
import type { KernelFunc } from './common.ts';
import { conv2DBackpropFilter, filterGradientRoute } from './conv-filter.ts';
import { conv2DDirect, directConvCovers } from './conv-direct.ts';
import { conv2DBackpropInput } from './conv-input.ts';
import { add, identity, sum } from './elementwise.ts';
import { batchMatMul } from './matmul.ts';
import { maxPoolGrad } from './pool.ts';
import { winogradCovers } from './winograd.ts';

export { allowSimdKernels } from './common.ts';
export { IM2COL_MAX_TAPS } from './conv-filter.ts';
export { allowDirectConv } from './conv-direct.ts';
export { allowRelaxedSimd } from './emit.ts';
export { allowWinograd } from './winograd.ts';

let installed = false;

/** Registers the fast gradient kernels for 'wasm'. Call after the wasm backend is registered; idempotent. */
export function installWasmGradients(): void {
  if (installed) return;
  installed = true;
  const stock = (name: string): KernelFunc | undefined => tf.getKernel(name, 'wasm')?.kernelFunc;
  const original = {
    conv2DBackpropInput: stock('Conv2DBackpropInput'),
    maxPoolGrad: stock('MaxPoolGrad'),
    batchMatMul: stock('BatchMatMul'),
  };
  const stockConv2D = stock('Conv2D');
  replace('Conv2D', (args) => conv2DDirect(args as never) ?? (stockConv2D as KernelFunc)(args));
  replace('Conv2DBackpropFilter', (args) => conv2DBackpropFilter(args as never));
  replace('Conv2DBackpropInput', (args) => conv2DBackpropInput(args as never, original.conv2DBackpropInput));
  replace('MaxPoolGrad', (args) => maxPoolGrad(args as never, original.maxPoolGrad));
  replace('BatchMatMul', (args) => batchMatMul(args as never, original.batchMatMul));
  const stockSum = stock('Sum');
  replace('Sum', (args) => sum(args as never, stockSum));
  const stockIdentity = stock('Identity');
  replace('Identity', (args) => identity(args as never, stockIdentity));
  const stockAdd = stock('Add');
  replace('Add', (args) => add(args as never, stockAdd));
}

function replace(kernelName: string, kernelFunc: KernelFunc): void {
  if (tf.getKernel(kernelName, 'wasm') !== undefined) tf.unregisterKernel(kernelName, 'wasm');
  tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc });
}

/** Which kernel runs each product of a convolution on wasm: 'winograd' or 'direct' (generated here), 'xnnpack', or a named path. */
export function convRoutes(
  xShape: [number, number, number, number],
  wShape: [number, number, number, number],
  stride: number,
  pad: 'same' | 'valid',
): { forward: string; inputGradient: string; filterGradient: string } {
  const info = tf.backend_util.computeConv2DInfo(xShape, wShape, stride, 1, pad, undefined, false, 'channelsLast');
  const [kh, kw, cin, cout] = wShape;
  let inputGradient = 'xnnpack (stock, strided)';
  if (stride === 1) {
    // dy correlated with the rotated filter, padded by k − 1 − pad: see conv-input.ts
    const { top, left } = info.padInfo;
    const dyInfo = tf.backend_util.computeConv2DInfo(
      [xShape[0], info.outHeight, info.outWidth, cout],
      [kh, kw, cout, cin],
      1,
      1,
      [
        [0, 0],
        [kh - 1 - top, xShape[1] - info.outHeight + top],
        [kw - 1 - left, xShape[2] - info.outWidth + left],
        [0, 0],
      ] as never,
      undefined,
      false,
      'channelsLast',
    );
    inputGradient = route(dyInfo);
  }
  return { forward: route(info), inputGradient, filterGradient: filterGradientRoute(info) };
}

const route = (info: tf.backend_util.Conv2DInfo) => (!directConvCovers(info) ? 'xnnpack' : winogradCovers(info) ? 'winograd' : 'direct');
