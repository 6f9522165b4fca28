/**
 * How one number in a feature map was computed (CNN Explainer's convolution, pool and activation views,
 * for any convlab conv block): the window of the previous layer, the filter, the products and their sum
 * plus bias for each position the pool covers, then the pool and the activation. Plain arithmetic on the
 * arrays the network already produced, so the page can show every number, and a test checks that the last
 * one equals the activation the network computed.
 *
 * Shapes are NHWC without the batch dimension: a layer is [h, w, channels], a kernel [k, k, in, out].
 * Padding follows TensorFlow: SAME pads (total = max((out−1)·stride + k − in, 0)), the smaller half first.
 */
import { convOutputSize, type Activation, type ConvBlockConfig, type NetworkConfig } from '../model/config.ts';

/** A feature map layer's values: [height, width, channels], row-major NHWC. */
export interface Layer {
  height: number;
  width: number;
  channels: number;
  data: Float32Array;
}

/** An inclusive range of rows or columns. */
export interface Span {
  from: number;
  to: number;
}

/** One convolution at one position: window · filter + bias. */
export interface ConvAt {
  /** Position in the convolution's output (before pooling). */
  row: number;
  col: number;
  /** Top-left of the window in the previous layer; may be negative (padding). */
  top: number;
  left: number;
  size: number;
  channels: number;
  /** size*size*channels, [kh][kw][c]: the previous layer's values (0 where the window is in the padding). */
  window: Float32Array;
  /** The same layout: the filter's weights for this output channel. */
  filter: Float32Array;
  /** window[i] * filter[i]. */
  products: Float32Array;
  /** Sum of the products per input channel. */
  channelSums: Float32Array;
  /** Σ products. */
  sum: number;
  bias: number;
  /** sum + bias: the convolution's output here. */
  value: number;
  /** After the activation, when the block activates before pooling. */
  activated?: number;
}

export interface CellExplanation {
  /** Conv block index (0-based) and the cell in its output. */
  block: number;
  row: number;
  col: number;
  channel: number;
  config: ConvBlockConfig;
  /** Every convolution position the pool window covers (one without pooling), row by row. */
  positions: ConvAt[];
  /** Index in `positions` of the one the pool picked (max), or the first (avg, none). */
  chosen: number;
  /** The pool's output (of the raw sums, or of the activated values for activation-then-pool). */
  pooled: number;
  /** The block's output at the cell: what the feature map shows. */
  value: number;
  /** The input pixels this cell depends on, in the network's input (inclusive). */
  receptiveField: { rows: Span; cols: Span };
}

export function activate(v: number, activation: Activation): number {
  switch (activation) {
    case 'relu':
      return v > 0 ? v : 0;
    case 'sigmoid':
      return 1 / (1 + Math.exp(-v));
    case 'tanh':
      return Math.tanh(v);
  }
}

/** The top (or left) padding of a TensorFlow SAME operation. */
export function samePadding(inSize: number, outSize: number, window: number, stride: number): number {
  return Math.floor(Math.max((outSize - 1) * stride + window - inSize, 0) / 2);
}

/** Rows of the convolution output that pool-output row `r` covers, clipped to the output. */
export function poolSpan(r: number, convSize: number, block: ConvBlockConfig): Span {
  if (block.pool === 'none') return { from: r, to: r };
  const p = block.poolSize;
  const out = Math.ceil(convSize / p);
  const pad = samePadding(convSize, out, p, p);
  return { from: Math.max(r * p - pad, 0), to: Math.min(r * p - pad + p - 1, convSize - 1) };
}

/** First row of the previous layer under convolution-output row `r` (negative: in the padding). */
export function convTop(r: number, inSize: number, block: ConvBlockConfig): number {
  if (block.padding === 'valid') return r * block.stride;
  return r * block.stride - samePadding(inSize, convOutputSize(inSize, block), block.size, block.stride);
}

/** Spatial size of each layer: index 0 the input, then each block's output. */
export function layerSizes(net: NetworkConfig): { height: number; width: number }[] {
  const sizes = [{ height: net.input.height, width: net.input.width }];
  for (const block of net.conv) {
    const prev = sizes[sizes.length - 1];
    const size = (n: number) => {
      const c = convOutputSize(n, block);
      return block.pool === 'none' ? c : Math.ceil(c / block.poolSize);
    };
    sizes.push({ height: size(prev.height), width: size(prev.width) });
  }
  return sizes;
}

/** The rows of layer `block` (its input) that rows `span` of the block's output depend on. */
function backSpan(span: Span, inSize: number, block: ConvBlockConfig): Span {
  const convSize = convOutputSize(inSize, block);
  const a = poolSpan(span.from, convSize, block).from;
  const b = poolSpan(span.to, convSize, block).to;
  return { from: Math.max(convTop(a, inSize, block), 0), to: Math.min(convTop(b, inSize, block) + block.size - 1, inSize - 1) };
}

/** The input pixels cell (row, col) of block `block`'s output depends on: its receptive field. */
export function receptiveField(net: NetworkConfig, block: number, row: number, col: number): { rows: Span; cols: Span } {
  const sizes = layerSizes(net);
  let rows: Span = { from: row, to: row };
  let cols: Span = { from: col, to: col };
  for (let b = block; b >= 0; b--) {
    rows = backSpan(rows, sizes[b].height, net.conv[b]);
    cols = backSpan(cols, sizes[b].width, net.conv[b]);
  }
  return { rows, cols };
}

/**
 * Explains output cell (row, col, channel) of conv block `block`, given that block's input (the network's
 * input for block 0, the previous block's output otherwise) and its kernel [k,k,in,out] and bias [out].
 */
export function explainCell(
  net: NetworkConfig,
  block: number,
  input: Layer,
  kernel: Float32Array,
  bias: Float32Array,
  row: number,
  col: number,
  channel: number,
): CellExplanation {
  const config = net.conv[block];
  if (!config) throw new RangeError(`no conv block ${block + 1}: the network has ${net.conv.length}`);
  const { size: k, filters } = config;
  const cin = input.channels;
  if (kernel.length !== k * k * cin * filters) throw new RangeError(`kernel has ${kernel.length} values, expected ${k}x${k}x${cin}x${filters}`);
  const convH = convOutputSize(input.height, config),
    convW = convOutputSize(input.width, config);
  const rows = poolSpan(row, convH, config),
    cols = poolSpan(col, convW, config);
  if (rows.from > rows.to || cols.from > cols.to || channel < 0 || channel >= filters) {
    throw new RangeError(`cell (${row}, ${col}, ${channel}) is outside block ${block + 1}'s output`);
  }

  const positions: ConvAt[] = [];
  for (let r = rows.from; r <= rows.to; r++) {
    for (let c = cols.from; c <= cols.to; c++) positions.push(convAt(input, kernel, bias[channel], config, filters, r, c, channel));
  }
  const act = config.activation;
  const activateFirst = config.order === 'activation-then-pool';
  if (activateFirst) for (const p of positions) p.activated = activate(p.value, act);
  const pooledOver = positions.map((p) => (activateFirst ? p.activated! : p.value));
  let chosen = 0;
  let pooled: number;
  if (config.pool === 'avg') {
    // TensorFlow's SAME average pool divides by the number of positions inside the layer
    pooled = pooledOver.reduce((a, b) => a + b, 0) / pooledOver.length;
  } else {
    for (let i = 1; i < pooledOver.length; i++) if (pooledOver[i] > pooledOver[chosen]) chosen = i;
    pooled = pooledOver[chosen];
  }
  const value = activateFirst ? pooled : activate(pooled, act);
  return { block, row, col, channel, config, positions, chosen, pooled, value, receptiveField: receptiveField(net, block, row, col) };
}

function convAt(input: Layer, kernel: Float32Array, b: number, config: ConvBlockConfig, filters: number, r: number, c: number, channel: number): ConvAt {
  const k = config.size,
    cin = input.channels;
  const top = convTop(r, input.height, config),
    left = convTop(c, input.width, config);
  const n = k * k * cin;
  const window = new Float32Array(n),
    filter = new Float32Array(n),
    products = new Float32Array(n),
    channelSums = new Float32Array(cin);
  let sum = 0;
  for (let i = 0; i < k; i++) {
    for (let j = 0; j < k; j++) {
      const y = top + i,
        x = left + j;
      const inside = y >= 0 && y < input.height && x >= 0 && x < input.width;
      for (let ch = 0; ch < cin; ch++) {
        const at = (i * k + j) * cin + ch;
        window[at] = inside ? input.data[(y * input.width + x) * cin + ch] : 0;
        filter[at] = kernel[at * filters + channel];
        products[at] = window[at] * filter[at];
        channelSums[ch] += products[at];
        sum += products[at];
      }
    }
  }
  return { row: r, col: c, top, left, size: k, channels: cin, window, filter, products, channelSums, sum, bias: b, value: sum + b };
}
