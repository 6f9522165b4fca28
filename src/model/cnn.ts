/**
 * The network, built from TensorFlow.js core ops and read top to bottom like the lesson:
 *
 *   x [B,28,28,1]
 *   → conv 5x5x16 + b → max-pool 2x2 → relu      [B,14,14,16]
 *   → conv 5x5x36 + b → max-pool 2x2 → relu      [B,7,7,36]
 *   → flatten                                    [B,1764]
 *   → fc 128 + b → relu                          [B,128]
 *   → fc 10 + b                                  [B,10]  logits (softmax lives in the loss / predict)
 *
 * The layer list comes from a NetworkConfig, so the same code runs the lesson's exercises: other
 * activations, average or no pooling, activation before pooling, strided convolutions, dropout.
 */
import * as tf from '@tensorflow/tfjs';
import { weightSpecs, type Activation, type ConvBlockConfig, type DenseActivation, type NetworkConfig } from './config.ts';
import type { Rng } from '../data/rng.ts';

/** The trainable weights, by name (`conv1/kernel`, `conv1/bias`, ..., `fc2/bias`), in weightSpecs order. */
export type Params = Map<string, tf.Variable>;

/** Lesson initialisation: weights ~ truncated normal(0, 0.05), biases = 0.05. Seeded, backend independent. */
export function initParams(net: NetworkConfig, rng: Rng): Params {
  const params: Params = new Map();
  for (const { name, shape } of weightSpecs(net)) {
    const size = shape.reduce((a, b) => a * b, 1);
    const values = new Float32Array(size);
    if (name.endsWith('/kernel')) for (let i = 0; i < size; i++) values[i] = rng.truncatedNormal(net.weightStddev);
    else values.fill(net.biasInit);
    const initial = tf.tensor(values, shape);
    params.set(name, tf.variable(initial, true));
    initial.dispose(); // the variable holds its own reference to the data
  }
  return params;
}

/** Wraps loaded tensors as variables (takes ownership of them). */
export function paramsFrom(net: NetworkConfig, weights: Map<string, tf.Tensor>): Params {
  const params: Params = new Map();
  for (const { name } of weightSpecs(net)) {
    const t = weights.get(name);
    if (t === undefined) throw new Error(`missing weight ${name}`);
    params.set(name, tf.variable(t, true));
    t.dispose();
  }
  return params;
}

export function disposeParams(params: Params): void {
  for (const v of params.values()) v.dispose();
}

/** What each layer produced, for looking inside the network. */
export interface Activations {
  /** Per conv block, after conv + pool + activation (+ dropout when training): [B,h,w,filters]. */
  conv: tf.Tensor4D[];
  /** Per dense layer, after its activation (the last is the logits): [B,units]. */
  dense: tf.Tensor2D[];
}

/**
 * Dropout masks for one training batch, one per layer that has dropout (undefined elsewhere): 0 where a
 * value is dropped, 1/(1−rate) where it is kept ("inverted" dropout, so inference needs no rescaling —
 * Keras' Dropout layer does the same). They are drawn outside the graph (see train/dropout.ts) so that
 * splitting a batch between worker threads does not change them.
 */
export interface DropoutMasks {
  /** [B,h,w,filters] per conv block. */
  conv: (tf.Tensor4D | undefined)[];
  /** [B,units] per dense layer. */
  dense: (tf.Tensor2D | undefined)[];
}

function activate<T extends tf.Tensor>(x: T, activation: Activation | DenseActivation): T {
  switch (activation) {
    case 'relu':
      return tf.relu(x);
    case 'sigmoid':
      return tf.sigmoid(x);
    case 'tanh':
      return tf.tanh(x);
    case 'linear':
      return x;
  }
}

function pool(x: tf.Tensor4D, block: ConvBlockConfig): tf.Tensor4D {
  switch (block.pool) {
    case 'max':
      return tf.maxPool(x, block.poolSize, block.poolSize, 'same');
    case 'avg':
      return tf.avgPool(x, block.poolSize, block.poolSize, 'same'); // 'same' averages over the pixels inside the image only
    case 'none':
      return x;
  }
}

/**
 * One conv block. The lesson pools before the ReLU: relu(maxpool(x)) == maxpool(relu(x)) since both
 * are monotone, and pooling first does the ReLU on 4x fewer values. `order` can swap them (for average
 * pooling the two differ).
 */
function convBlock(x: tf.Tensor4D, w: tf.Tensor4D, b: tf.Tensor1D, block: ConvBlockConfig, mask?: tf.Tensor4D): tf.Tensor4D {
  let y = tf.add(tf.conv2d(x, w, block.stride, block.padding), b) as tf.Tensor4D; // [B,h,w,filters]
  y = block.order === 'activation-then-pool' ? pool(activate(y, block.activation), block) : activate(pool(y, block), block.activation); // [B,h/2,w/2,filters]
  return mask ? tf.mul(y, mask) : y;
}

/**
 * The forward pass: images [B,H,W,C] in [0,1] → logits [B,classes]. Optionally records activations.
 * With `masks` it is the training pass (dropout applied); without, inference.
 */
export function forward(net: NetworkConfig, params: Params, x: tf.Tensor4D, record?: Activations, masks?: DropoutMasks): tf.Tensor2D {
  const p = (name: string) => params.get(name)!;
  let h = x;
  net.conv.forEach((block, i) => {
    h = convBlock(h, p(`conv${i + 1}/kernel`) as tf.Tensor4D, p(`conv${i + 1}/bias`) as tf.Tensor1D, block, masks?.conv[i]);
    record?.conv.push(h);
  });
  let z = tf.reshape(h, [h.shape[0], -1]) as tf.Tensor2D; // flatten NHWC: [B,1764]
  net.dense.forEach((layer, j) => {
    z = tf.add(tf.matMul(z, p(`fc${j + 1}/kernel`) as tf.Tensor2D), p(`fc${j + 1}/bias`)) as tf.Tensor2D; // [B,units]
    z = activate(z, layer.activation);
    const mask = masks?.dense[j];
    if (mask) z = tf.mul(z, mask);
    record?.dense.push(z);
  });
  return z;
}

/** Mean softmax cross-entropy of logits [B,K] against integer labels [B]. */
export function loss(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  const oneHot = tf.oneHot(labels, logits.shape[1]);
  return tf.losses.softmaxCrossEntropy(oneHot, logits) as tf.Scalar;
}

/** Class probabilities for a batch: softmax(forward(x)). */
export function predictProbabilities(net: NetworkConfig, params: Params, x: tf.Tensor4D): tf.Tensor2D {
  return tf.tidy(() => tf.softmax(forward(net, params, x)));
}
