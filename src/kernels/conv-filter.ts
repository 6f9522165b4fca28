/** Conv2DBackpropFilter on wasm (the backend has none): see the routes below and wasm.ts. */
import type * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { type Pad, type SimdKernels, type TensorInfo, conv2DInfo, free, heap, isNhwc, padOrCrop, run, simdKernels, transpose } from './common.ts';
import { directConvEnabled } from './conv-direct.ts';
import { conv2DBackpropFilterDirect, directFilterCovers } from './conv-filter-direct.ts';
import { conv2DBackpropFilterWinograd, winogradCovers } from './winograd.ts';

// ---------------------------------------------------------------------------------------------------------
// Conv2DBackpropFilter: dW[i,j,c,o] = Σ_{b,y,x} xpad[b, y·s+i, x·s+j, c] · dy[b,y,x,o]

interface BackpropFilterArgs {
  inputs: { x: TensorInfo; dy: TensorInfo };
  attrs: { strides: number | [number, number]; pad: unknown; dataFormat: unknown; dimRoundingMode: unknown; filterShape: [number, number, number, number] };
  backend: BackendWasm;
}

/** Winograd F(5x5, 2x2) for the filter gradient: the forward's rule (winograd.ts), with the direct kernels on and no negative padding. */
function winogradFilterCovers(info: tf.backend_util.Conv2DInfo): boolean {
  const { top, bottom, left, right } = info.padInfo as Pad;
  return directConvEnabled() && winogradCovers(info) && Math.min(top, bottom, left, right) >= 0 && info.batchSize * info.outHeight * info.outWidth > 0;
}

/** Which path computes the filter gradient of this configuration (for the bench's report). */
export function filterGradientRoute(info: tf.backend_util.Conv2DInfo): string {
  if (info.filterHeight * info.filterWidth * info.inChannels <= IM2COL_MAX_TAPS) {
    const oneChannel = info.inChannels === 1 && info.strideHeight === 1 && info.strideWidth === 1 && info.dilationHeight === 1 && info.dilationWidth === 1;
    return oneChannel && info.outChannels % 16 === 0 ? 'simd one-channel' : 'im2col matmul';
  }
  if (winogradFilterCovers(info)) return 'winograd';
  return directFilterCovers(info) ? 'direct' : 'xnnpack (forward-conv trick)';
}

export function conv2DBackpropFilter({ inputs, attrs, backend }: BackpropFilterArgs): TensorInfo {
  const { x, dy } = inputs;
  if (!isNhwc(attrs.dataFormat)) throw new Error('convlab: Conv2DBackpropFilter on wasm supports NHWC only');
  const info = conv2DInfo(x.shape, attrs.filterShape, attrs);
  const few = info.filterHeight * info.filterWidth * info.inChannels <= IM2COL_MAX_TAPS;
  if (few && x.dtype === 'float32' && dy.dtype === 'float32' && info.batchSize * info.outHeight * info.outWidth * info.outChannels > 0) {
    const oneChannel = info.inChannels === 1 && info.strideHeight === 1 && info.strideWidth === 1 && info.dilationHeight === 1 && info.dilationWidth === 1;
    const simd = oneChannel && info.outChannels % 16 === 0 ? simdKernels(backend) : undefined;
    if (simd) return conv2DBackpropFilterOneChannel(backend, simd, x, dy, info);
    return conv2DBackpropFilterIm2col(backend, x, dy, info);
  }
  if (winogradFilterCovers(info) && x.dtype === 'float32' && dy.dtype === 'float32') {
    const { top, left } = info.padInfo as Pad;
    const geometry = {
      nb: info.batchSize,
      h: info.inHeight,
      w: info.inWidth,
      cin: info.inChannels,
      cout: info.outChannels,
      ho: info.outHeight,
      wo: info.outWidth,
      top,
      left,
    };
    const dw = conv2DBackpropFilterWinograd(backend, x, dy, geometry);
    if (dw) return dw;
  }
  const direct = conv2DBackpropFilterDirect(backend, x, dy, info);
  if (direct) return direct;
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw, outHeight: ho, outWidth: wo } = info;
  const { top, left } = info.padInfo as Pad;

  // The input rows actually read by the forward conv: s·(ho-1) + kh of them, starting at -top.
  const needH = sh * (ho - 1) + kh;
  const needW = sw * (wo - 1) + kw;
  const [, h, w] = x.shape;
  // Pad (or crop, where the stride skipped the last rows) so that exactly the rows the forward conv read remain.
  const xp = top === 0 && left === 0 && needH === h && needW === w ? x : padOrCrop(backend, x, top, needH - h - top, left, needW - w - left);
  // [B,Hp,Wp,Cin] → [Cin,Hp,Wp,B]: Cin "images" whose channels are the batch.
  const xt = transpose(backend, xp, [3, 1, 2, 0]);
  // [B,Ho,Wo,Cout] → [Ho,Wo,B,Cout]: an Ho x Wo "filter" from B to Cout channels.
  const dyt = transpose(backend, dy, [1, 2, 0, 3]);
  // Valid correlation with the filter taps spaced by the stride: output [Cin, kh, kw, Cout].
  const dwT = run(
    backend,
    'Conv2D',
    { x: xt, filter: dyt },
    {
      strides: [1, 1],
      pad: 'valid',
      dataFormat: 'NHWC',
      dilations: [sh, sw],
      dimRoundingMode: undefined,
    },
  );
  const dw = transpose(backend, dwT, [1, 2, 0, 3]); // [kh,kw,Cin,Cout]
  free(backend, xt, dyt, dwT);
  if (xp !== x) free(backend, xp);
  return dw;
}

/**
 * Few taps per output channel (conv1: 5x5x1 = 25): the forward-conv trick would be a huge "filter" with only
 * kh·kw·Cin outputs per channel, which XNNPACK runs slowly. Instead build the patches transposed,
 * Pᵀ [kh·kw·Cin, B·Ho·Wo], straight from x, and take one matrix product Pᵀ × dy, dy viewed as [B·Ho·Wo, Cout]
 * (no transpose of dy): dW [kh·kw·Cin, Cout] is already in [kh,kw,Cin,Cout] order.
 */
export const IM2COL_MAX_TAPS = 64;

function conv2DBackpropFilterIm2col(backend: BackendWasm, x: TensorInfo, dy: TensorInfo, info: tf.backend_util.Conv2DInfo): TensorInfo {
  const { batchSize: nb, inHeight: h, inWidth: w, inChannels: c, outHeight: ho, outWidth: wo, outChannels: cout } = info;
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = info;
  const { top, left } = info.padInfo as Pad;
  const taps = kh * kw * c;
  const m = nb * ho * wo;
  const pt = backend.makeOutput([1, taps, m], 'float32');
  const src = heap(backend, x);
  const dst = heap(backend, pt);
  if (c === 1 && sh === 1 && sw === 1 && ho === h && wo === w) im2colShifted(src, dst, nb, h, w, kh, kw, top, left);
  else im2colTransposed(src, dst, info);
  const dy3 = run(backend, 'Reshape', { x: dy }, { shape: [1, m, cout] });
  const dw = run(backend, 'BatchMatMul', { a: pt, b: dy3 }, { transposeA: false, transposeB: false });
  free(backend, pt, dy3);
  dw.shape = [kh, kw, c, cout];
  return dw;
}

/**
 * One input channel, stride 1, Cout a multiple of 16 (conv1): zero-pad x into [B, Ho+kh−1, Wo+kw−1] so every tap
 * reads inside it, then simd.wat's convFilterGrad1x16 sums xpad·dy over all pixels for two taps and 16 output
 * channels per pass, writing dW [kh,kw,1,Cout] directly (no patch matrix, no repacking of dy).
 */
function conv2DBackpropFilterOneChannel(backend: BackendWasm, simd: SimdKernels, x: TensorInfo, dy: TensorInfo, info: tf.backend_util.Conv2DInfo): TensorInfo {
  const { batchSize: nb, inHeight: h, inWidth: w, outHeight: ho, outWidth: wo, outChannels: cout, filterHeight: kh, filterWidth: kw } = info;
  const { top, left } = info.padInfo as Pad;
  const hp = ho + kh - 1;
  const wp = wo + kw - 1;
  const xpad = backend.makeOutput([nb, hp, wp], 'float32');
  const dw = backend.makeOutput([kh, kw, 1, cout], 'float32');
  const src = heap(backend, x);
  const pad = heap(backend, xpad);
  // xpad[n, yy, xx] = x[n, yy − top, xx − left], 0 outside the image (VALID: a crop is never needed, hp ≤ h + top).
  pad.fill(0);
  const y0 = Math.max(0, top);
  const y1 = Math.min(hp, h + top);
  const x0 = Math.max(0, left);
  const x1 = Math.min(wp, w + left);
  if (x1 > x0) {
    for (let n = 0; n < nb; n++) {
      for (let yy = y0; yy < y1; yy++) {
        const s = (n * h + yy - top) * w + x0 - left;
        pad.set(src.subarray(s, s + x1 - x0), (n * hp + yy) * wp + x0);
      }
    }
  }
  const xBase = pad.byteOffset;
  const dyBase = heap(backend, dy).byteOffset;
  const dwBase = heap(backend, dw).byteOffset;
  const taps = kh * kw;
  const tapAt = (t: number) => 4 * (Math.floor(t / kw) * wp + (t % kw));
  for (let g = 0; g < cout; g += 16) {
    for (let t = 0; t < taps; t += 2) {
      const t1 = Math.min(t + 1, taps - 1); // an odd count ends with one tap computed twice
      simd.convFilterGrad1x16(
        xBase + tapAt(t),
        tapAt(t1) - tapAt(t),
        dyBase + 4 * g,
        dwBase + 4 * (t * cout + g),
        dwBase + 4 * (t1 * cout + g),
        nb,
        ho,
        wo,
        4 * cout,
        4 * (wp - wo),
        4 * wp * (hp - ho),
      );
    }
  }
  free(backend, xpad);
  return dw;
}

/** Pᵀ[(i,j,c), (n,oy,ox)] = x[n, oy·sh + i − top, ox·sw + j − left, c], 0 outside the image. */
function im2colTransposed(src: Float32Array, dst: Float32Array, info: tf.backend_util.Conv2DInfo): void {
  const { batchSize: nb, inHeight: h, inWidth: w, inChannels: c, outHeight: ho, outWidth: wo } = info;
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = info;
  const { top, left } = info.padInfo as Pad;
  let d = 0;
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      // Output columns ox whose input column ox·sw + j − left lies inside the image: [x0, x1).
      const x0 = Math.min(wo, Math.max(0, Math.ceil((left - j) / sw)));
      const x1 = Math.max(x0, Math.min(wo, Math.floor((w - 1 + left - j) / sw) + 1));
      for (let ch = 0; ch < c; ch++) {
        for (let n = 0; n < nb; n++) {
          for (let oy = 0; oy < ho; oy++) {
            const iy = oy * sh + i - top;
            if (iy < 0 || iy >= h) {
              dst.fill(0, d, d + wo);
              d += wo;
              continue;
            }
            for (let ox = 0; ox < x0; ox++) dst[d++] = 0;
            let s = ((n * h + iy) * w + x0 * sw + j - left) * c + ch;
            const step = sw * c;
            for (let ox = x0; ox < x1; ox++, s += step) dst[d++] = src[s];
            for (let ox = x1; ox < wo; ox++) dst[d++] = 0;
          }
        }
      }
    }
  }
}

/**
 * The same for one input channel, stride 1 and an output as large as the input (SAME padding): row (i,j) of Pᵀ
 * is the whole batch shifted by (i − top)·w + (j − left) elements, so copy it in one piece (a memmove) and
 * zero the positions whose source pixel lies outside its image (border rows and columns).
 */
function im2colShifted(src: Float32Array, dst: Float32Array, nb: number, h: number, w: number, kh: number, kw: number, top: number, left: number): void {
  const size = nb * h * w;
  for (let i = 0; i < kh; i++) {
    const dyOff = i - top;
    const y0 = Math.max(0, -dyOff); // valid output rows [y0, y1) of each image
    const y1 = Math.min(h, h - dyOff);
    for (let j = 0; j < kw; j++) {
      const dxOff = j - left;
      const x0 = Math.max(0, -dxOff);
      const x1 = Math.min(w, w - dxOff);
      const row = (i * kw + j) * size;
      const shift = dyOff * w + dxOff;
      // dst[row + q] = src[q + shift] wherever q + shift lies inside x; everything else is zeroed below.
      const q0 = Math.max(0, -shift);
      const q1 = Math.min(size, size - shift);
      if (q1 > q0) dst.set(src.subarray(q0 + shift, q1 + shift), row + q0);
      for (let n = 0; n < nb; n++) {
        const img = row + n * h * w;
        if (y1 <= y0 || x1 <= x0) {
          dst.fill(0, img, img + h * w);
          continue;
        }
        dst.fill(0, img, img + y0 * w);
        dst.fill(0, img + y1 * w, img + h * w);
        for (let y = y0; y < y1; y++) {
          const r = img + y * w;
          for (let x = 0; x < x0; x++) dst[r + x] = 0;
          for (let x = x1; x < w; x++) dst[r + x] = 0;
        }
      }
    }
  }
}
