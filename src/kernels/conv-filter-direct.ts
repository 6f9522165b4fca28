/**
 * The filter gradient of a stride-1 convolution as generated wasm SIMD, for each layer's shape:
 *
 * dW[i, j, c, o] = Σ_{n,y,x} xpad[n, y+i, x+j, c] · dy[n, y, x, o]
 *
 * Register blocks of U input channels x V vectors of 4 output channels (U·V f32x4 accumulators): for every output
 * pixel a block loads V vectors of dy and broadcasts U input values. The sums run image by image (the
 * accumulators are loaded from and stored to dW around each image, so one image's input and dy stay in cache);
 * within an image, row by row with each row's pixels unrolled. The order of the sum is fixed by the shape, so
 * results are the same run to run.
 */
import type * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { type Pad, type TensorInfo, backendMemory, free, heap, padOrCrop } from './common.ts';
import { Code, moduleBytes } from './emit.ts';
import { directConvEnabled } from './conv-direct.ts';

export interface FilterShape {
  hp: number;
  wp: number;
  cin: number;
  kh: number;
  kw: number;
  ho: number;
  wo: number;
  coutp: number;
}

/** A split of n into parts of `size` and one remainder. */
function parts(n: number, size: number): { size: number; count: number }[] {
  const out = [{ size, count: Math.floor(n / size) }];
  if (n % size > 0) out.push({ size: n % size, count: 1 });
  return out.filter((p) => p.count > 0);
}

/** Per pixel: two mul and two add pipes, about two loads per cycle, add latency 3. */
const stepCost = (u: number, v: number) => Math.max((u * v) / 2, (u + v) / 2, 3);

/** The block (U input channels, V output vectors) with the least estimated time for cin x q vectors. */
export function planFilterBlock(cin: number, q: number): { u: number; v: number } {
  let best = { u: 1, v: 1, cost: Infinity };
  for (let v = 1; v <= Math.min(4, q); v++) {
    for (let u = 1; u <= Math.min(6, cin); u++) {
      if (u * v + v + 1 > 14) continue;
      let cost = 0;
      for (const pu of parts(cin, u)) for (const pv of parts(q, v)) cost += pu.count * pv.count * stepCost(pu.size, pv.size);
      if (cost < best.cost) best = { u, v, cost };
    }
  }
  return { u: best.u, v: best.v };
}

/** `grad(x, dy, dw, nb)`: byte addresses of xpad [nb,hp,wp,cin], dy [nb,ho,wo,coutp] and dW [kh,kw,cin,coutp] (added to). */
export function filterModule(shape: FilterShape, block: { u: number; v: number }): Uint8Array<ArrayBuffer> {
  const { hp, wp, cin, kh, kw, ho, wo, coutp } = shape;
  const code = new Code(4);
  const [X, DY, DW, NB] = [0, 1, 2, 3];
  const n = code.i32();
  const i = code.i32();
  const j = code.i32();
  const cb = code.i32();
  const g = code.i32();
  const y = code.i32();
  const xw = code.i32();
  const px = code.i32();
  const pd = code.i32();
  const pw = code.i32();
  const acc = Array.from({ length: block.u * block.v }, () => code.v128());
  const dv = Array.from({ length: block.v }, () => code.v128());
  const s = code.v128();
  const cs = 4 * cin; // bytes per input pixel
  const ds = 4 * coutp; // bytes per dy pixel

  const pixel = (u: number, v: number, x: number) => {
    for (let k = 0; k < v; k++)
      code
        .get(pd)
        .load(x * ds + 16 * k)
        .set(dv[k]);
    for (let c = 0; c < u; c++) {
      code
        .get(px)
        .loadSplat(x * cs + 4 * c)
        .set(s);
      for (let k = 0; k < v; k++) {
        const a = acc[c * v + k];
        code.get(a).get(s).get(dv[k]).mul().addF().set(a);
      }
    }
  };
  // One block: px at xpad[n, i, j, c0], pd at dy[n, 0, 0, o0], pw at dW[i, j, c0, o0].
  const blockCode = (u: number, v: number) => {
    for (let c = 0; c < u; c++)
      for (let k = 0; k < v; k++)
        code
          .get(pw)
          .load(c * ds + 16 * k)
          .set(acc[c * v + k]);
    code.loop(y, ho, () => {
      for (let x = 0; x < wo; x++) pixel(u, v, x);
      code.inc(px, wp * cs).inc(pd, wo * ds);
    });
    for (let c = 0; c < u; c++)
      for (let k = 0; k < v; k++)
        code
          .get(pw)
          .get(acc[c * v + k])
          .store(c * ds + 16 * k);
  };

  code.loop(n, { local: NB }, () => {
    code.loop(i, kh, () => {
      code.loop(j, kw, () => {
        // xw = X + ((n·hp + i)·wp + j)·cin·4: the input pixel tap (i, j) reads for output pixel (0, 0)
        code.get(n).const(hp).mulI().get(i).add().const(wp).mulI().get(j).add().const(cs).mulI().get(X).add().set(xw);
        let c0 = 0;
        for (const pu of parts(cin, block.u)) {
          code.loop(cb, pu.count, () => {
            let o0 = 0;
            for (const pv of parts(coutp / 4, block.v)) {
              code.loop(g, pv.count, () => {
                // channel c = c0 + cb·U, output vector o = o0 + g·V
                code
                  .get(cb)
                  .const(4 * pu.size)
                  .mulI()
                  .get(xw)
                  .add()
                  .const(4 * c0)
                  .add()
                  .set(px);
                code
                  .get(n)
                  .const(ho * wo * ds)
                  .mulI()
                  .get(DY)
                  .add()
                  .get(g)
                  .const(16 * pv.size)
                  .mulI()
                  .add()
                  .const(16 * o0)
                  .add()
                  .set(pd);
                code.get(i).const(kw).mulI().get(j).add().const(cin).mulI().get(cb).const(pu.size).mulI().add().const(c0).add().const(ds).mulI();
                code
                  .get(DW)
                  .add()
                  .get(g)
                  .const(16 * pv.size)
                  .mulI()
                  .add()
                  .const(16 * o0)
                  .add()
                  .set(pw);
                blockCode(pu.size, pv.size);
              });
              o0 += pv.size * pv.count;
            }
          });
          c0 += pu.size * pu.count;
        }
      });
    });
  });
  return moduleBytes([{ name: 'grad', code }]);
}

type GradFn = (x: number, dy: number, dw: number, nb: number) => void;
const kernels = new Map<string, GradFn | null>();
let memoryOf: WebAssembly.Memory | undefined;
let calls = 0;

/** How many filter gradients the generated kernels have computed (tests check which path a configuration took). */
export function directFilterCalls(): number {
  return calls;
}

/** Largest row a kernel unrolls, and the most input channels. */
const MAX_WIDTH = 64;

export function directFilterCovers(info: tf.backend_util.Conv2DInfo): boolean {
  const { top, bottom, left, right } = info.padInfo as Pad;
  return (
    directConvEnabled() &&
    info.strideHeight === 1 &&
    info.strideWidth === 1 &&
    info.dilationHeight === 1 &&
    info.dilationWidth === 1 &&
    Math.min(top, bottom, left, right) >= 0 &&
    info.outWidth <= MAX_WIDTH &&
    info.batchSize * info.outHeight * info.outWidth * info.outChannels * info.inChannels > 0
  );
}

function kernelFor(backend: BackendWasm, shape: FilterShape): GradFn | undefined {
  const memory = backendMemory(backend);
  if (memory === undefined) return undefined;
  if (memoryOf !== memory) {
    kernels.clear();
    memoryOf = memory;
  }
  const key = Object.values(shape).join(',');
  let k = kernels.get(key);
  if (k === undefined) {
    k = null;
    const bytes = filterModule(shape, planFilterBlock(shape.cin, shape.coutp / 4));
    if (WebAssembly.validate(bytes)) {
      try {
        k = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } }).exports.grad as GradFn;
      } catch {
        k = null;
      }
    }
    kernels.set(key, k);
  }
  return k ?? undefined;
}

/** dW [kh,kw,cin,cout] on a generated kernel, or undefined (the caller takes another path). */
export function conv2DBackpropFilterDirect(backend: BackendWasm, x: TensorInfo, dy: TensorInfo, info: tf.backend_util.Conv2DInfo): TensorInfo | undefined {
  if (x.dtype !== 'float32' || dy.dtype !== 'float32' || !directFilterCovers(info)) return undefined;
  const { batchSize: nb, inHeight: h, inWidth: w, inChannels: cin, outHeight: ho, outWidth: wo, outChannels: cout, filterHeight: kh, filterWidth: kw } = info;
  const { top, bottom, left, right } = info.padInfo as Pad;
  const coutp = Math.ceil(cout / 4) * 4;
  const shape: FilterShape = { hp: ho + kh - 1, wp: wo + kw - 1, cin, kh, kw, ho, wo, coutp };
  if (shape.hp !== h + top + bottom || shape.wp !== w + left + right) return undefined;
  const kernel = kernelFor(backend, shape);
  if (kernel === undefined) return undefined;
  const xp = top + bottom + left + right === 0 ? x : padOrCrop(backend, x, top, bottom, left, right);
  const dyp = coutp === cout ? dy : backend.makeOutput([nb, ho, wo, coutp], 'float32');
  const dw = backend.makeOutput([kh, kw, cin, cout], 'float32');
  const wide = coutp === cout ? dw : backend.makeOutput([kh, kw, cin, coutp], 'float32');
  if (dyp !== dy) widen(heap(backend, dy), heap(backend, dyp), nb * ho * wo, cout, coutp);
  heap(backend, wide).fill(0);
  calls++;
  kernel(heap(backend, xp).byteOffset, heap(backend, dyp).byteOffset, heap(backend, wide).byteOffset, nb);
  if (wide !== dw) {
    const src = heap(backend, wide);
    const dst = heap(backend, dw);
    for (let t = 0, s = 0, d = 0; t < kh * kw * cin; t++, s += coutp, d += cout) dst.set(src.subarray(s, s + cout), d);
    free(backend, wide);
  }
  if (dyp !== dy) free(backend, dyp);
  if (xp !== x) free(backend, xp);
  return dw;
}

/** [rows, c] → [rows, cp], zeros in the new columns. */
function widen(src: Float32Array, dst: Float32Array, rows: number, c: number, cp: number): void {
  dst.fill(0);
  for (let r = 0, s = 0, d = 0; r < rows; r++, s += c, d += cp) dst.set(src.subarray(s, s + c), d);
}
