/** BatchMatMul with a transposed operand on wasm: transpose first, then the fast row-major kernel. */
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { type KernelFunc, type TensorInfo, free, transpose } from './common.ts';

// ---------------------------------------------------------------------------------------------------------
// BatchMatMul with a transposed operand: XNNPACK is fast only on row-major operands.

interface BatchMatMulArgs {
  inputs: { a: TensorInfo; b: TensorInfo };
  attrs: { transposeA: boolean; transposeB: boolean };
  backend: BackendWasm;
}

export function batchMatMul(args: BatchMatMulArgs, original: KernelFunc | undefined): TensorInfo {
  if (original === undefined) throw new Error('convlab: wasm BatchMatMul kernel missing');
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
