/**
 * Gradient kernels for the wasm backend.
 *
 * TensorFlow.js 4.22's wasm backend has no `Conv2DBackpropFilter` at all, and its `Conv2DBackpropInput`,
 * `MaxPoolGrad` and transposed `BatchMatMul` are 10x slower than its forward kernels (see
 * ../shared/TFJS-NOTES.md). We register replacements so that plain `tf.conv2d`, `tf.maxPool` and
 * `tf.matMul` train on wasm through ordinary autodiff:
 *
 * - Conv2DBackpropFilter: dW is itself a convolution. Treat the padded input as Cin images of B channels
 *   and dy as an Ho x Wo filter from B to Cout channels; XNNPACK's forward conv does the rest.
 * - Conv2DBackpropInput (stride 1): dx is the correlation of dy with the 180°-rotated filter, again a
 *   forward conv (with explicit padding so asymmetric SAME padding is exact).
 * - MaxPoolGrad: a direct loop over the wasm heap that routes each dy to the first maximum of its window,
 *   exactly as TensorFlow's CPU kernel does (ties matter: on a blank background every value in a window
 *   is equal to the bias).
 * - BatchMatMul with a transposed operand: transpose first, then the fast non-transposed kernel.
 *
 * Any configuration a fast path does not cover falls back to the stock kernel (or, for the filter
 * gradient, to a dilated-conv formulation that covers every stride), never to a wrong answer.
 * test/kernels/conformance.test.ts checks each against the cpu backend on random shapes.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

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
    maxPoolGrad2x2(xv, gv, dv, nb * ho, wo, c);
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
 * The lesson's pool (2x2, stride 2, even sizes): windows tile the input exactly, so every input element
 * is written once (no zero fill, no accumulation). `rows` = batch x output rows.
 */
function maxPoolGrad2x2(xv: Float32Array, gv: Float32Array, dv: Float32Array, rows: number, wo: number, c: number): void {
  const rowStride = 2 * wo * c; // one input row
  for (let r = 0; r < rows; r++) {
    for (let ox = 0; ox < wo; ox++) {
      const g = (r * wo + ox) * c;
      const p00 = 2 * r * rowStride + 2 * ox * c;
      for (let ch = 0; ch < c; ch++) {
        const i0 = p00 + ch;
        const i1 = i0 + c;
        const i2 = i0 + rowStride;
        const i3 = i2 + c;
        const a = xv[i0];
        const b = xv[i1];
        const d = xv[i2];
        const e = xv[i3];
        // First maximum in row-major order, as TensorFlow's kernel (ties go to the earliest).
        let at = i0;
        let best = a;
        if (b > best) (best = b), (at = i1);
        if (d > best) (best = d), (at = i2);
        if (e > best) (best = e), (at = i3);
        dv[i0] = 0;
        dv[i1] = 0;
        dv[i2] = 0;
        dv[i3] = 0;
        dv[at] = gv[g + ch];
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
