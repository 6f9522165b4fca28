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
 * (conv2DBackpropFilterWinograd below): the same input transform, dy tiles transformed by A, and the products summed
 * over tiles instead of channels.
 *
 * Which shapes take it: winogradCovers (a fixed rule of the shape, so a seed always gives the same weights).
 */
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { type TensorInfo, backendMemory, free, heap } from './common.ts';
import { Code, moduleBytes } from './emit.ts';

/** Output tile, filter size, input tile. */
const M = 2;
const K = 5;
const A = M + K - 1;

const AT = [
  [1, 1, 1, 1, 1, 0],
  [0, 1, -1, 2, -2, 1],
];
const G = [
  [1 / 4, 0, 0, 0, 0],
  [-1 / 6, -1 / 6, -1 / 6, -1 / 6, -1 / 6],
  [-1 / 6, 1 / 6, -1 / 6, 1 / 6, -1 / 6],
  [1 / 24, 1 / 12, 1 / 6, 1 / 3, 2 / 3],
  [1 / 24, -1 / 12, 1 / 6, -1 / 3, 2 / 3],
  [0, 0, 0, 0, 1],
];
const BT = [
  [4, 0, -5, 0, 1, 0],
  [0, -4, -4, 1, 1, 0],
  [0, 4, -4, -1, 1, 0],
  [0, -2, -1, 2, 1, 0],
  [0, 2, -1, -2, 1, 0],
  [0, 4, 0, -5, 0, 1],
];

/** The matrices, for tests (1-D identity checks). */
export const winogradMatrices = { AT, G, BT, m: M, r: K };

/** What a module is generated for (the batch size is a run-time parameter). */
export interface WinogradShape {
  cin: number;
  coutp: number; // output channels rounded up to a multiple of 4
  tilesH: number; // ceil(ho / 2)
  tilesW: number;
}

/** Register block of the products: R tiles x V vectors; T tiles per block of the whole pipeline. */
export interface WinogradPlan {
  r: number;
  v: number;
  t: number;
}

/** Padded input dims the module reads: 2·tiles + 4. */
export const paddedDims = (s: WinogradShape) => ({ hp: M * s.tilesH + K - 1, wp: M * s.tilesW + K - 1 });

/** R·V accumulators + V weights + 1 broadcast ≤ 14 xmm registers (as in conv-direct.ts); fewest loads per multiply-add. */
export function planWinograd(s: WinogradShape): WinogradPlan {
  const q = s.coutp / 4;
  let best: { cost: number; plan: WinogradPlan } | undefined;
  for (let v = 1; v <= Math.min(4, q); v++) {
    for (let r = 1; r * v + v + 1 <= 14; r++) {
      const groups = Math.ceil(q / v);
      // per step: (R + V) loads, R·V multiply-adds (two pipes, two loads per cycle); per block zeroing + stores
      const step = Math.max((r * v) / 2, (r + v) / 2);
      const cost = (groups * (s.cin * step + 2 * r * v + 8)) / r;
      if (best === undefined || cost < best.cost - 1e-9) best = { cost, plan: { r, v, t: r * Math.max(1, Math.round(12 / r)) } };
    }
  }
  return best?.plan ?? { r: 1, v: 1, t: 12 };
}

/** Bytes of scratch a module needs: the 6x6 transform scratch, V and M of one block. */
export function scratchBytes(s: WinogradShape, p: WinogradPlan): number {
  const cinp = Math.ceil(s.cin / 4) * 4;
  return 16 * A * A + 4 * A * A * p.t * (cinp + s.coutp);
}

/** The module: `wino(x, u, y, nb, s)` with byte addresses of xpad, the transformed filter, y, and the scratch. */
export function winogradModule(s: WinogradShape, p: WinogradPlan, relaxed = false, mode: 'forward' | 'filter' = 'forward'): Uint8Array<ArrayBuffer> {
  const { cin, coutp, tilesH, tilesW } = s;
  const { hp, wp } = paddedDims(s);
  const cinp = Math.ceil(cin / 4) * 4;
  const hoT = M * tilesH;
  const woT = M * tilesW;
  const T = p.t;
  const perImage = tilesH * tilesW;
  const code = new Code(5);
  const [X, U, Y, NB, S] = [0, 1, 2, 3, 4];
  const total = code.i32();
  const b0 = code.i32();
  const count = code.i32();
  const t = code.i32();
  const g = code.i32();
  const addr = code.i32();
  const dst = code.i32();
  const cv = code.i32();
  const xi = code.i32();
  const gi = code.i32();
  const tb = code.i32();
  const pV = code.i32();
  const pU = code.i32();
  const pM = code.i32();
  const vs = code.i32();
  const ms = code.i32();
  const blocks = code.i32();
  const groups = Math.ceil(coutp / 4 / p.v);
  const lastV = coutp / 4 - (groups - 1) * p.v;
  const acc = Array.from({ length: p.r * p.v }, () => code.v128());
  const wv = Array.from({ length: p.v }, () => code.v128());
  const bc = code.v128();
  const inp = Array.from({ length: A }, () => code.v128());
  const out = Array.from({ length: A }, () => code.v128());
  const tmp = code.v128();

  /**
   * target = Σ coefs[j]·inputs[j] over the nonzero coefficients: ±1 terms as adds and subtracts first, then each
   * other term as one relaxed multiply-add (or a multiply and an add).
   */
  const combo = (coefs: number[], inputs: number[], target: number) => {
    const terms = coefs.map((c, j) => ({ c, x: inputs[j] })).filter((tm) => tm.c !== 0);
    terms.sort((a, b) => Number(Math.abs(a.c) !== 1) - Number(Math.abs(b.c) !== 1));
    terms.forEach(({ c, x }, k) => {
      if (k === 0) {
        code.get(x);
        if (c === -1) code.neg();
        else if (c !== 1) code.splatConst(c).mul();
      } else if (c === 1) code.get(x).addF();
      else if (c === -1) code.get(x).subF();
      else if (relaxed) code.set(target).get(x).splatConst(c).get(target).relaxedMadd();
      else code.get(x).splatConst(c).mul().addF(); // [sum, x·c] → sum + c·x
    });
    code.set(target);
  };

  /** addr = X + ((n·hp + 2·ty)·wp + 2·tx)·cin·4 for global tile g (n, ty, tx); also for Y with other dims. */
  const tileAddress = (base: number, rows: number, cols: number, pixelBytes: number, rowStep: number) => {
    code.get(g).const(perImage).divU().const(rows).mulI();
    code.get(g).const(perImage).remU().const(tilesW).divU().const(rowStep).mulI().add();
    code.const(cols).mulI();
    code.get(g).const(perImage).remU().const(tilesW).remU().const(rowStep).mulI().add();
    code.const(pixelBytes).mulI().get(base).add();
  };

  code
    .get(S)
    .const(16 * A * A)
    .add()
    .set(vs);
  code
    .get(vs)
    .const(4 * A * A * T * cinp)
    .add()
    .set(ms);
  code.get(NB).const(perImage).mulI().set(total);
  code
    .get(total)
    .const(T - 1)
    .add()
    .const(T)
    .divU()
    .set(blocks);

  /**
   * Filter gradient (mode 'filter', Y = dy tile-aligned [nb, 2·tilesH, 2·tilesW, coutp], U = the accumulators
   * [36][cin][coutp]): each dy tile transformed by A (6x2) on both sides into the scratch where M would be, then
   * U_ξ[c, o] += Σ_t V_ξ[t, c] · DY_ξ[t, o] over the block's T tiles, R channels x V vectors at a time.
   */
  const filterProducts = () => {
    code.loop(t, T, () => {
      code.get(b0).const(T).mulI().get(t).add().set(g);
      tileAddress(Y, hoT, woT, 4 * coutp, M);
      code.set(addr);
      code
        .get(t)
        .const(4 * coutp)
        .mulI()
        .get(ms)
        .add()
        .set(dst);
      code.loop(cv, coutp / 4, () => {
        for (let k = 0; k < M; k++) {
          for (let l = 0; l < M; l++)
            code
              .get(addr)
              .load(4 * (k * woT + l) * coutp)
              .set(inp[l]);
          for (let q = 0; q < A; q++) {
            combo([AT[0][q], AT[1][q]], inp, tmp);
            code
              .get(S)
              .get(tmp)
              .store(16 * (k * A + q));
          }
        }
        for (let q = 0; q < A; q++) {
          for (let k = 0; k < M; k++)
            code
              .get(S)
              .load(16 * (k * A + q))
              .set(inp[k]);
          for (let pp = 0; pp < A; pp++) {
            combo([AT[0][pp], AT[1][pp]], inp, tmp);
            code
              .get(dst)
              .get(tmp)
              .store(4 * (pp * A + q) * T * coutp);
          }
        }
        code.inc(addr, 16).inc(dst, 16);
      });
    });
    // Each block's sum over its T tiles starts from zero and is added to U at the end: float32 round-off grows with
    // T + blocks instead of with all the tiles (measured: 3.7e-5 of the largest value → see the test's report).
    const block = (r: number, v: number) => {
      for (let k = 0; k < r * v; k++) code.zero().set(acc[k]);
      for (let tt = 0; tt < T; tt++) {
        for (let k = 0; k < v; k++)
          code
            .get(pM)
            .load(4 * (tt * coutp + 4 * k))
            .set(wv[k]);
        for (let pp = 0; pp < r; pp++) {
          code
            .get(pV)
            .loadSplat(4 * (tt * cinp + pp))
            .set(bc);
          for (let k = 0; k < v; k++) {
            const a = acc[pp * v + k];
            if (relaxed) code.get(bc).get(wv[k]).get(a).relaxedMadd().set(a);
            else code.get(a).get(bc).get(wv[k]).mul().addF().set(a);
          }
        }
      }
      for (let pp = 0; pp < r; pp++)
        for (let k = 0; k < v; k++)
          code
            .get(pU)
            .get(pU)
            .load(4 * (pp * coutp + 4 * k))
            .get(acc[pp * v + k])
            .addF()
            .store(4 * (pp * coutp + 4 * k));
    };
    // channel blocks of R (and the rest), output groups of V vectors (and the rest)
    const cRuns = [{ c0: 0, count: Math.floor(cin / p.r), r: p.r }];
    if (cin % p.r > 0) cRuns.push({ c0: cRuns[0].count * p.r, count: 1, r: cin % p.r });
    const oRuns = [{ first: 0, count: groups - (lastV === p.v ? 0 : 1), v: p.v }];
    if (lastV !== p.v) oRuns.push({ first: 4 * p.v * oRuns[0].count, count: 1, v: lastV });
    code.loop(xi, A * A, () => {
      for (const cr of cRuns) {
        if (cr.count === 0) continue;
        code.loop(tb, cr.count, () => {
          for (const or of oRuns) {
            if (or.count === 0) continue;
            code.loop(gi, or.count, () => {
              // pU = U + 4·((xi·cin + c0 + tb·R)·coutp + first + gi·4V);  pV = vs + 4·(xi·T·cinp + c0 + tb·R);
              // pM = ms + 4·(xi·T·coutp + first + gi·4V)
              code.get(xi).const(cin).mulI().get(tb).const(cr.r).mulI().add().const(cr.c0).add();
              code
                .const(4 * coutp)
                .mulI()
                .get(gi)
                .const(16 * or.v)
                .mulI()
                .add()
                .const(4 * or.first)
                .add()
                .get(U)
                .add()
                .set(pU);
              code
                .get(xi)
                .const(4 * T * cinp)
                .mulI()
                .get(tb)
                .const(4 * cr.r)
                .mulI()
                .add()
                .const(4 * cr.c0)
                .add()
                .get(vs)
                .add()
                .set(pV);
              code
                .get(xi)
                .const(4 * T * coutp)
                .mulI()
                .get(gi)
                .const(16 * or.v)
                .mulI()
                .add()
                .const(4 * or.first)
                .add()
                .get(ms)
                .add()
                .set(pM);
              block(cr.r, or.v);
            });
          }
        });
      }
    });
  };

  code.loop(b0, { local: blocks }, () => {
    // count = min(T, total − b0·T)
    code.get(total).get(b0).const(T).mulI().subI().set(count);
    code.get(count).const(T).get(count).const(T).ltU().select().set(count);
    if (mode === 'filter') code.const(T).set(count); // whole blocks: the caller appends zero images

    // 1. input transform
    code.loop(t, { local: count }, () => {
      code.get(b0).const(T).mulI().get(t).add().set(g);
      tileAddress(X, hp, wp, 4 * cin, M);
      code.set(addr);
      code
        .get(t)
        .const(4 * cinp)
        .mulI()
        .get(vs)
        .add()
        .set(dst);
      code.loop(cv, cinp / 4, () => {
        for (let i = 0; i < A; i++) {
          for (let j = 0; j < A; j++)
            code
              .get(addr)
              .load(4 * (i * wp + j) * cin)
              .set(inp[j]);
          for (let q = 0; q < A; q++) {
            combo(BT[q], inp, tmp);
            code
              .get(S)
              .get(tmp)
              .store(16 * (i * A + q));
          }
        }
        for (let q = 0; q < A; q++) {
          for (let i = 0; i < A; i++)
            code
              .get(S)
              .load(16 * (i * A + q))
              .set(inp[i]);
          for (let pp = 0; pp < A; pp++) {
            combo(BT[pp], inp, tmp);
            code
              .get(dst)
              .get(tmp)
              .store(4 * (pp * A + q) * T * cinp);
          }
        }
        code.inc(addr, 16).inc(dst, 16);
      });
    });

    if (mode === 'filter') {
      filterProducts();
      return;
    }

    // 2. the 36 products
    const block = (r: number, v: number) => {
      for (let k = 0; k < r * v; k++) code.zero().set(acc[k]);
      for (let c = 0; c < cin; c++) {
        for (let k = 0; k < v; k++)
          code
            .get(pU)
            .load(4 * (c * 4 * v + 4 * k))
            .set(wv[k]);
        for (let pp = 0; pp < r; pp++) {
          code
            .get(pV)
            .loadSplat(4 * (pp * cinp + c))
            .set(bc);
          for (let k = 0; k < v; k++) {
            const a = acc[pp * v + k];
            if (relaxed) code.get(bc).get(wv[k]).get(a).relaxedMadd().set(a);
            else code.get(a).get(bc).get(wv[k]).mul().addF().set(a);
          }
        }
      }
      for (let pp = 0; pp < r; pp++)
        for (let k = 0; k < v; k++)
          code
            .get(pM)
            .get(acc[pp * v + k])
            .store(4 * (pp * coutp + 4 * k));
    };
    const runs = [{ first: 0, count: groups - (lastV === p.v ? 0 : 1), v: p.v }];
    if (lastV !== p.v) runs.push({ first: 4 * p.v * runs[0].count, count: 1, v: lastV });
    code.loop(xi, A * A, () => {
      for (const run of runs) {
        if (run.count === 0) continue;
        code.loop(gi, run.count, () => {
          code.loop(tb, Math.floor(T / p.r), () => {
            // pU = U + 4·(xi·cin·coutp + cin·(first + gi·4V));  pV = vs + 4·(xi·T + tb·R)·cinp;  pM likewise
            code
              .get(xi)
              .const(4 * cin * coutp)
              .mulI()
              .get(gi)
              .const(16 * cin * run.v)
              .mulI()
              .add()
              .const(4 * cin * run.first)
              .add()
              .get(U)
              .add()
              .set(pU);
            code.get(xi).const(T).mulI().get(tb).const(p.r).mulI().add().set(pV);
            code
              .get(pV)
              .const(4 * coutp)
              .mulI()
              .get(ms)
              .add()
              .get(gi)
              .const(16 * run.v)
              .mulI()
              .add()
              .const(4 * run.first)
              .add()
              .set(pM);
            code
              .get(pV)
              .const(4 * cinp)
              .mulI()
              .get(vs)
              .add()
              .set(pV);
            block(p.r, run.v);
          });
        });
      }
    });

    // 3. output transform
    code.loop(t, { local: count }, () => {
      code.get(b0).const(T).mulI().get(t).add().set(g);
      tileAddress(Y, hoT, woT, 4 * coutp, M);
      code.set(addr);
      code
        .get(t)
        .const(4 * coutp)
        .mulI()
        .get(ms)
        .add()
        .set(dst);
      code.loop(cv, coutp / 4, () => {
        // out[k·2 + l] accumulates Σ_i AT[k][i] · (Σ_j AT[l][j] · M[i][j])
        const started = [false, false, false, false];
        for (let i = 0; i < A; i++) {
          for (let j = 0; j < A; j++)
            code
              .get(dst)
              .load(4 * (i * A + j) * T * coutp)
              .set(inp[j]);
          combo(AT[0], inp, out[4]);
          combo(AT[1], inp, out[5]);
          for (let k = 0; k < M; k++) {
            const c = AT[k][i];
            if (c === 0) continue;
            for (let l = 0; l < M; l++) {
              const o = out[k * M + l];
              const sIn = out[4 + l];
              if (!started[k * M + l]) {
                code.get(sIn);
                if (c === -1) code.neg();
                else if (c !== 1) code.splatConst(c).mul();
                started[k * M + l] = true;
              } else {
                code.get(o).get(sIn);
                if (c === 1) code.addF();
                else if (c === -1) code.subF();
                else code.splatConst(c).mul().addF();
              }
              code.set(o);
            }
          }
        }
        for (let k = 0; k < M; k++)
          for (let l = 0; l < M; l++)
            code
              .get(addr)
              .get(out[k * M + l])
              .store(4 * (k * woT + l) * coutp);
        code.inc(addr, 16).inc(dst, 16);
      });
    });
  });
  return moduleBytes([{ name: 'wino', code }]);
}

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

/** The filter gradient's plan: the products sum over T tiles, so longer blocks (fewer loads and stores of U). */
export const planWinogradFilter = (s: WinogradShape): WinogradPlan => ({ ...planWinograd(s), t: 32 });

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

/**
 * y = conv(x, W) for a 5x5 stride-1 filter, padding top/left given (bottom/right: whatever the output size needs),
 * or undefined when no module could be made (the caller runs the direct kernel).
 */
export function conv2DWinograd(
  backend: BackendWasm,
  x: TensorInfo,
  filter: TensorInfo,
  geometry: { nb: number; h: number; w: number; cin: number; cout: number; ho: number; wo: number; top: number; left: number },
  relaxed: boolean,
): TensorInfo | undefined {
  const { nb, h, w, cin, cout, ho, wo, top, left } = geometry;
  const coutp = Math.ceil(cout / 4) * 4;
  const shape: WinogradShape = { cin, coutp, tilesH: Math.ceil(ho / M), tilesW: Math.ceil(wo / M) };
  const kernel = kernelFor(backend, shape, relaxed);
  if (kernel === undefined) return undefined;
  const { hp, wp } = paddedDims(shape);
  const hoT = M * shape.tilesH;
  const woT = M * shape.tilesW;
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
export function conv2DBackpropFilterWinograd(
  backend: BackendWasm,
  x: TensorInfo,
  dy: TensorInfo,
  geometry: { nb: number; h: number; w: number; cin: number; cout: number; ho: number; wo: number; top: number; left: number },
  relaxed: boolean,
): TensorInfo | undefined {
  const { nb, h, w, cin, cout, ho, wo, top, left } = geometry;
  const coutp = Math.ceil(cout / 4) * 4;
  const shape: WinogradShape = { cin, coutp, tilesH: Math.ceil(ho / M), tilesW: Math.ceil(wo / M) };
  const kernel = kernelFor(backend, shape, relaxed, 'filter');
  if (kernel === undefined) return undefined;
  const { hp, wp } = paddedDims(shape);
  const hoT = M * shape.tilesH;
  const woT = M * shape.tilesW;
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
