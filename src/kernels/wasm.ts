/**
 * Gradient kernels for the wasm backend.
 *
 * TensorFlow.js 4.22's wasm backend has no `Conv2DBackpropFilter` at all, and its `Conv2DBackpropInput`,
 * `MaxPoolGrad` and transposed `BatchMatMul` are 10x slower than its forward kernels (see
 * ../shared/TFJS-NOTES.md). We register replacements so that plain `tf.conv2d`, `tf.maxPool` and
 * `tf.matMul` train on wasm through ordinary autodiff:
 *
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
 * - BatchMatMul with a transposed operand: transpose first (the smaller side), then the fast non-transposed kernel.
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
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { simdModuleBase64 } from './simd-module.ts';

type TensorInfo = tf.TensorInfo;
type KernelFunc = tf.KernelConfig['kernelFunc'];
type Pad = { top: number; bottom: number; left: number; right: number };

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

// ---------------------------------------------------------------------------------------------------------
// Calling other wasm kernels from inside a kernel: intermediate results are TensorInfos we must free.

function run(backend: BackendWasm, name: string, inputs: Record<string, TensorInfo>, attrs: object): TensorInfo {
  const kernel = tf.getKernel(name, 'wasm');
  if (kernel === undefined) throw new Error(`wasm kernel ${name} is not registered`);
  return kernel.kernelFunc({ inputs, attrs: attrs as tf.NamedAttrMap, backend }) as TensorInfo;
}

function free(backend: BackendWasm, ...infos: TensorInfo[]): void {
  for (const info of infos) backend.disposeData(info.dataId);
}

function transpose(backend: BackendWasm, x: TensorInfo, perm: number[]): TensorInfo {
  return run(backend, 'Transpose', { x }, { perm });
}

/** Views on the wasm heap. Take them after the last allocation: growing the heap detaches old views. */
function heap(backend: BackendWasm, t: TensorInfo): Float32Array {
  return backend.typedArrayFromHeap(t as never) as Float32Array;
}

function conv2DInfo(
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

function isNhwc(dataFormat: unknown): boolean {
  return dataFormat === undefined || dataFormat === 'NHWC' || dataFormat === 'channelsLast';
}

// ---------------------------------------------------------------------------------------------------------
// Conv2DBackpropFilter: dW[i,j,c,o] = Σ_{b,y,x} xpad[b, y·s+i, x·s+j, c] · dy[b,y,x,o]

interface BackpropFilterArgs {
  inputs: { x: TensorInfo; dy: TensorInfo };
  attrs: { strides: number | [number, number]; pad: unknown; dataFormat: unknown; dimRoundingMode: unknown; filterShape: [number, number, number, number] };
  backend: BackendWasm;
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
  const dwT = run(backend, 'Conv2D', { x: xt, filter: dyt }, {
    strides: [1, 1],
    pad: 'valid',
    dataFormat: 'NHWC',
    dilations: [sh, sw],
    dimRoundingMode: undefined,
  });
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
        xBase + tapAt(t), tapAt(t1) - tapAt(t), dyBase + 4 * g, dwBase + 4 * (t * cout + g), dwBase + 4 * (t1 * cout + g),
        nb, ho, wo, 4 * cout, 4 * (wp - wo), 4 * wp * (hp - ho),
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

/** Zero-pads (positive amounts) or crops (negative amounts) the spatial dims of an NHWC tensor. */
function padOrCrop(backend: BackendWasm, x: TensorInfo, top: number, bottom: number, left: number, right: number): TensorInfo {
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

// ---------------------------------------------------------------------------------------------------------
// Conv2DBackpropInput (stride 1): dx = correlate(pad(dy), rot180(W) with in/out swapped)

interface BackpropInputArgs {
  inputs: { dy: TensorInfo; filter: TensorInfo };
  attrs: { strides: number | [number, number]; pad: unknown; dataFormat: unknown; dimRoundingMode: unknown; inputShape: [number, number, number, number] };
  backend: BackendWasm;
}

export function conv2DBackpropInput(args: BackpropInputArgs, fallback: KernelFunc | undefined): TensorInfo {
  const { inputs, attrs, backend } = args;
  const { dy, filter } = inputs;
  const info = conv2DInfo(attrs.inputShape, filter.shape, attrs);
  if (info.strideHeight !== 1 || info.strideWidth !== 1 || !isNhwc(attrs.dataFormat)) {
    if (fallback === undefined) throw new Error('convlab: no Conv2DBackpropInput kernel for this configuration');
    return fallback(args as never) as TensorInfo;
  }
  const { filterHeight: kh, filterWidth: kw, inHeight: h, inWidth: w, outHeight: ho, outWidth: wo } = info;
  const { top, left } = info.padInfo as Pad;
  const flipped = rotateFilter(backend, filter); // [kh,kw,Cout,Cin]
  // dx[y] = Σ_k dy[y + top - k]·W[k]  ⇒  pad dy by kh-1-top above and h-ho+top below, then correlate.
  const dx = run(backend, 'Conv2D', { x: dy, filter: flipped }, {
    strides: [1, 1],
    pad: [
      [0, 0],
      [kh - 1 - top, h - ho + top],
      [kw - 1 - left, w - wo + left],
      [0, 0],
    ],
    dataFormat: 'NHWC',
    dilations: [1, 1],
    dimRoundingMode: undefined,
  });
  free(backend, flipped);
  return dx;
}

/** [kh,kw,Cin,Cout] → rotated by 180° in space, channels swapped: [kh,kw,Cout,Cin]. */
function rotateFilter(backend: BackendWasm, filter: TensorInfo): TensorInfo {
  const [kh, kw, cin, cout] = filter.shape;
  const out = backend.makeOutput([kh, kw, cout, cin], 'float32');
  const src = heap(backend, filter);
  const dst = heap(backend, out);
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      const s = ((kh - 1 - i) * kw + (kw - 1 - j)) * cin * cout;
      const d = (i * kw + j) * cout * cin;
      for (let c = 0; c < cin; c++) {
        for (let o = 0; o < cout; o++) dst[d + o * cin + c] = src[s + c * cout + o];
      }
    }
  }
  return out;
}

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

/** The kernels of simd.wat, instantiated on the backend's own memory; undefined where that is not possible. */
interface SimdKernels {
  maxPoolGrad2x2(x: number, dy: number, dx: number, rows: number, wo: number, c: number): void;
  convFilterGrad1x16(
    xp: number, dq: number, dy: number, dw0: number, dw1: number,
    nb: number, h: number, w: number, cb: number, rowSkip: number, imgSkip: number,
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

function simdKernels(backend: BackendWasm): SimdKernels | undefined {
  if (!simdAllowed) return undefined;
  if (simd === undefined) {
    simd = null;
    const memory = (backend.wasm as unknown as { asm?: { memory?: unknown } }).asm?.memory;
    if (memory instanceof WebAssembly.Memory) {
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

// ---------------------------------------------------------------------------------------------------------
// BatchMatMul with a transposed operand: XNNPACK is fast only on row-major operands.

interface BatchMatMulArgs {
  inputs: { a: TensorInfo; b: TensorInfo };
  attrs: { transposeA: boolean; transposeB: boolean };
  backend: BackendWasm;
}

export function batchMatMul(args: BatchMatMulArgs, original: KernelFunc | undefined): TensorInfo {
  if (original === undefined) throw new Error('convlab: wasm BatchMatMul kernel missing');
  const { inputs, attrs, backend } = args;
  const { transposeA, transposeB } = attrs;
  if (!transposeA && !transposeB) return original(args as never) as TensorInfo;
  if (!transposeA && transposeB && inputs.a.shape.length === 2 && inputs.b.shape.length === 2) {
    // a [M,K] × bᵀ, b [N,K]. Transposing b costs N·K element moves, and XNNPACK packs the right operand (N·K
    // more). (a × bᵀ)ᵀ = b × aᵀ moves M·K twice and M·N once instead: far less when M is small, as for the
    // dense layers' input gradient (dy [64,128] × W[1764,128]ᵀ).
    const [m, k] = inputs.a.shape;
    const n = inputs.b.shape[0];
    if (2 * m * k + m * n < 2 * n * k) {
      const at = transpose(backend, inputs.a, [1, 0]);
      const outT = original({ inputs: { a: inputs.b, b: at }, attrs: { transposeA: false, transposeB: false }, backend } as never) as TensorInfo;
      const out = transpose(backend, outT, [1, 0]);
      free(backend, at, outT);
      return out;
    }
  }
  const swapLast = (t: TensorInfo) => {
    const perm = t.shape.map((_, i) => i);
    const r = perm.length;
    [perm[r - 2], perm[r - 1]] = [perm[r - 1], perm[r - 2]];
    return transpose(backend, t, perm);
  };
  const a = transposeA ? swapLast(inputs.a) : inputs.a;
  const b = transposeB ? swapLast(inputs.b) : inputs.b;
  const out = original({ inputs: { a, b }, attrs: { transposeA: false, transposeB: false }, backend } as never) as TensorInfo;
  if (a !== inputs.a) free(backend, a);
  if (b !== inputs.b) free(backend, b);
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Sum over leading axes (a broadcast bias add's gradient: [B,H,W,C] → [C]). The stock kernel transposes the
// reduced axes innermost first; summing rows of the [M, C] view needs no transpose.

interface SumArgs {
  inputs: { x: TensorInfo };
  attrs: { axis: number | number[]; keepDims: boolean };
  backend: BackendWasm;
}

export function sum(args: SumArgs, fallback: KernelFunc | undefined): TensorInfo {
  if (fallback === undefined) throw new Error('convlab: wasm Sum kernel missing');
  const { inputs, attrs, backend } = args;
  const { x } = inputs;
  const rank = x.shape.length;
  const axes = tf.util.parseAxisParam(attrs.axis, x.shape);
  const sorted = [...new Set(axes)].sort((a, b) => a - b);
  const k = sorted.length;
  // Only float32, only the axes 0..k−1 with at least one axis kept, and something to add up.
  if (x.dtype !== 'float32' || k === 0 || k >= rank || sorted[k - 1] !== k - 1) return fallback(args as never) as TensorInfo;
  const m = x.shape.slice(0, k).reduce((a, b) => a * b, 1);
  const cols = x.shape.slice(k).reduce((a, b) => a * b, 1);
  if (m < 2 || cols === 0) return fallback(args as never) as TensorInfo;
  const outShape = attrs.keepDims ? [...x.shape.slice(0, k).map(() => 1), ...x.shape.slice(k)] : x.shape.slice(k);
  const out = backend.makeOutput(outShape, 'float32');
  const xv = heap(backend, x);
  const ov = heap(backend, out);
  const simd = cols % 4 === 0 ? simdKernels(backend) : undefined;
  if (simd) simd.sumRows(xv.byteOffset, ov.byteOffset, m, cols);
  else sumRows(xv, ov, m, cols);
  return out;
}

/**
 * The JavaScript loop (cols not a multiple of 4, or no SIMD): out[j] = Σ_r x[r·cols + j]. Eight rows per pass into float64 accumulators: a float32 accumulator array costs
 * a conversion per load and store and ran 3x slower (≈2.5 ns per element).
 */
function sumRows(xv: Float32Array, ov: Float32Array, m: number, cols: number): void {
  const acc = new Float64Array(cols);
  const c2 = 2 * cols;
  const c3 = 3 * cols;
  const c4 = 4 * cols;
  const c5 = 5 * cols;
  const c6 = 6 * cols;
  const c7 = 7 * cols;
  let r = 0;
  let p = 0;
  for (; r + 8 <= m; r += 8, p += c7) {
    for (let j = 0; j < cols; j++, p++) acc[j] += xv[p] + xv[p + cols] + xv[p + c2] + xv[p + c3] + xv[p + c4] + xv[p + c5] + xv[p + c6] + xv[p + c7];
  }
  for (; r < m; r++) {
    for (let j = 0; j < cols; j++, p++) acc[j] += xv[p];
  }
  ov.set(acc);
}

// ---------------------------------------------------------------------------------------------------------
// Identity: tfjs-core clones every tensor it saves for the backward pass (engine.saveTensorsForBackwardMode)
// and the stock wasm kernel copies the data each time. Tensors are immutable, so share the buffer instead
// (reference counted, as the wasm Reshape and the cpu backend's Identity do).

interface IdentityArgs {
  inputs: { x: TensorInfo };
  backend: BackendWasm;
}

export function identity(args: IdentityArgs, fallback: KernelFunc | undefined): TensorInfo {
  const { inputs, backend } = args;
  const { x } = inputs;
  if (x.dtype === 'string') {
    if (fallback === undefined) throw new Error('convlab: wasm Identity kernel missing');
    return fallback(args as never) as TensorInfo;
  }
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

// ---------------------------------------------------------------------------------------------------------
// Add with a bias: a [.., C] + b [C] (or b [.., C] + a [C]), float32, C a multiple of 4. The stock kernel's
// general broadcasting loop is several times slower than a SIMD pass; everything else goes to it.

interface AddArgs {
  inputs: { a: TensorInfo; b: TensorInfo };
  backend: BackendWasm;
}

export function add(args: AddArgs, fallback: KernelFunc | undefined): TensorInfo {
  if (fallback === undefined) throw new Error('convlab: wasm Add kernel missing');
  const { inputs, backend } = args;
  const { a, b } = inputs;
  const biasAdd = (big: TensorInfo, bias: TensorInfo) =>
    big.dtype === 'float32' && bias.dtype === 'float32' && bias.shape.length === 1 && big.shape.length >= 2 && big.shape[big.shape.length - 1] === bias.shape[0];
  const [big, bias] = biasAdd(a, b) ? [a, b] : biasAdd(b, a) ? [b, a] : [undefined, undefined];
  const c = bias?.shape[0] ?? 0;
  const size = big === undefined ? 0 : tf.util.sizeFromShape(big.shape);
  const simd = big !== undefined && c % 4 === 0 && size > 0 ? simdKernels(backend) : undefined;
  if (!simd || big === undefined || bias === undefined) return fallback(args as never) as TensorInfo;
  const out = backend.makeOutput(big.shape, 'float32');
  simd.addRows(heap(backend, big).byteOffset, heap(backend, bias).byteOffset, heap(backend, out).byteOffset, size / c, 4 * c);
  return out;
}
