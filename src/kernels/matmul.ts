/**
 * BatchMatMul on wasm: one product (no batch, or a batch of 1) of float32 matrices with N a multiple of 4 on
 * a generated SIMD kernel (dense.ts), in each of the dense layers' three forms; anything else transposes
 * first (the smaller side), then runs XNNPACK's row-major kernel.
 */
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { type KernelFunc, type TensorInfo, free, transpose } from './common.ts';
import { denseCovers, gemm } from './dense.ts';

// ---------------------------------------------------------------------------------------------------------
// BatchMatMul with a transposed operand: XNNPACK is fast only on row-major operands.

interface BatchMatMulArgs {
  inputs: { a: TensorInfo; b: TensorInfo };
  attrs: { transposeA: boolean; transposeB: boolean };
  backend: BackendWasm;
}

export function batchMatMul(args: BatchMatMulArgs, original: KernelFunc | undefined): TensorInfo {
  if (original === undefined) throw new Error('convlab: wasm BatchMatMul kernel missing');
  const generated = denseProduct(args);
  if (generated !== undefined) return generated;
  const { inputs, attrs, backend } = args;
  const { transposeA, transposeB } = attrs;
  if (!transposeA && !transposeB) return original(args as never) as TensorInfo;
  if (!transposeA && transposeB && inputs.a.shape.length === 2 && inputs.b.shape.length === 2) {
    // a [M,K] × bᵀ, b [N,K]. Transposing b costs N·K element moves, and XNNPACK packs the right operand (N·K
    // more). (a × bᵀ)ᵀ = b × aᵀ moves M·K twice and M·N once instead: far less when M is small, as for the
    // dense layers' input gradient (dy [64,128] × W[1764,128]ᵀ).
    const [m, k] = inputs.a.shape;
    const n = inputs.b.shape[0];
    if (2 * m * k + m * n < 2 * n * k) {
      const at = transpose(backend, inputs.a, [1, 0]);
      const outT = original({ inputs: { a: inputs.b, b: at }, attrs: { transposeA: false, transposeB: false }, backend } as never) as TensorInfo;
      const out = transpose(backend, outT, [1, 0]);
      free(backend, at, outT);
      return out;
    }
  }
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

/**
 * The product on a generated kernel, or undefined. A·B and Aᵀ·B directly; A·Bᵀ (A [M,K], B [N,K], the input
 * gradient dy·Wᵀ) as (B·Aᵀ)ᵀ: transposing A and the result moves M·K + M·N values instead of B's N·K.
 */
function denseProduct({ inputs, attrs, backend }: BatchMatMulArgs): TensorInfo | undefined {
  const { a, b } = inputs;
  const { transposeA, transposeB } = attrs;
  const rank = a.shape.length;
  if (rank !== b.shape.length || (rank !== 2 && rank !== 3) || a.dtype !== 'float32' || b.dtype !== 'float32') return undefined;
  if (rank === 3 && (a.shape[0] !== 1 || b.shape[0] !== 1)) return undefined;
  const lead = rank === 3 ? [1] : [];
  const [ar, ac] = a.shape.slice(-2);
  const [br, bc] = b.shape.slice(-2);
  if (!transposeB) {
    const [m, k] = transposeA ? [ac, ar] : [ar, ac];
    return gemm(backend, a, b, { m, k, n: bc, transposedA: transposeA }, [...lead, m, bc]);
  }
  if (transposeA) return undefined;
  // C [M,N] = A·Bᵀ = (B·Aᵀ)ᵀ
  const [m, k, n] = [ar, ac, br];
  const shape = { m: n, k, n: m, transposedA: false };
  if (!denseCovers(shape)) return undefined;
  const swap = rank === 3 ? [0, 2, 1] : [1, 0];
  const at = transpose(backend, a, swap); // [K,M]
  const ct = gemm(backend, b, at, shape, [...lead, n, m]); // [N,M]
  free(backend, at);
  if (ct === undefined) return undefined;
  const out = transpose(backend, ct, swap);
  free(backend, ct);
  return out;
}
