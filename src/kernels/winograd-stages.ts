/**
 * The stages of the Winograd module after the input transform (winograd-module.ts generates the rest): the
 * forward products and output transform (the filter gradient's stages: winograd-filter-stages.ts).
 */
import type { Code } from './emit.ts';
import { A, AT, M, type WinogradPlan } from './winograd-plan.ts';

/** What the stages share with the module being generated: its code, shape, locals (by index) and helpers. */
export interface Stage {
  code: Code;
  relaxed: boolean;
  cin: number;
  cinp: number;
  coutp: number;
  hoT: number;
  woT: number;
  T: number;
  p: WinogradPlan;
  groups: number;
  lastV: number;
  // parameters and i32 locals
  U: number;
  Y: number;
  S: number;
  b0: number;
  t: number;
  g: number;
  addr: number;
  dst: number;
  cv: number;
  xi: number;
  gi: number;
  tb: number;
  pV: number;
  pU: number;
  pM: number;
  vs: number;
  ms: number;
  count: number;
  // v128 locals
  acc: number[];
  wv: number[];
  bc: number;
  inp: number[];
  out: number[];
  tmp: number;
  combo(coefs: number[], inputs: number[], target: number): void;
  tileAddress(base: number, rows: number, cols: number, pixelBytes: number, rowStep: number): void;
}

/** 2. the 36 products M_ξ = V_ξ U_ξ, 3. the output transform Aᵀ M A into y (mode 'forward'). */
export function forwardStages(e: Stage): void {
  const {
    code,
    relaxed,
    cin,
    cinp,
    coutp,
    hoT,
    woT,
    T,
    p,
    groups,
    lastV,
    U,
    Y,
    b0,
    t,
    g,
    addr,
    dst,
    cv,
    xi,
    gi,
    tb,
    pV,
    pU,
    pM,
    vs,
    ms,
    count,
    acc,
    wv,
    bc,
    inp,
    out,
    combo,
    tileAddress,
  } = e;
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
}
