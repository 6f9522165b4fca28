/** MaxPoolGrad on wasm: TensorFlow's first-maximum rule, a SIMD kernel for the lesson's 2x2 pool. */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { type KernelFunc, type TensorInfo, heap, simdKernels } from './common.ts';

// ---------------------------------------------------------------------------------------------------------
// MaxPoolGrad: route dy to the first maximum of each window (TensorFlow's tie rule).

interface MaxPoolGradArgs {
  inputs: { dy: TensorInfo; input: TensorInfo; output: TensorInfo };
  attrs: { filterSize: number | [number, number]; strides: number | [number, number]; pad: unknown; dimRoundingMode: unknown };
  backend: BackendWasm;
}

export function maxPoolGrad(args: MaxPoolGradArgs, fallback: KernelFunc | undefined): TensorInfo {
  const { inputs, attrs, backend } = args;
  const { dy, input } = inputs;
  if (input.dtype !== 'float32') {
    if (fallback === undefined) throw new Error('convlab: no MaxPoolGrad kernel for this dtype');
    return fallback(args as never) as TensorInfo;
  }
  const info = tf.backend_util.computePool2DInfo(
    input.shape as [number, number, number, number],
    attrs.filterSize,
    attrs.strides,
    1,
    attrs.pad as 'same',
    attrs.dimRoundingMode as 'round' | undefined,
  );
  const { batchSize: nb, inHeight: h, inWidth: w, inChannels: c, outHeight: ho, outWidth: wo } = info;
  const { strideHeight: sh, strideWidth: sw, filterHeight: fh, filterWidth: fw } = info;
  const { top, left } = info.padInfo;
  const dx = backend.makeOutput(input.shape, 'float32');
  const xv = heap(backend, input);
  const gv = heap(backend, dy);
  const dv = heap(backend, dx);
  if (fh === 2 && fw === 2 && sh === 2 && sw === 2 && top === 0 && left === 0 && h % 2 === 0 && w % 2 === 0) {
    const simd = c % 4 === 0 && nb * ho * wo > 0 ? simdKernels(backend) : undefined;
    if (simd) simd.maxPoolGrad2x2(xv.byteOffset, gv.byteOffset, dv.byteOffset, nb * ho, wo, c);
    else maxPoolGrad2x2(xv, gv, dv, nb * ho, wo, c);
    return dx;
  }
  dv.fill(0);
  for (let n = 0; n < nb; n++) {
    for (let oy = 0; oy < ho; oy++) {
      const y0 = Math.max(0, oy * sh - top);
      const y1 = Math.min(h, oy * sh - top + fh);
      for (let ox = 0; ox < wo; ox++) {
        const x0 = Math.max(0, ox * sw - left);
        const x1 = Math.min(w, ox * sw - left + fw);
        const g = ((n * ho + oy) * wo + ox) * c;
        for (let ch = 0; ch < c; ch++) {
          let best = -Infinity;
          let at = -1;
          for (let y = y0; y < y1; y++) {
            let p = ((n * h + y) * w + x0) * c + ch;
            for (let x = x0; x < x1; x++, p += c) {
              const v = xv[p];
              // Strictly greater keeps the first maximum; `at < 0` makes an all -Infinity window route somewhere.
              if (v > best || at < 0) {
                best = v;
                at = p;
              }
            }
          }
          if (at >= 0) dv[at] += gv[g + ch];
        }
      }
    }
  }
  return dx;
}

/**
 * The lesson's pool (2x2, stride 2, even sizes): windows tile the input exactly, so zero dx in one fill (a
 * memset) and write each window's gradient once. `rows` = batch x output rows. (Zeroing the four elements
 * of each window in the loop, or a branch-free selection, measured slower.)
 */
function maxPoolGrad2x2(xv: Float32Array, gv: Float32Array, dv: Float32Array, rows: number, wo: number, c: number): void {
  const rowStride = 2 * wo * c; // one input row
  dv.fill(0);
  let g = 0;
  for (let r = 0; r < rows; r++) {
    let i0 = 2 * r * rowStride;
    for (let ox = 0; ox < wo; ox++, i0 += c) {
      for (let ch = 0; ch < c; ch++, i0++, g++) {
        // First maximum in row-major order, as TensorFlow's kernel (ties go to the earliest).
        let at = i0;
        let best = xv[i0];
        const b = xv[i0 + c];
        if (b > best) {
          best = b;
          at = i0 + c;
        }
        const d = xv[i0 + rowStride];
        if (d > best) {
          best = d;
          at = i0 + rowStride;
        }
        if (xv[i0 + rowStride + c] > best) at = i0 + rowStride + c;
        dv[at] = gv[g];
      }
    }
  }
}
