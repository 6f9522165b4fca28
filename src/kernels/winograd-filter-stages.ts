/** The filter gradient's stages of the Winograd module (winograd-module.ts): the dy transform and the products. */
import { A, AT, M } from './winograd-plan.ts';
import type { Stage } from './winograd-stages.ts';

/**
 * Filter gradient (mode 'filter', Y = dy tile-aligned [nb, 2·tilesH, 2·tilesW, coutp], U = the accumulators
 * [36][cin][coutp]): each dy tile transformed by A (6x2) on both sides into the scratch where M would be, then
 * U_ξ[c, o] += Σ_t V_ξ[t, c] · DY_ξ[t, o] over the block's T tiles, R channels x V vectors at a time.
 */
export function filterStages(e: Stage): void {
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
    S,
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
    acc,
    wv,
    bc,
    inp,
    tmp,
    combo,
    tileAddress,
  } = e;
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
}
