/**
 * Winograd F(2x2, 5x5) for stride-1 5x5 convolutions on NHWC data, generated as wasm SIMD per layer shape.
 *
 * Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks" (2016): a 2x2 output tile is
 *   Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A
 * for a 6x6 input tile d and a 5x5 filter g; summed over input channels, the ⊙ becomes 36 independent matrix
 * products M_ξ[tile, o] = Σ_c V_ξ[tile, c] · U_ξ[c, o]: 36 multiply-adds per 4 outputs instead of 100, so
 * 2.78x fewer than the direct kernel (conv-direct.ts), plus the transforms. The interpolation points are
 * 0, ±1, ±2 (the matrices below, as wincnn gives them); Bᵀ and Aᵀ are small integers, only G has fractions,
 * and G g Gᵀ is computed in float64 before rounding, so the error stays near the direct kernel's (the test
 * reports both against the cpu backend).
 *
 * One generated function does a whole batch, T tiles at a time so that the block's transformed input V
 * [36][T][cin] and products M [36][T][cout] stay in cache:
 *   1. input transform: for each tile and 4 input channels, Bᵀ d B via a 6x6 scratch (rows, then columns);
 *   2. 36 products, register-blocked like conv-direct.ts: R tiles x Vv vectors of 4 output channels, one
 *      broadcast V value and Vv vectors of U per (tile, channel) step;
 *   3. output transform Aᵀ M A for each tile and 4 output channels, stored into a [nb, 2·tilesH, 2·tilesW,
 *      coutp] output (the caller crops odd sizes and padded channels).
 * The filter transform (weights change every step) runs per call in JavaScript: 576 filters in 0.075 ms for
 * conv2 (bench/kernels.ts measures it with the rest).
 *
 * The filter gradient uses the same module with mode 'filter': F(5x5, 2x2), the transpose of the same algorithm
 * (conv2DBackpropFilterWinograd below, generated in winograd-module.ts like the forward): the same input transform, dy tiles transformed by A, and the products summed
 * over tiles instead of channels.
 *
 * Which shapes take it: winogradCovers (a fixed rule of the shape, so a seed always gives the same weights).
 */
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { type TensorInfo, backendMemory, free, heap } from './common.ts';
import { relaxedSimd } from './emit.ts';
import { winogradModule } from './winograd-module.ts';
import { A, K, M, type WinogradPlan, type WinogradShape, paddedDims, planWinograd, planWinogradFilter, scratchBytes } from './winograd-plan.ts';

export { winogradModule } from './winograd-module.ts';
export { planWinograd, planWinogradFilter, winogradMatrices, type WinogradPlan, type WinogradShape } from './winograd-plan.ts';

/** u[0..5] = G·g for g = src[s0 + k·stride], k < 5 (G's rows written out: 14 flops instead of 30). */
function gColumn(src: Float64Array | Float32Array, s0: number, stride: number, dst: Float64Array, d0: number, dstride: number): void {
  const g0 = src[s0];
  const g1 = src[s0 + stride];
  const g2 = src[s0 + 2 * stride];
  const g3 = src[s0 + 3 * stride];
  const g4 = src[s0 + 4 * stride];
  const a = -(g0 + g2 + g4) / 6;
  const b = -(g1 + g3) / 6;
  const c = g0 / 24 + g2 / 6 + (2 * g4) / 3;
  const d = g1 / 12 + g3 / 3;
  dst[d0] = g0 / 4;
  dst[d0 + dstride] = a + b;
  dst[d0 + 2 * dstride] = a - b;
  dst[d0 + 3 * dstride] = c + d;
  dst[d0 + 4 * dstride] = c - d;
  dst[d0 + 5 * dstride] = g4;
}

/** Filter [5,5,cin,cout] → U [36][groups: cin x 4V], G g Gᵀ in float64, zero beyond cout. */
export function transformFilter(w: Float32Array, dst: Float32Array, cin: number, cout: number, coutp: number, v: number): void {
  if (coutp !== cout) dst.fill(0);
  const gg = new Float64Array(A * K); // G g: [6][5]
  const u = new Float64Array(A * A);
  const width = 4 * v;
  const tap = cin * cout; // stride between taps in w
  for (let o = 0; o < cout; o++) {
    const o0 = Math.floor(o / width) * width;
    const wv = Math.min(width, coutp - o0);
    for (let c = 0; c < cin; c++) {
      const s = c * cout + o;
      for (let j = 0; j < K; j++) gColumn(w, s + j * tap, K * tap, gg, j, K);
      for (let a = 0; a < A; a++) gColumn(gg, a * K, 1, u, a * A, 1);
      const base = cin * o0 + c * wv + (o - o0);
      for (let x = 0; x < A * A; x++) dst[x * cin * coutp + base] = u[x];
    }
  }
}

/**
 * The last transform per filter shape with a copy of the weights it came from: inference calls with the same
 * weights again and again, and an exact comparison (a few µs) is cheaper than the transform (75 µs for conv2).
 * Exact, never a hash: in training the weights change every step (in place, by the optimizer's kernel).
 */
const lastFilter = new Map<string, { w: Float32Array; u: Float32Array }>();

function transformedFilter(w: Float32Array, dst: Float32Array, cin: number, cout: number, coutp: number, v: number): void {
  const key = `${cin},${cout},${v}`;
  const last = lastFilter.get(key);
  if (last !== undefined && last.w.length === w.length && sameValues(last.w, w)) {
    dst.set(last.u);
    return;
  }
  transformFilter(w, dst, cin, cout, coutp, v);
  lastFilter.set(key, { w: w.slice(), u: dst.slice() });
}

function sameValues(a: Float32Array, b: Float32Array): boolean {
  // as bits: NaN equals NaN, and -0 differs from 0
  const x = new Int32Array(a.buffer, a.byteOffset, a.length);
  const y = new Int32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

type WinoFn = (x: number, u: number, y: number, nb: number, s: number) => void;
interface Kernel {
  wino: WinoFn;
  plan: WinogradPlan;
}

const kernels = new Map<string, Kernel | null>();
let memoryOf: WebAssembly.Memory | undefined;
let calls = 0;
let allowed = !(typeof process !== 'undefined' && process.env?.CONVLAB_KERNELS === 'direct');

export function winogradCalls(): number {
  return calls;
}

/** Turns the Winograd path off (the direct kernel for every shape) or back on: tests and the bench. */
export function allowWinograd(on: boolean): void {
  allowed = on;
}

export function winogradAllowed(): boolean {
  return allowed;
}

let planner: (s: WinogradShape) => WinogradPlan = planWinograd;
export function setWinogradPlanner(plan?: (s: WinogradShape) => WinogradPlan): void {
  planner = plan ?? planWinograd;
  kernels.clear();
}

function kernelFor(backend: BackendWasm, shape: WinogradShape, relaxed: boolean, mode: 'forward' | 'filter' = 'forward'): Kernel | undefined {
  const memory = backendMemory(backend);
  if (memory === undefined) return undefined;
  if (memoryOf !== memory) {
    kernels.clear();
    memoryOf = memory;
  }
  const key = `${Object.values(shape).join(',')},${relaxed},${mode}`;
  let k = kernels.get(key);
  if (k === undefined) {
    k = null;
    const plan = mode === 'filter' ? planWinogradFilter(shape) : planner(shape);
    let bytes = winogradModule(shape, plan, relaxed, mode);
    if (relaxed && !WebAssembly.validate(bytes)) bytes = winogradModule(shape, plan, false, mode);
    if (WebAssembly.validate(bytes)) {
      const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } });
      k = { wino: instance.exports.wino as WinoFn, plan };
    }
    kernels.set(key, k);
  }
  return k ?? undefined;
}

/** A convolution's sizes: batch, input, channels, output, and the padding before the first row and column. */
export interface Geometry {
  nb: number;
  h: number;
  w: number;
  cin: number;
  cout: number;
  ho: number;
  wo: number;
  top: number;
  left: number;
}

/** What both products need first: the shape in tiles, its module (undefined: none could be made) and the padded sizes. */
function setUp(backend: BackendWasm, { cin, cout, ho, wo }: Geometry, mode: 'forward' | 'filter' = 'forward') {
  const coutp = Math.ceil(cout / 4) * 4;
  const shape: WinogradShape = { cin, coutp, tilesH: Math.ceil(ho / M), tilesW: Math.ceil(wo / M) };
  const kernel = kernelFor(backend, shape, relaxedSimd(), mode);
  if (kernel === undefined) return undefined;
  return { shape, kernel, coutp, ...paddedDims(shape), hoT: M * shape.tilesH, woT: M * shape.tilesW };
}

/**
 * y = conv(x, W) for a 5x5 stride-1 filter, padding top/left given (bottom/right: whatever the output size needs),
 * or undefined when no module could be made (the caller runs the direct kernel).
 */
export function conv2DWinograd(backend: BackendWasm, x: TensorInfo, filter: TensorInfo, geometry: Geometry): TensorInfo | undefined {
  const set = setUp(backend, geometry);
  if (set === undefined) return undefined;
  const { nb, h, w, cin, cout, ho, wo, top, left } = geometry;
  const { shape, kernel, coutp, hp, wp, hoT, woT } = set;
  const xp = backend.makeOutput([nb * hp * wp * cin + 4], 'float32'); // +4: the last channel vector may read past cin
  const u = backend.makeOutput([A * A * cin * coutp], 'float32');
  const scratch = backend.makeOutput([scratchBytes(shape, kernel.plan) / 4], 'float32');
  const exact = hoT === ho && woT === wo && coutp === cout;
  const out = backend.makeOutput([nb, ho, wo, cout], 'float32');
  const wide = exact ? out : backend.makeOutput([nb, hoT, woT, coutp], 'float32');
  padInto(heap(backend, x), heap(backend, xp), nb, h, w, cin, hp, wp, top, left);
  transformedFilter(heap(backend, filter), heap(backend, u), cin, cout, coutp, kernel.plan.v);
  calls++;
  kernel.wino(heap(backend, xp).byteOffset, heap(backend, u).byteOffset, heap(backend, wide).byteOffset, nb, heap(backend, scratch).byteOffset);
  if (wide !== out) {
    const src = heap(backend, wide);
    const dst = heap(backend, out);
    for (let n = 0, d = 0; n < nb; n++)
      for (let yy = 0; yy < ho; yy++)
        for (let xx = 0; xx < wo; xx++, d += cout) {
          const s = ((n * hoT + yy) * woT + xx) * coutp;
          dst.set(src.subarray(s, s + cout), d);
        }
    free(backend, wide);
  }
  free(backend, xp, u, scratch);
  return out;
}

/**
 * dW = conv2DBackpropFilter(x, dy) for a 5x5 stride-1 filter by Winograd F(5x5, 2x2), the transpose of the
 * forward's algorithm (same points): dW = Gᵀ [ Σ_tiles (A dy Aᵀ) ⊙ (Bᵀ d B) ] G, dy cut in 2x2 tiles and d the 6x6
 * input patch under each. The sum over tiles runs in the generated module (float32, like the direct kernel's sum
 * over pixels), the final Gᵀ · G in float64 here. Undefined when no module could be made.
 */
export function conv2DBackpropFilterWinograd(backend: BackendWasm, x: TensorInfo, dy: TensorInfo, geometry: Geometry): TensorInfo | undefined {
  const set = setUp(backend, geometry, 'filter');
  if (set === undefined) return undefined;
  const { nb, h, w, cin, cout, ho, wo, top, left } = geometry;
  const { shape, kernel, coutp, hp, wp, hoT, woT } = set;
  // Every block of T tiles is whole: zero images after the batch for the last one to read.
  const images = nb + Math.ceil(kernel.plan.t / (shape.tilesH * shape.tilesW));
  const xp = backend.makeOutput([images * hp * wp * cin + 4], 'float32');
  const dyp = backend.makeOutput([images * hoT * woT * coutp], 'float32');
  const acc = backend.makeOutput([A * A * cin * coutp], 'float32');
  const scratch = backend.makeOutput([scratchBytes(shape, kernel.plan) / 4], 'float32');
  const out = backend.makeOutput([K, K, cin, cout], 'float32');
  padInto(heap(backend, x), heap(backend, xp), nb, h, w, cin, hp, wp, top, left);
  const dys = heap(backend, dy);
  const dyd = heap(backend, dyp);
  dyd.fill(0);
  for (let n = 0, s = 0; n < nb; n++)
    for (let yy = 0; yy < ho; yy++) for (let xx = 0; xx < wo; xx++, s += cout) dyd.set(dys.subarray(s, s + cout), ((n * hoT + yy) * woT + xx) * coutp);
  heap(backend, acc).fill(0);
  calls++;
  kernel.wino(heap(backend, xp).byteOffset, heap(backend, acc).byteOffset, heap(backend, dyp).byteOffset, nb, heap(backend, scratch).byteOffset);
  untransformFilterGradient(heap(backend, acc), heap(backend, out), cin, cout, coutp);
  free(backend, xp, dyp, acc, scratch);
  return out;
}

/** out[i] = Σ_p G[p][i]·src[s0 + p·stride], i < 5: Gᵀ's rows written out. */
function gtColumn(src: Float64Array | Float32Array, s0: number, stride: number, dst: Float64Array, d0: number, dstride: number): void {
  const m0 = src[s0];
  const m1 = src[s0 + stride];
  const m2 = src[s0 + 2 * stride];
  const m3 = src[s0 + 3 * stride];
  const m4 = src[s0 + 4 * stride];
  const m5 = src[s0 + 5 * stride];
  const s12 = (m1 + m2) / 6;
  const d12 = (m1 - m2) / 6;
  const s34 = m3 + m4;
  const d34 = m3 - m4;
  dst[d0] = m0 / 4 - s12 + s34 / 24;
  dst[d0 + dstride] = d34 / 12 - d12;
  dst[d0 + 2 * dstride] = s34 / 6 - s12;
  dst[d0 + 3 * dstride] = d34 / 3 - d12;
  dst[d0 + 4 * dstride] = (2 * s34) / 3 - s12 + m5;
}

/** acc [36][cin][coutp] → dW [5,5,cin,cout] = Gᵀ acc G per (c, o), in float64. */
function untransformFilterGradient(acc: Float32Array, dst: Float32Array, cin: number, cout: number, coutp: number): void {
  const half = new Float64Array(K * A); // Gᵀ m: [5][6]
  const dw = new Float64Array(K * K);
  const plane = cin * coutp;
  for (let c = 0; c < cin; c++)
    for (let o = 0; o < cout; o++) {
      const s = c * coutp + o;
      for (let q = 0; q < A; q++) gtColumn(acc, s + q * plane, A * plane, half, q, A);
      for (let i = 0; i < K; i++) gtColumn(half, i * A, 1, dw, i * K, 1);
      for (let t = 0; t < K * K; t++) dst[(t * cin + c) * cout + o] = dw[t];
    }
}

/**
 * x [nb,h,w,c] → zero-padded [nb,hp,wp,c] with x at (top, left ≥ 0); rows/columns of x beyond hp/wp are dropped.
 * Only the border is zeroed (and everything after the last image: extra images, slack).
 */
function padInto(src: Float32Array, dst: Float32Array, nb: number, h: number, w: number, c: number, hp: number, wp: number, top: number, left: number): void {
  const rows = Math.max(0, Math.min(h, hp - top));
  const cols = Math.max(0, Math.min(w, wp - left));
  const rowLen = cols * c;
  const line = wp * c;
  for (let n = 0; n < nb; n++) {
    const img = n * hp * line;
    dst.fill(0, img, img + top * line);
    for (let y = 0; y < rows; y++) {
      const d = img + (y + top) * line;
      dst.fill(0, d, d + left * c);
      const s = (n * h + y) * w * c;
      dst.set(src.subarray(s, s + rowLen), d + left * c);
      dst.fill(0, d + left * c + rowLen, d + line);
    }
    dst.fill(0, img + (top + rows) * line, img + hp * line);
  }
  dst.fill(0, nb * hp * line);
}

/**
 * Stride-1 5x5 convolutions the Winograd path takes; the rest stays on the direct kernel. A fixed rule of the
 * shape (never a timing at run time, so the same seed always takes the same path and gives the same weights):
 * at least 8 input and 8 output channels. Measured (least CPU time, batch 32, ms Winograd / direct): 16→36 on
 * 14x14 2.1 / 3.8, 36→16 2.3 / 3.9, 8→16 on 28x28 2.2 / 3.4, 4→8 0.93 / 0.89, 2→8 0.80 / 0.47, 1→16 1.26 / 0.50,
 * 7→4 0.33 / 0.25: with few channels the transforms cost more than the products save. Up to 128 input channels
 * (the products' code is unrolled over them).
 */
export function winogradCovers(info: {
  filterHeight: number;
  filterWidth: number;
  strideHeight: number;
  strideWidth: number;
  dilationHeight: number;
  dilationWidth: number;
  inChannels: number;
  outChannels: number;
  outHeight: number;
  outWidth: number;
}): boolean {
  return (
    allowed &&
    info.filterHeight === K &&
    info.filterWidth === K &&
    info.strideHeight === 1 &&
    info.strideWidth === 1 &&
    info.dilationHeight === 1 &&
    info.dilationWidth === 1 &&
    info.inChannels >= 8 &&
    info.outChannels >= 8 &&
    info.inChannels <= 128 &&
    info.outChannels <= 256
  );
}
