/**
 * The network's layers as the API, the CLI and the page describe them: names, output shapes and parameter
 * counts, computed from the config alone (no TensorFlow.js). `/api/model` returns this table and the page
 * lays out its views with it.
 */
import { blockOutputSize, convOutputSize, type NetworkConfig } from './config.ts';

export type LayerKind = 'conv' | 'dense' | 'logits' | 'softmax';

/** One layer as GET /api/model describes it. */
export interface LayerInfo {
  name: string;
  kind: LayerKind;
  /** E.g. `conv 5x5, 16 filters, stride 1, same → max-pool 2x2 → relu`. */
  description: string;
  /** Output shape of one example, without the batch dimension. */
  outputShape: number[];
  /** Trainable numbers in this layer (weights + biases). */
  parameters: number;
}

/** The layers whose outputs /api/activations returns, with shapes and parameter counts, from the config. */
export function architecture(net: NetworkConfig): LayerInfo[] {
  const layers: LayerInfo[] = [];
  let h = net.input.height,
    w = net.input.width,
    c = net.input.channels;
  net.conv.forEach((b, i) => {
    const parameters = b.size * b.size * c * b.filters + b.filters;
    h = blockOutputSize(h, b);
    w = blockOutputSize(w, b);
    c = b.filters;
    const pool = b.pool === 'none' ? [] : [`${b.pool}-pool ${b.poolSize}x${b.poolSize}`];
    // the lesson pools first; configs may say otherwise (`order`, where the config has it)
    const activationFirst = (b as { order?: string }).order === 'activation-then-pool';
    const steps = activationFirst ? [b.activation, ...pool] : [...pool, b.activation];
    layers.push({
      name: `conv${i + 1}`,
      kind: 'conv',
      description: [`conv ${b.size}x${b.size}, ${b.filters} filters, stride ${b.stride}, ${b.padding}`, ...steps].join(' → '),
      outputShape: [h, w, c],
      parameters,
    });
  });
  let features = h * w * c;
  net.dense.forEach((d, j) => {
    const last = j === net.dense.length - 1;
    const activation = d.activation === 'linear' ? (last ? ' (logits)' : '') : ` → ${d.activation}`;
    layers.push({
      name: `fc${j + 1}`,
      kind: last ? 'logits' : 'dense',
      description: `fully connected ${features} → ${d.units}${activation}`,
      outputShape: [d.units],
      parameters: features * d.units + d.units,
    });
    features = d.units;
  });
  layers.push({ name: 'softmax', kind: 'softmax', description: 'softmax: class probabilities', outputShape: [features], parameters: 0 });
  return layers;
}

/** The most images per forward pass when classifying. */
export const CLASSIFY_BATCH = 500;

/** Bytes the largest activation of one forward pass may take: the wasm heap's peak is a small multiple of it. */
const ACTIVATION_BUDGET = 8 << 20;

/**
 * Images per forward pass when classifying many with `net` (evaluation, the workers, the figures): as many
 * as keep its largest activation (a conv output before pooling, or the input) under 8 MiB, between 16 and
 * CLASSIFY_BATCH. The wasm heap grows to the largest batch's activations and never shrinks: 500 images of
 * the seed network took it to 114 MB per TensorFlow.js instance, 167 (what this gives) to about 40 MB; the
 * CIFAR lesson network gets 32.
 */
export function classifyBatch(net: NetworkConfig): number {
  let h = net.input.height;
  let w = net.input.width;
  let largest = h * w * net.input.channels;
  for (const block of net.conv) {
    largest = Math.max(largest, convOutputSize(h, block) * convOutputSize(w, block) * block.filters);
    h = blockOutputSize(h, block);
    w = blockOutputSize(w, block);
  }
  for (const d of net.dense) largest = Math.max(largest, d.units);
  return Math.max(16, Math.min(CLASSIFY_BATCH, Math.floor(ACTIVATION_BUDGET / (4 * largest))));
}
