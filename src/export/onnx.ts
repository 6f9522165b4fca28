/**
 * ONNX export: convlab's network as an ONNX graph (opset 13), built from the saved config and weights and
 * encoded with the official ONNX protobuf schema (the `onnx-proto` package's generated protobufjs code).
 *
 *   images [N,H,W,C] (nhwc) or [N,C,H,W] (nchw), float32 in [0,1]
 *   → Transpose to NCHW (nhwc only)
 *   → per conv block: Conv (+ bias) → MaxPool/AveragePool → Relu/Sigmoid/Tanh (or activation first)
 *   → Flatten                                      [N, C*H*W]
 *   → per dense layer: Gemm (+ bias) → activation  [N, units]   the last one's output is `logits`
 *   → Softmax                                      [N, classes] `probabilities`
 *
 * Matching TensorFlow exactly:
 * - 'same' padding (conv and pooling) pads the extra pixel of an odd total at the bottom/right; written
 *   as explicit `pads`, never `auto_pad`, so every runtime reads the same numbers.
 * - max-pooling ignores padded pixels (ONNX pads MaxPool with −∞); average pooling divides by the number
 *   of pixels inside the image (`count_include_pad = 0`), as tf.avgPool does with 'same'.
 * - convlab flattens NHWC maps; ONNX's Flatten sees NCHW. The rows of fc1's kernel are permuted from
 *   (y, x, c) order to (c, y, x) order instead of adding a Transpose, so the graph stays plain NCHW.
 * - dropout is the identity at inference and is left out.
 */
import onnxProto from 'onnx-proto';
import { blockOutputSize, convOutputSize, weightSpecs, type Activation, type ConvBlockConfig, type NetworkConfig } from '../model/config.ts';

const { onnx } = onnxProto;

/** The opset the graph is written for; every op used has had its current definition since 13 or earlier. */
export const ONNX_OPSET = 13;
/** IR version 7 is the one that introduced opset 13 (ONNX 1.8): the oldest runtime that can read the file. */
const IR_VERSION = 7;

/** Where the channels are in the `images` input. */
export type OnnxLayout = 'nchw' | 'nhwc';
export const onnxLayouts: readonly OnnxLayout[] = ['nchw', 'nhwc'];
/** NCHW is what ONNX consumers (onnx2torch, TensorRT, most ONNX Runtime examples) expect. */
export const DEFAULT_LAYOUT: OnnxLayout = 'nchw';

export const INPUT_NAME = 'images';
export const PROBABILITIES_NAME = 'probabilities';
export const LOGITS_NAME = 'logits';
/** The symbolic batch dimension of the input and both outputs. */
export const BATCH_DIM = 'N';

export interface OnnxExportOptions {
  layout?: OnnxLayout;
  /** convlab's `userDefinedMetadata.convlab` of the model, minus the network (train config, data set, metrics). */
  metadata?: Record<string, unknown>;
  /** `producer_version` (convlab's version). */
  producerVersion?: string;
}

/**
 * The ONNX model of `net` with `weights` (by weightSpecs name, tfjs layouts: conv kernels [kh,kw,in,out],
 * dense kernels [in,out]), encoded as bytes. Pure: no files, no tensors.
 */
export function onnxModelBytes(net: NetworkConfig, weights: ReadonlyMap<string, Float32Array>, options: OnnxExportOptions = {}): Uint8Array {
  return onnx.ModelProto.encode(onnxModel(net, weights, options)).finish();
}

/** The same model as a protobuf message object (for tests that look inside). */
export function onnxModel(net: NetworkConfig, weights: ReadonlyMap<string, Float32Array>, options: OnnxExportOptions = {}): onnxProto.onnx.ModelProto {
  const layout = options.layout ?? DEFAULT_LAYOUT;
  const specs = weightSpecs(net);
  for (const spec of specs) {
    const values = weights.get(spec.name);
    const size = spec.shape.reduce((a, b) => a * b, 1);
    if (values === undefined || values.length !== size) {
      throw new Error(`onnx export: weight ${spec.name} [${spec.shape}] has ${values?.length ?? 'no'} values, expected ${size}`);
    }
  }
  const w = (name: string): Float32Array => weights.get(name)!;
  const { height, width, channels } = net.input;

  const nodes: onnxProto.onnx.INodeProto[] = [];
  const initializers: onnxProto.onnx.ITensorProto[] = [];
  const node = (opType: string, inputs: string[], output: string, attributes: onnxProto.onnx.IAttributeProto[] = []): string => {
    nodes.push({ opType, input: inputs, output: [output], name: output, attribute: attributes });
    return output;
  };

  let x = INPUT_NAME;
  if (layout === 'nhwc') x = node('Transpose', [x], 'images_nchw', [ints('perm', [0, 3, 1, 2])]); // [N,H,W,C] → [N,C,H,W]

  let h = height;
  let wd = width;
  let c = channels;
  net.conv.forEach((block, index) => {
    const i = index + 1;
    const kernel = `conv${i}/kernel`;
    const bias = `conv${i}/bias`;
    initializers.push(tensor(kernel, [block.filters, c, block.size, block.size], hwioToOihw(w(kernel), block.size, c, block.filters)));
    initializers.push(tensor(bias, [block.filters], w(bias)));
    const pads = block.padding === 'same' ? samePads(h, wd, block.size, block.stride) : [0, 0, 0, 0];
    // [N,c,h,w] → [N,filters,h',w']
    x = node('Conv', [x, kernel, bias], `conv${i}`, [
      ints('kernel_shape', [block.size, block.size]),
      ints('strides', [block.stride, block.stride]),
      ints('pads', pads),
      ints('dilations', [1, 1]),
      int('group', 1),
    ]);
    const convH = convOutputSize(h, block);
    const convW = convOutputSize(wd, block);
    const poolNode = (input: string): string => poolOp(node, input, block, convH, convW, i);
    const activationNode = (input: string): string => node(activationOp(block.activation), [input], `${block.activation}${i}`);
    x = block.order === 'activation-then-pool' ? poolNode(activationNode(x)) : activationNode(poolNode(x));
    h = blockOutputSize(h, block);
    wd = blockOutputSize(wd, block);
    c = block.filters;
  });

  x = node('Flatten', [x], 'flatten', [int('axis', 1)]); // [N,c,h,w] → [N,c*h*w], (c, y, x) order

  let features = h * wd * c;
  net.dense.forEach((layer, index) => {
    const j = index + 1;
    const kernel = `fc${j}/kernel`;
    const bias = `fc${j}/bias`;
    const rows = index === 0 ? hwcRowsToChw(w(kernel), h, wd, c, layer.units) : w(kernel);
    initializers.push(tensor(kernel, [features, layer.units], rows));
    initializers.push(tensor(bias, [layer.units], w(bias)));
    const isLast = index === net.dense.length - 1;
    const activation = layer.activation;
    // [N,features] → [N,units]
    x = node('Gemm', [x, kernel, bias], isLast && activation === 'linear' ? LOGITS_NAME : `fc${j}`);
    if (activation !== 'linear') x = node(activationOp(activation), [x], isLast ? LOGITS_NAME : `fc${j}_${activation}`);
    features = layer.units;
  });
  const classes = features;
  node('Softmax', [x], PROBABILITIES_NAME, [int('axis', 1)]); // [N,classes]

  const inputDims = layout === 'nhwc' ? [height, width, channels] : [channels, height, width];
  const graph: onnxProto.onnx.IGraphProto = {
    name: 'convlab',
    node: nodes,
    initializer: initializers,
    input: [valueInfo(INPUT_NAME, inputDims, `${layout.toUpperCase()} float32 images, pixel values in [0, 1] (as convlab trains on them)`)],
    output: [
      valueInfo(PROBABILITIES_NAME, [classes], 'softmax of the logits: one probability per class'),
      valueInfo(LOGITS_NAME, [classes], "the last dense layer's output, before the softmax"),
    ],
    docString: describeNetwork(net),
  };

  const metadata = options.metadata ?? {};
  const props: Record<string, string> = {
    'convlab.layout': layout,
    'convlab.input': `${INPUT_NAME}: float32 [${[BATCH_DIM, ...inputDims].join(',')}] (${layout.toUpperCase()}), pixel values in [0, 1]`,
    'convlab.outputs': `${PROBABILITIES_NAME}: float32 [${BATCH_DIM},${classes}] (softmax); ${LOGITS_NAME}: float32 [${BATCH_DIM},${classes}]`,
    'convlab.network': JSON.stringify(net),
  };
  for (const [key, value] of Object.entries(metadata)) {
    if (key === 'network' || value === undefined) continue;
    props[`convlab.${key}`] = typeof value === 'string' ? value : JSON.stringify(value);
  }

  return onnx.ModelProto.create({
    irVersion: IR_VERSION,
    opsetImport: [{ domain: '', version: ONNX_OPSET }],
    producerName: 'convlab',
    producerVersion: options.producerVersion ?? '',
    domain: 'convlab',
    modelVersion: 1,
    docString:
      `convlab CNN exported to ONNX: ${describeNetwork(net)}. Input ${INPUT_NAME} [${[BATCH_DIM, ...inputDims].join(',')}] ` +
      `(${layout.toUpperCase()}, float32 in [0, 1]); outputs ${PROBABILITIES_NAME} and ${LOGITS_NAME} [${BATCH_DIM},${classes}]. ` +
      'The convlab config is in metadata_props (convlab.network, convlab.train).',
    graph,
    metadataProps: Object.entries(props).map(([key, value]) => ({ key, value })),
  });
}

/** `conv 5x5x16 same → max 2 → relu, ..., fc 128 relu, fc 10 linear → softmax` */
export function describeNetwork(net: NetworkConfig): string {
  const conv = net.conv.map((b) => {
    const pool = b.pool === 'none' ? [] : [`${b.pool}-pool ${b.poolSize}`];
    const steps = b.order === 'activation-then-pool' ? [b.activation, ...pool] : [...pool, b.activation];
    const stride = b.stride === 1 ? '' : ` stride ${b.stride}`;
    return [`conv ${b.size}x${b.size}x${b.filters} ${b.padding}${stride}`, ...steps].join(' → ');
  });
  const dense = net.dense.map((d) => `fc ${d.units} ${d.activation}`);
  const { height, width, channels } = net.input;
  return [`${height}x${width}x${channels}`, ...conv, 'flatten', ...dense, 'softmax'].join(' → ');
}

// ---------------------------------------------------------------------------------------------------------
// Layers
// ---------------------------------------------------------------------------------------------------------

type AddNode = (opType: string, inputs: string[], output: string, attributes?: onnxProto.onnx.IAttributeProto[]) => string;

function poolOp(node: AddNode, input: string, block: ConvBlockConfig, h: number, w: number, i: number): string {
  if (block.pool === 'none') return input;
  const p = block.poolSize;
  const attributes = [ints('kernel_shape', [p, p]), ints('strides', [p, p]), ints('pads', samePads(h, w, p, p))];
  if (block.pool === 'max') return node('MaxPool', [input], `pool${i}`, attributes);
  // tf.avgPool 'same' averages over the pixels inside the image only
  return node('AveragePool', [input], `pool${i}`, [...attributes, int('count_include_pad', 0)]);
}

function activationOp(activation: Activation): string {
  switch (activation) {
    case 'relu':
      return 'Relu';
    case 'sigmoid':
      return 'Sigmoid';
    case 'tanh':
      return 'Tanh';
  }
}

/**
 * TensorFlow's SAME padding as ONNX `pads` [top, left, bottom, right]: the output is ceil(in/stride); an odd
 * total pad puts the extra pixel at the end (bottom/right).
 */
export function samePads(h: number, w: number, size: number, stride: number): number[] {
  const along = (n: number): [number, number] => {
    const total = Math.max((Math.ceil(n / stride) - 1) * stride + size - n, 0);
    const before = Math.floor(total / 2);
    return [before, total - before];
  };
  const [top, bottom] = along(h);
  const [left, right] = along(w);
  return [top, left, bottom, right];
}

/** A conv kernel from tfjs's [kh,kw,in,out] to ONNX's [out,in,kh,kw]. */
function hwioToOihw(src: Float32Array, k: number, cin: number, cout: number): Float32Array {
  const dst = new Float32Array(src.length);
  for (let y = 0; y < k; y++) {
    for (let x = 0; x < k; x++) {
      for (let c = 0; c < cin; c++) {
        for (let o = 0; o < cout; o++) dst[((o * cin + c) * k + y) * k + x] = src[((y * k + x) * cin + c) * cout + o];
      }
    }
  }
  return dst;
}

/** fc1's kernel [h*w*c, units] with its rows moved from convlab's (y, x, c) flatten order to ONNX's (c, y, x). */
function hwcRowsToChw(src: Float32Array, h: number, w: number, c: number, units: number): Float32Array {
  const dst = new Float32Array(src.length);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let ch = 0; ch < c; ch++) {
        const from = ((y * w + x) * c + ch) * units;
        const to = ((ch * h + y) * w + x) * units;
        dst.set(src.subarray(from, from + units), to);
      }
    }
  }
  return dst;
}

// ---------------------------------------------------------------------------------------------------------
// Protobuf pieces
// ---------------------------------------------------------------------------------------------------------

function ints(name: string, values: number[]): onnxProto.onnx.IAttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.INTS, ints: values };
}

function int(name: string, value: number): onnxProto.onnx.IAttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.INT, i: value };
}

/** A float32 initializer; `raw_data` is little-endian by the ONNX spec, whatever this machine is. */
function tensor(name: string, dims: number[], values: Float32Array): onnxProto.onnx.ITensorProto {
  const raw = new Uint8Array(values.length * 4);
  const view = new DataView(raw.buffer);
  for (let k = 0; k < values.length; k++) view.setFloat32(k * 4, values[k], true);
  return { name, dims, dataType: onnx.TensorProto.DataType.FLOAT, rawData: raw };
}

/** A float32 graph input/output [N, ...dims] with a symbolic batch dimension. */
function valueInfo(name: string, dims: number[], docString: string): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    docString,
    type: {
      tensorType: {
        elemType: onnx.TensorProto.DataType.FLOAT,
        shape: { dim: [{ dimParam: BATCH_DIM }, ...dims.map((d) => ({ dimValue: d }))] },
      },
    },
  };
}
