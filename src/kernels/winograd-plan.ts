/** Winograd F(2x2, 5x5): the matrices, the shapes a module is generated for, and the register plan (winograd.ts). */

/** Output tile, filter size, input tile. */
export const M = 2;
export const K = 5;
export const A = M + K - 1;

export const AT = [
  [1, 1, 1, 1, 1, 0],
  [0, 1, -1, 2, -2, 1],
];
export const G = [
  [1 / 4, 0, 0, 0, 0],
  [-1 / 6, -1 / 6, -1 / 6, -1 / 6, -1 / 6],
  [-1 / 6, 1 / 6, -1 / 6, 1 / 6, -1 / 6],
  [1 / 24, 1 / 12, 1 / 6, 1 / 3, 2 / 3],
  [1 / 24, -1 / 12, 1 / 6, -1 / 3, 2 / 3],
  [0, 0, 0, 0, 1],
];
export const BT = [
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

/** The filter gradient's plan: the products sum over T tiles, so longer blocks (fewer loads and stores of U). */
export const planWinogradFilter = (s: WinogradShape): WinogradPlan => ({ ...planWinograd(s), t: 32 });
