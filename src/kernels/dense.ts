/**
 * Matrix products of the dense layers, generated as wasm SIMD for each shape (XNNPACK runs the fc1 products
 * of a 32-image slice at 10–16 G multiply-adds/s; these run them at about twice that).
 *
 *   C[m, n] = Σ_k A'[m, k] · B[k, n]      A' = A [M,K] (row-major), or Aᵀ with A stored [K,M] ("tn")
 *
 * B and C are row-major with N a multiple of 4. The output is computed in register blocks of R rows x V
 * vectors of 4 columns (R·V f32x4 accumulators, V vectors of B and one broadcast element of A' within the
 * xmm registers V8 allocates, as in conv-direct.ts); for each k a block loads V vectors of B's row k and R
 * broadcast elements of A' and does R·V multiply-adds, k unrolled by 4 with constant address offsets. The sum
 * over k runs in order, k = 0, 1, …, in float32 (a multiply, then an add: no fused multiply-add), so the
 * result does not depend on the machine. The shape is fixed when the module is generated (loop counts and
 * address offsets are constants): modules are generated on first use and cached by shape, the 32 most
 * recently used kept (a training run uses a handful; serving sees a new M for each new batch size).
 *
 * The three products of a dense layer y = x·W (x [B,I], W [I,U], U a multiple of 4):
 *   forward  y  = x·W                 "nn", M = B, K = I, N = U
 *   dW          = xᵀ·dy               "tn", M = I, K = B, N = U
 *   dx          = dy·Wᵀ = (W·dyᵀ)ᵀ    "nn" on W [I,U] and dyᵀ [U,B] (B a multiple of 4), then a transpose
 * (matmul.ts routes BatchMatMul here and transposes).
 */
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { type TensorInfo, backendMemory, heap } from './common.ts';
import { Code, moduleBytes } from './emit.ts';

export interface GemmShape {
  m: number;
  k: number;
  n: number;
  /** A is stored [K, M] (the product is Aᵀ·B). */
  transposedA: boolean;
}

/** One group of output columns: V vectors from column n0, R rows at a time. */
export interface GemmGroup {
  n0: number;
  v: number;
  r: number;
}

/** Register budget, as in conv-direct.ts: R·V accumulators + V vectors of B + 1 broadcast ≤ 14. */
const REGISTERS = 14;
const UNROLL = 4;

/**
 * Cycles of one R x V block per k (two multiply and two add pipes, about two loads a cycle with a broadcast
 * counting twice, add latency 3: conv-direct.ts's model); zeroing and storing the accumulators come once per
 * block. On the fc1 shapes 2x4, 3x3, 4x2 and 5x2 blocks measured within 5% of each other (21–23 G MAC/s).
 */
const stepCost = (r: number, v: number) => Math.max((r * v) / 2, (2 * r + v) / 2, 3);

/** Splits N/4 column vectors into groups of V (the last group takes the rest) and picks R, by the cost above. */
export function planGemm(shape: GemmShape): GemmGroup[] {
  const q = shape.n / 4;
  let best: { cost: number; groups: GemmGroup[] } | undefined;
  for (let v = 1; v <= Math.min(4, q); v++) {
    const groups: GemmGroup[] = [];
    for (let n0 = 0; n0 < shape.n; n0 += 4 * v) {
      const vv = Math.min(v, (shape.n - n0) / 4);
      groups.push({ n0, v: vv, r: Math.min(Math.floor((REGISTERS - 1 - vv) / vv), shape.m) });
    }
    const cost = groups.reduce((sum, g) => {
      const full = Math.floor(shape.m / g.r);
      const rest = shape.m % g.r;
      const block = (rr: number) => shape.k * stepCost(rr, g.v) + 2 * rr * g.v + 8;
      return sum + full * block(g.r) + (rest > 0 ? block(rest) : 0);
    }, 0);
    if (best === undefined || cost < best.cost) best = { cost, groups };
  }
  return best!.groups;
}

/** The module: export `gemm(a, b, c)`, byte addresses of A, B and C in the backend's memory. */
export function gemmModule(shape: GemmShape, groups: GemmGroup[]): Uint8Array<ArrayBuffer> {
  const { m, k, n, transposedA } = shape;
  // Byte steps of A' along m and along k; of B and C along a row.
  const am = transposedA ? 4 : 4 * k;
  const ak = transposedA ? 4 * m : 4;
  const row = 4 * n;
  const c = new Code(3);
  const [A, B, C] = [0, 1, 2];
  const rb = c.i32();
  const kc = c.i32();
  const pa = c.i32();
  const pc = c.i32();
  const ka = c.i32();
  const kb = c.i32();
  const maxAcc = Math.max(...groups.map((g) => g.r * g.v));
  const maxV = Math.max(...groups.map((g) => g.v));
  const acc = Array.from({ length: maxAcc }, () => c.v128());
  const bv = Array.from({ length: maxV }, () => c.v128());
  const s = c.v128();

  /** k step `u` of the block: ka and kb point at the unrolled group's first k. */
  const step = (r: number, v: number, u: number) => {
    for (let j = 0; j < v; j++)
      c.get(kb)
        .load(u * row + 4 * 4 * j)
        .set(bv[j]);
    for (let i = 0; i < r; i++) {
      c.get(ka)
        .loadSplat(i * am + u * ak)
        .set(s);
      for (let j = 0; j < v; j++)
        c.get(acc[i * v + j])
          .get(s)
          .get(bv[j])
          .mul()
          .addF()
          .set(acc[i * v + j]);
    }
  };
  /** One block of r rows x v vectors: pa at A'[m0, 0], pc at C[m0, n0]; B's columns start `bColumn` bytes in. */
  const block = (r: number, v: number, bColumn: number) => {
    for (let i = 0; i < r * v; i++) c.zero().set(acc[i]);
    c.get(pa).set(ka);
    c.get(B).const(bColumn).add().set(kb);
    const full = Math.floor(k / UNROLL);
    if (full > 0) {
      c.loop(kc, full, () => {
        for (let u = 0; u < UNROLL; u++) step(r, v, u);
        c.inc(ka, UNROLL * ak).inc(kb, UNROLL * row);
      });
    }
    for (let u = 0; u < k % UNROLL; u++) step(r, v, u);
    for (let i = 0; i < r; i++)
      for (let j = 0; j < v; j++)
        c.get(pc)
          .get(acc[i * v + j])
          .store(i * row + 4 * 4 * j);
  };

  for (const g of groups) {
    c.get(A).set(pa);
    c.get(C)
      .const(4 * g.n0)
      .add()
      .set(pc);
    const full = Math.floor(m / g.r);
    if (full > 0) {
      c.loop(rb, full, () => {
        block(g.r, g.v, 4 * g.n0);
        c.inc(pa, g.r * am).inc(pc, g.r * row);
      });
    }
    if (m % g.r > 0) block(m % g.r, g.v, 4 * g.n0);
  }
  return moduleBytes([{ name: 'gemm', code: c }]);
}

type GemmFn = (a: number, b: number, c: number) => void;
const kernels = new Map<string, GemmFn | null>();
let memoryOf: WebAssembly.Memory | undefined;
let enabled = true;
let calls = 0;

/** Turns the generated dense kernels off (or back on): tests and benchmarks compare them with XNNPACK. */
export function allowDenseKernels(allowed: boolean): void {
  enabled = allowed;
}

/** Products run on a generated kernel so far (tests check the fast path really ran). */
export function denseKernelCalls(): number {
  return calls;
}

/** The smallest product worth a module of its own. */
const MIN_MACS = 1024;
/** Modules kept (least recently used dropped first): serving sees a new batch size, so a new M, now and then. */
const CACHED = 32;

/** Whether a product of this shape runs on a generated kernel. */
export function denseCovers(shape: GemmShape): boolean {
  return enabled && shape.n % 4 === 0 && shape.m > 0 && shape.k > 0 && shape.m * shape.k * shape.n >= MIN_MACS;
}

function kernelFor(backend: BackendWasm, shape: GemmShape): GemmFn | undefined {
  const memory = backendMemory(backend);
  if (memory === undefined) return undefined;
  if (memoryOf !== memory) {
    kernels.clear(); // a new backend instance: modules are bound to the old memory
    memoryOf = memory;
  }
  const key = `${shape.m},${shape.k},${shape.n},${shape.transposedA}`;
  let f = kernels.get(key);
  if (f !== undefined) {
    kernels.delete(key); // most recently used last
    kernels.set(key, f);
  } else {
    f = null;
    const bytes = gemmModule(shape, planGemm(shape));
    if (WebAssembly.validate(bytes)) {
      try {
        f = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } }).exports.gemm as GemmFn;
      } catch {
        f = null;
      }
    }
    kernels.set(key, f);
    if (kernels.size > CACHED) kernels.delete(kernels.keys().next().value!);
  }
  return f ?? undefined;
}

/**
 * C = A'·B on a generated kernel into a new [..outShape] output, or undefined (not covered, or no SIMD):
 * the caller falls back. `a` and `b` are float32 with M·K and K·N elements as `shape` says.
 */
export function gemm(backend: BackendWasm, a: TensorInfo, b: TensorInfo, shape: GemmShape, outShape: number[]): TensorInfo | undefined {
  if (a.dtype !== 'float32' || b.dtype !== 'float32' || !denseCovers(shape)) return undefined;
  const f = kernelFor(backend, shape);
  if (f === undefined) return undefined;
  const out = backend.makeOutput(outShape, 'float32');
  calls++;
  f(heap(backend, a).byteOffset, heap(backend, b).byteOffset, heap(backend, out).byteOffset);
  return out;
}
