/**
 * The generated Winograd module (see winograd.ts): per block of T tiles the input transform here, then the
 * stages of winograd-stages.ts (forward products and output transform) or winograd-filter-stages.ts.
 */
import { Code, moduleBytes } from './emit.ts';
import { A, BT, M, type WinogradPlan, type WinogradShape, paddedDims } from './winograd-plan.ts';
import { filterStages } from './winograd-filter-stages.ts';
import { type Stage, forwardStages } from './winograd-stages.ts';

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

  const stage: Stage = { code, relaxed, cin, cinp, coutp, hoT, woT, T, p, groups, lastV, U, Y, S, b0, t, g, addr, dst, cv, xi, gi, tb, pV, pU, pM, vs, ms, count, acc, wv, bc, inp, out, tmp, combo, tileAddress };

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

    if (mode === 'filter') filterStages(stage);
    else forwardStages(stage);
  });
  return moduleBytes([{ name: 'wino', code }]);
}
