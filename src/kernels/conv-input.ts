/** Conv2DBackpropInput on wasm, stride 1: a forward convolution of dy with the rotated filter. */
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { type KernelFunc, type Pad, type TensorInfo, conv2DInfo, free, heap, isNhwc, run } from './common.ts';

// ---------------------------------------------------------------------------------------------------------
// Conv2DBackpropInput (stride 1): dx = correlate(pad(dy), rot180(W) with in/out swapped)

interface BackpropInputArgs {
  inputs: { dy: TensorInfo; filter: TensorInfo };
  attrs: { strides: number | [number, number]; pad: unknown; dataFormat: unknown; dimRoundingMode: unknown; inputShape: [number, number, number, number] };
  backend: BackendWasm;
}

export function conv2DBackpropInput(args: BackpropInputArgs, fallback: KernelFunc | undefined): TensorInfo {
  const { inputs, attrs, backend } = args;
  const { dy, filter } = inputs;
  const info = conv2DInfo(attrs.inputShape, filter.shape, attrs);
  if (info.strideHeight !== 1 || info.strideWidth !== 1 || !isNhwc(attrs.dataFormat)) {
    if (fallback === undefined) throw new Error('convlab: no Conv2DBackpropInput kernel for this configuration');
    return fallback(args as never) as TensorInfo;
  }
  const { filterHeight: kh, filterWidth: kw, inHeight: h, inWidth: w, outHeight: ho, outWidth: wo } = info;
  const { top, left } = info.padInfo as Pad;
  const flipped = rotateFilter(backend, filter); // [kh,kw,Cout,Cin]
  // dx[y] = Σ_k dy[y + top - k]·W[k]  ⇒  pad dy by kh-1-top above and h-ho+top below, then correlate.
  const dx = run(
    backend,
    'Conv2D',
    { x: dy, filter: flipped },
    {
      strides: [1, 1],
      pad: [
        [0, 0],
        [kh - 1 - top, h - ho + top],
        [kw - 1 - left, w - wo + left],
        [0, 0],
      ],
      dataFormat: 'NHWC',
      dilations: [1, 1],
      dimRoundingMode: undefined,
    },
  );
  free(backend, flipped);
  return dx;
}

/** [kh,kw,Cin,Cout] → rotated by 180° in space, channels swapped: [kh,kw,Cout,Cin]. */
function rotateFilter(backend: BackendWasm, filter: TensorInfo): TensorInfo {
  const [kh, kw, cin, cout] = filter.shape;
  const out = backend.makeOutput([kh, kw, cout, cin], 'float32');
  const src = heap(backend, filter);
  const dst = heap(backend, out);
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      const s = ((kh - 1 - i) * kw + (kw - 1 - j)) * cin * cout;
      const d = (i * kw + j) * cout * cin;
      for (let c = 0; c < cin; c++) {
        for (let o = 0; o < cout; o++) dst[d + o * cin + c] = src[s + c * cout + o];
      }
    }
  }
  return out;
}
