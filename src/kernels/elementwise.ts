/** Sum over leading axes, Identity without a copy, and a SIMD bias Add on wasm. */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { type KernelFunc, type TensorInfo, heap, simdKernels } from './common.ts';

// ---------------------------------------------------------------------------------------------------------
// Sum over leading axes (a broadcast bias add's gradient: [B,H,W,C] → [C]). The stock kernel transposes the
// reduced axes innermost first; summing rows of the [M, C] view needs no transpose.

interface SumArgs {
  inputs: { x: TensorInfo };
  attrs: { axis: number | number[]; keepDims: boolean };
  backend: BackendWasm;
}

export function sum(args: SumArgs, fallback: KernelFunc | undefined): TensorInfo {
  if (fallback === undefined) throw new Error('convlab: wasm Sum kernel missing');
  const { inputs, attrs, backend } = args;
  const { x } = inputs;
  const rank = x.shape.length;
  const axes = tf.util.parseAxisParam(attrs.axis, x.shape);
  const sorted = [...new Set(axes)].sort((a, b) => a - b);
  const k = sorted.length;
  // Only float32, only the axes 0..k−1 with at least one axis kept, and something to add up.
  if (x.dtype !== 'float32' || k === 0 || k >= rank || sorted[k - 1] !== k - 1) return fallback(args as never) as TensorInfo;
  const m = x.shape.slice(0, k).reduce((a, b) => a * b, 1);
  const cols = x.shape.slice(k).reduce((a, b) => a * b, 1);
  if (m < 2 || cols === 0) return fallback(args as never) as TensorInfo;
  const outShape = attrs.keepDims ? [...x.shape.slice(0, k).map(() => 1), ...x.shape.slice(k)] : x.shape.slice(k);
  const out = backend.makeOutput(outShape, 'float32');
  const xv = heap(backend, x);
  const ov = heap(backend, out);
  const simd = cols % 4 === 0 ? simdKernels(backend) : undefined;
  if (simd) simd.sumRows(xv.byteOffset, ov.byteOffset, m, cols);
  else sumRows(xv, ov, m, cols);
  return out;
}

/**
 * The JavaScript loop (cols not a multiple of 4, or no SIMD): out[j] = Σ_r x[r·cols + j]. Eight rows per pass into float64 accumulators: a float32 accumulator array costs
 * a conversion per load and store and ran 3x slower (≈2.5 ns per element).
 */
function sumRows(xv: Float32Array, ov: Float32Array, m: number, cols: number): void {
  const acc = new Float64Array(cols);
  const c2 = 2 * cols;
  const c3 = 3 * cols;
  const c4 = 4 * cols;
  const c5 = 5 * cols;
  const c6 = 6 * cols;
  const c7 = 7 * cols;
  let r = 0;
  let p = 0;
  for (; r + 8 <= m; r += 8, p += c7) {
    for (let j = 0; j < cols; j++, p++) acc[j] += xv[p] + xv[p + cols] + xv[p + c2] + xv[p + c3] + xv[p + c4] + xv[p + c5] + xv[p + c6] + xv[p + c7];
  }
  for (; r < m; r++) {
    for (let j = 0; j < cols; j++, p++) acc[j] += xv[p];
  }
  ov.set(acc);
}

// ---------------------------------------------------------------------------------------------------------
// Identity: tfjs-core clones every tensor it saves for the backward pass (engine.saveTensorsForBackwardMode)
// and the stock wasm kernel copies the data each time. Tensors are immutable, so share the buffer instead
// (reference counted, as the wasm Reshape and the cpu backend's Identity do).

interface IdentityArgs {
  inputs: { x: TensorInfo };
  backend: BackendWasm;
}

export function identity(args: IdentityArgs, fallback: KernelFunc | undefined): TensorInfo {
  const { inputs, backend } = args;
  const { x } = inputs;
  if (x.dtype === 'string') {
    if (fallback === undefined) throw new Error('convlab: wasm Identity kernel missing');
    return fallback(args as never) as TensorInfo;
  }
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

// ---------------------------------------------------------------------------------------------------------
// Add with a bias: a [.., C] + b [C] (or b [.., C] + a [C]), float32, C a multiple of 4. The stock kernel's
// general broadcasting loop is several times slower than a SIMD pass; everything else goes to it.

interface AddArgs {
  inputs: { a: TensorInfo; b: TensorInfo };
  backend: BackendWasm;
}

export function add(args: AddArgs, fallback: KernelFunc | undefined): TensorInfo {
  if (fallback === undefined) throw new Error('convlab: wasm Add kernel missing');
  const { inputs, backend } = args;
  const { a, b } = inputs;
  const biasAdd = (big: TensorInfo, bias: TensorInfo) =>
    big.dtype === 'float32' &&
    bias.dtype === 'float32' &&
    bias.shape.length === 1 &&
    big.shape.length >= 2 &&
    big.shape[big.shape.length - 1] === bias.shape[0];
  const [big, bias] = biasAdd(a, b) ? [a, b] : biasAdd(b, a) ? [b, a] : [undefined, undefined];
  const c = bias?.shape[0] ?? 0;
  const size = big === undefined ? 0 : tf.util.sizeFromShape(big.shape);
  const simd = big !== undefined && c % 4 === 0 && size > 0 ? simdKernels(backend) : undefined;
  if (!simd || big === undefined || bias === undefined) return fallback(args as never) as TensorInfo;
  const out = backend.makeOutput(big.shape, 'float32');
  simd.addRows(heap(backend, big).byteOffset, heap(backend, bias).byteOffset, heap(backend, out).byteOffset, size / c, 4 * c);
  return out;
}
