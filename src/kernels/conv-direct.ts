/**
 * Direct stride-1 convolution on zero-padded NHWC data, generated as wasm SIMD for each layer's shape.
 *
 * y[n, oy, ox, o] = Σ_{i,j,c} xpad[n, oy+i, ox+j, c] · W[i, j, c, o]
 *
 * No im2col matrix: the kernel walks the padded input in place. Outputs are computed in register blocks of
 * R pixels along a row x V vectors of 4 output channels (R·V f32x4 accumulators, V weight vectors and one
 * broadcast input value must fit the 16 xmm registers V8 allocates on x64; 3x3 and 5x2 blocks are typical).
 * For every tap (i, j) and input channel c one block loads V weight vectors and R input values and does R·V
 * multiply-adds; the (j, c) steps are unrolled with constant address offsets. The shape is fixed when the
 * module is generated (so are the loop counts and offsets), the batch size is a parameter.
 *
 * The same kernel serves Conv2D (the forward pass) and Conv2DBackpropInput at stride 1 (dy correlated with the
 * rotated filter: conv-input.ts calls Conv2D with explicit padding). Modules are generated on first use and
 * cached by shape. Anything else (strides, dilations, no SIMD) goes to XNNPACK.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { type Pad, type TensorInfo, backendMemory, free, heap, padOrCrop } from './common.ts';
import { Code, moduleBytes, relaxedSimd } from './emit.ts';
import { conv2DWinograd, winogradCovers } from './winograd.ts';

/** The shape a forward kernel is generated for (the batch size is a run-time parameter). */
export interface ConvShape {
  hp: number; // padded input rows (= ho + kh − 1)
  wp: number; // padded input columns (= wo + kw − 1)
  cin: number;
  kh: number;
  kw: number;
  ho: number;
  wo: number;
  coutp: number; // output channels rounded up to a multiple of 4 (the output's pixel stride)
}

/** One group of output channels: V vectors from channel o0, computed R pixels at a time. */
export interface Group {
  o0: number;
  v: number;
  r: number;
}

/** Register budget: R·V accumulators + V weights + 1 input must stay within what V8 keeps in xmm registers. */
const REGISTERS = 14;
const maxR = (v: number) => Math.floor((REGISTERS - 1 - v) / v);

/**
 * Estimated cycles of one R x V block over `steps` (tap, channel) steps: per step two mul and two add pipes, about
 * two loads per cycle (a broadcast input counts twice: measured, conv1 runs faster as 2x4 than as 5x2), add latency 3; per block zeroing and storing the accumulators and the tap-row loop.
 */
const blockCost = (r: number, v: number, steps: number, kh: number) => steps * Math.max((r * v) / 2, (2 * r + v) / 2, 3) + 2 * r * v + 4 * kh + 6;

function rowCost(wo: number, r: number, v: number, steps: number, kh: number): number {
  const full = Math.floor(wo / r);
  return full * blockCost(r, v, steps, kh) + (wo % r > 0 ? blockCost(wo % r, v, steps, kh) : 0);
}

/** Splits `q` output vectors into groups of V and picks each group's R, by the cost model above. */
export function planGroups(q: number, wo: number, steps = 400, kh = 5): Group[] {
  let best: { cost: number; groups: Group[] } | undefined;
  for (let v = 1; v <= Math.min(4, q); v++) {
    const sizes = Array.from({ length: Math.floor(q / v) }, () => v);
    if (q % v > 0) sizes.push(q % v);
    let cost = 0;
    let o0 = 0;
    const groups: Group[] = [];
    for (const s of sizes) {
      let bestR = 1;
      for (let r = 2; r <= Math.min(maxR(s), wo); r++) if (rowCost(wo, r, s, steps, kh) < rowCost(wo, bestR, s, steps, kh)) bestR = r;
      cost += rowCost(wo, bestR, s, steps, kh);
      groups.push({ o0, v: s, r: bestR });
      o0 += 4 * s;
    }
    if (best === undefined || cost < best.cost) best = { cost, groups };
  }
  return best?.groups ?? [];
}

/** Offset of group g's packed weights, in floats: groups are stored one after the other, [kh][kw][cin][4V] each. */
function groupOffsets(shape: ConvShape, groups: Group[]): number[] {
  const taps = shape.kh * shape.kw * shape.cin;
  const offsets: number[] = [];
  let at = 0;
  for (const g of groups) {
    offsets.push(at);
    at += taps * 4 * g.v;
  }
  offsets.push(at);
  return offsets;
}

/** The wasm module: `conv(x, w, y, nb)` with byte addresses of xpad [nb,hp,wp,cin], packed W and y [nb,ho,wo,coutp]. */
export function forwardModule(shape: ConvShape, groups: Group[], relaxed = false): Uint8Array<ArrayBuffer> {
  const { hp, wp, cin, kh, kw, ho, wo, coutp } = shape;
  const code = new Code(4);
  const [X, W, Y, NB] = [0, 1, 2, 3];
  const n = code.i32();
  const oy = code.i32();
  const xb = code.i32();
  const i = code.i32();
  const j = code.i32();
  const px = code.i32();
  const pw = code.i32();
  const py = code.i32();
  const rowX = code.i32();
  const rowY = code.i32();
  const gi = code.i32();
  const gw = code.i32();
  const maxV = Math.max(...groups.map((g) => g.v));
  const maxAcc = Math.max(...groups.map((g) => g.r * g.v));
  const acc = Array.from({ length: maxAcc }, () => code.v128());
  const wv = Array.from({ length: maxV }, () => code.v128());
  const s = code.v128();
  const taps = kh * kw * cin;
  // (j, c) fully unrolled only while the block's code stays small (the instruction cache is 32 KB).
  const unrollJ = kw * cin <= 32;

  // One (tap, channel) step: offX is the input's byte offset from px for pixel 0, offW the weights' from pw.
  const step = (r: number, v: number, offX: number, offW: number) => {
    for (let k = 0; k < v; k++)
      code
        .get(pw)
        .load(offW + 16 * k)
        .set(wv[k]);
    for (let p = 0; p < r; p++) {
      code
        .get(px)
        .loadSplat(offX + 4 * p * cin)
        .set(s);
      for (let k = 0; k < v; k++) {
        const a = acc[p * v + k];
        if (relaxed) code.get(s).get(wv[k]).get(a).relaxedMadd().set(a);
        else code.get(a).get(s).get(wv[k]).mul().addF().set(a);
      }
    }
  };
  // One block of r pixels x v vectors at px (input) / py (output), the group's weights at gw.
  const block = (r: number, v: number) => {
    for (let k = 0; k < r * v; k++) code.zero().set(acc[k]);
    code.get(gw).set(pw);
    code.loop(i, kh, () => {
      if (unrollJ) {
        for (let jj = 0; jj < kw; jj++) for (let c = 0; c < cin; c++) step(r, v, 4 * (jj * cin + c), 16 * v * (jj * cin + c));
        code.inc(px, 4 * wp * cin).inc(pw, 16 * v * kw * cin);
      } else {
        code.loop(j, kw, () => {
          for (let c = 0; c < cin; c++) step(r, v, 4 * c, 16 * v * c);
          code.inc(px, 4 * cin).inc(pw, 16 * v * cin);
        });
        code.inc(px, 4 * (wp - kw) * cin);
      }
    });
    for (let p = 0; p < r; p++)
      for (let k = 0; k < v; k++)
        code
          .get(py)
          .get(acc[p * v + k])
          .store(4 * (p * coutp + 4 * k));
  };

  // Runs of groups with the same V and R share one copy of the block code.
  const runs: { first: number; count: number; v: number; r: number; wOff: number }[] = [];
  let wOff = 0;
  for (const g of groups) {
    const last = runs.at(-1);
    if (last && last.v === g.v && last.r === g.r) last.count++;
    else runs.push({ first: g.o0, count: 1, v: g.v, r: g.r, wOff });
    wOff += 4 * taps * 4 * g.v;
  }

  code.loop(n, { local: NB }, () => {
    for (const run of runs) {
      code.loop(gi, run.count, () => {
        // gw = W + run.wOff + gi·(taps·16V);  the group's first channel, in bytes: 4·first + gi·16V
        code
          .get(gi)
          .const(taps * 16 * run.v)
          .mulI()
          .get(W)
          .add()
          .const(run.wOff)
          .add()
          .set(gw);
        code.loop(oy, ho, () => {
          // rowX = X + (n·hp + oy)·wp·cin·4;  rowY = Y + (n·ho + oy)·wo·coutp·4 + 4·first + gi·16V
          code
            .get(n)
            .const(hp)
            .mulI()
            .get(oy)
            .add()
            .const(4 * wp * cin)
            .mulI()
            .get(X)
            .add()
            .set(rowX);
          code
            .get(n)
            .const(ho)
            .mulI()
            .get(oy)
            .add()
            .const(4 * wo * coutp)
            .mulI()
            .get(Y)
            .add()
            .const(4 * run.first)
            .add();
          code
            .get(gi)
            .const(16 * run.v)
            .mulI()
            .add()
            .set(rowY);
          const full = Math.floor(wo / run.r);
          const rest = wo % run.r;
          if (full > 0) {
            code.loop(xb, full, () => {
              code
                .get(xb)
                .const(4 * run.r * cin)
                .mulI()
                .get(rowX)
                .add()
                .set(px);
              code
                .get(xb)
                .const(4 * run.r * coutp)
                .mulI()
                .get(rowY)
                .add()
                .set(py);
              block(run.r, run.v);
            });
          }
          if (rest > 0) {
            code
              .get(rowX)
              .const(4 * full * run.r * cin)
              .add()
              .set(px);
            code
              .get(rowY)
              .const(4 * full * run.r * coutp)
              .add()
              .set(py);
            block(rest, run.v);
          }
        });
      });
    }
  });
  return moduleBytes([{ name: 'conv', code }]);
}

type ConvFn = (x: number, w: number, y: number, nb: number) => void;

interface Kernel {
  conv: ConvFn;
  groups: Group[];
  packedLength: number;
}

const kernels = new Map<string, Kernel | null>();
/** CONVLAB_KERNELS=xnnpack in the environment (workers inherit it) turns the generated kernels off: for A/B runs. */
let enabled = !(typeof process !== 'undefined' && process.env?.CONVLAB_KERNELS === 'xnnpack');
let memoryOf: WebAssembly.Memory | undefined;
let calls = 0;

/** How many convolutions the generated kernels have run (tests check which path a configuration took). */
export function directConvCalls(): number {
  return calls;
}

export function directConvEnabled(): boolean {
  return enabled;
}

/** Turns the generated convolution kernels off (XNNPACK for everything) or back on: for tests and the bench. */
export function allowDirectConv(allowed: boolean): void {
  enabled = allowed;
}

let planner: (q: number, wo: number, steps: number, kh: number) => Group[] = planGroups;

/** Replaces the block planner (experiments and tests: other block shapes for the same convolution); none restores it. */
export function setPlanner(plan?: (q: number, wo: number, steps: number, kh: number) => Group[]): void {
  planner = plan ?? planGroups;
  kernels.clear();
}

/** Largest taps x input channels a kernel is generated for (code size grows with it). */
const MAX_TAPS = 64 * 64;

function kernelFor(backend: BackendWasm, shape: ConvShape): Kernel | undefined {
  const memory = backendMemory(backend);
  if (memory === undefined) return undefined;
  if (memoryOf !== memory) {
    kernels.clear(); // a new backend instance (tests re-create it): modules are bound to the old memory
    memoryOf = memory;
  }
  const key = `${Object.values(shape).join(',')},${relaxedSimd()}`;
  let k = kernels.get(key);
  if (k === undefined) {
    k = null;
    const groups = planner(shape.coutp / 4, shape.wo, shape.kh * shape.kw * shape.cin, shape.kh);
    let bytes = forwardModule(shape, groups, relaxedSimd());
    if (!WebAssembly.validate(bytes)) bytes = forwardModule(shape, groups, false);
    if (WebAssembly.validate(bytes)) {
      try {
        const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } });
        k = { conv: instance.exports.conv as ConvFn, groups, packedLength: groupOffsets(shape, groups).at(-1) ?? 0 };
      } catch {
        k = null;
      }
    }
    kernels.set(key, k);
  }
  return k ?? undefined;
}

interface Conv2DArgs {
  inputs: { x: TensorInfo; filter: TensorInfo };
  attrs: { strides: number | [number, number]; pad: unknown; dataFormat: unknown; dilations: number | [number, number]; dimRoundingMode: unknown };
  backend: BackendWasm;
}

/** Whether a Conv2D of this configuration runs on a generated kernel (else XNNPACK). */
export function directConvCovers(info: tf.backend_util.Conv2DInfo, dataFormat: unknown = 'NHWC'): boolean {
  const { top, bottom, left, right } = info.padInfo as Pad;
  return (
    enabled &&
    (dataFormat === undefined || dataFormat === 'NHWC' || dataFormat === 'channelsLast') &&
    info.strideHeight === 1 &&
    info.strideWidth === 1 &&
    info.dilationHeight === 1 &&
    info.dilationWidth === 1 &&
    Math.min(top, bottom, left, right) >= 0 &&
    info.filterHeight * info.filterWidth * info.inChannels <= MAX_TAPS &&
    info.batchSize * info.outHeight * info.outWidth * info.outChannels > 0
  );
}

/** Conv2D on a generated kernel, or undefined (the caller falls back to XNNPACK). */
export function conv2DDirect({ inputs, attrs, backend }: Conv2DArgs): TensorInfo | undefined {
  const { x, filter } = inputs;
  if (x.dtype !== 'float32' || filter.dtype !== 'float32' || x.shape.length !== 4) return undefined;
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filter.shape as [number, number, number, number],
    attrs.strides,
    attrs.dilations ?? 1,
    attrs.pad as 'same',
    attrs.dimRoundingMode as 'round' | undefined,
    false,
    'channelsLast',
  );
  if (!directConvCovers(info, attrs.dataFormat)) return undefined;
  const { batchSize: nb, inChannels: cin, outChannels: cout, outHeight: ho, outWidth: wo, filterHeight: kh, filterWidth: kw } = info;
  const { top, bottom, left, right } = info.padInfo as Pad;
  const coutp = Math.ceil(cout / 4) * 4;
  const shape: ConvShape = { hp: ho + kh - 1, wp: wo + kw - 1, cin, kh, kw, ho, wo, coutp };
  if (shape.hp !== info.inHeight + top + bottom || shape.wp !== info.inWidth + left + right) return undefined;
  const y = winogradCovers(info) ? conv2DWinograd(backend, x, filter, { nb, h: info.inHeight, w: info.inWidth, cin, cout, ho, wo, top, left }) : undefined;
  if (y !== undefined) return y;
  const kernel = kernelFor(backend, shape);
  if (kernel === undefined) return undefined;

  const xp = top + bottom + left + right === 0 ? x : padOrCrop(backend, x, top, bottom, left, right);
  const packed = backend.makeOutput([kernel.packedLength], 'float32');
  const out = backend.makeOutput([nb, ho, wo, cout], 'float32');
  const wide = coutp === cout ? out : backend.makeOutput([nb, ho, wo, coutp], 'float32');
  // Views after the last allocation (growing the heap detaches older ones).
  packWeights(heap(backend, filter), heap(backend, packed), kh * kw * cin, cout, kernel.groups);
  calls++;
  kernel.conv(heap(backend, xp).byteOffset, heap(backend, packed).byteOffset, heap(backend, wide).byteOffset, nb);
  if (wide !== out) {
    const src = heap(backend, wide);
    const dst = heap(backend, out);
    for (let p = 0, s = 0, d = 0; p < nb * ho * wo; p++, s += coutp, d += cout) dst.set(src.subarray(s, s + cout), d);
    free(backend, wide);
  }
  free(backend, packed);
  if (xp !== x) free(backend, xp);
  return out;
}

/** W [taps, cout] → per group [taps][4V], zero beyond cout. */
function packWeights(w: Float32Array, dst: Float32Array, taps: number, cout: number, groups: Group[]): void {
  let d = 0;
  for (const g of groups) {
    const width = 4 * g.v;
    const have = Math.min(width, cout - g.o0);
    for (let t = 0; t < taps; t++, d += width) {
      const s = t * cout + g.o0;
      dst.set(w.subarray(s, s + have), d);
      if (have < width) dst.fill(0, d + have, d + width);
    }
  }
}
