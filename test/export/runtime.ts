/**
 * The independent runtimes the export tests use: ONNX Runtime (onnxruntime-node, Microsoft's CPU build from
 * npm) and the ONNX project's own checker (Debian's python3-onnx).
 */
import { spawnSync } from 'node:child_process';
import * as ort from 'onnxruntime-node';

/** One ONNX Runtime session on one thread (the machine is shared). */
export function session(bytes: Uint8Array): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, interOpNumThreads: 1, executionProviders: ['cpu'] });
}

/** ONNX Runtime's probabilities for `count` NHWC images, fed in `layout` (transposed here for nchw). */
export async function ortProbabilities(
  s: ort.InferenceSession,
  images: Float32Array,
  count: number,
  shape: { height: number; width: number; channels: number },
  layout: 'nchw' | 'nhwc',
): Promise<{ probabilities: Float32Array; logits: Float32Array }> {
  const { height: h, width: w, channels: c } = shape;
  let input = images;
  if (layout === 'nchw') {
    input = new Float32Array(images.length);
    for (let n = 0; n < count; n++) {
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          for (let ch = 0; ch < c; ch++) input[((n * c + ch) * h + y) * w + x] = images[((n * h + y) * w + x) * c + ch];
        }
      }
    }
  }
  const dims = layout === 'nchw' ? [count, c, h, w] : [count, h, w, c];
  const out = await s.run({ images: new ort.Tensor('float32', input, dims) });
  return { probabilities: out.probabilities.data as Float32Array, logits: out.logits.data as Float32Array };
}

/** Index of the largest value in row `row` of a [rows, k] array (first one on ties, like tf.argMax). */
export function argmaxRow(values: ArrayLike<number>, row: number, k: number): number {
  let best = 0;
  for (let j = 1; j < k; j++) if (values[row * k + j] > values[row * k + best]) best = j;
  return best;
}

/**
 * A Python with the `onnx` package: $ONNX_PYTHON, else Debian's python3 (the one apt's python3-onnx
 * installs into), else python3 on PATH. Undefined when none can import onnx.
 */
export function onnxPython(): string | undefined {
  const candidates = [process.env.ONNX_PYTHON, '/usr/bin/python3', 'python3'].filter((p): p is string => !!p);
  return candidates.find((py) => spawnSync(py, ['-c', 'import onnx'], { encoding: 'utf8' }).status === 0);
}

/**
 * Runs onnx.checker.check_model(full_check=True) on each file, and reads back what a consumer relies on:
 * opset, input/output names, the symbolic batch dimension, the convlab metadata. Throws with the checker's
 * message on the first failure.
 */
export function checkWithOnnx(python: string, files: string[]): { file: string; opset: number; inputDims: (string | number)[] }[] {
  const script = `
import json, sys, onnx
out = []
for path in sys.argv[1:]:
    m = onnx.load(path)
    onnx.checker.check_model(m, full_check=True)
    dims = [d.dim_param or d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim]
    outs = {o.name: [d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim] for o in m.graph.output}
    meta = {p.key: p.value for p in m.metadata_props}
    assert m.graph.input[0].name == 'images', m.graph.input[0].name
    assert dims[0] == 'N' and outs['probabilities'][0] == 'N' and outs['logits'][0] == 'N', (dims, outs)
    assert 'convlab.network' in meta and json.loads(meta['convlab.network'])['input'], meta.keys()
    assert m.doc_string and m.producer_name == 'convlab'
    out.append({'file': path, 'opset': max(o.version for o in m.opset_import if o.domain in ('', 'ai.onnx')), 'inputDims': dims})
print(json.dumps(out))
`;
  const r = spawnSync(python, ['-c', script, ...files], { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0) throw new Error(`onnx checker failed:\n${r.stderr}`);
  return JSON.parse(r.stdout);
}
