/**
 * The network and training configuration: one typed object per concern, defaults in one place,
 * saved with every model (`model.json` user metadata) and every run (`metrics.json`).
 */

/** Non-linearities a conv block may use. */
export type Activation = 'relu' | 'sigmoid' | 'tanh';
/** A dense layer may also be linear (the usual logits layer). */
export type DenseActivation = Activation | 'linear';
export type PoolKind = 'max' | 'avg' | 'none';
/** Where the non-linearity goes relative to pooling. */
export type BlockOrder = 'pool-then-activation' | 'activation-then-pool';

/** One convolutional block: conv (+ bias) → pool → activation (or activation → pool) → dropout. */
export interface ConvBlockConfig {
  /** Number of filters (output channels). Lesson: 16, then 36. */
  filters: number;
  /** Square filter size in pixels. Lesson: 5. */
  size: number;
  /** Convolution stride. Lesson: 1. A stride of 2 with `pool: 'none'` replaces pooling by a strided conv. */
  stride: number;
  /** 'same' keeps the spatial size at stride 1; 'valid' shrinks it by size-1. Lesson: 'same'. */
  padding: 'same' | 'valid';
  /** Pooling after the convolution ('same' padding, stride = window). Lesson: 'max'. */
  pool: PoolKind;
  /** Pool window and stride. Lesson: 2. */
  poolSize: number;
  /** Non-linearity. Lesson: 'relu'. */
  activation: Activation;
  /**
   * Lesson: 'pool-then-activation'. For max-pooling and a non-decreasing activation both orders give the
   * same maps (the pooled ReLU is cheaper); for average pooling they differ.
   */
  order: BlockOrder;
  /** Fraction of the block's outputs zeroed during training (inverted dropout; 0 = none). Lesson: 0. */
  dropout: number;
}

/** One fully connected layer. The last one's output is the logits (softmax is applied by the loss). */
export interface DenseLayerConfig {
  /** Output units. Lesson: 128, then 10 (the number of classes). */
  units: number;
  /** Lesson: 'relu' for hidden layers, 'linear' for the logits layer. */
  activation: DenseActivation;
  /** Fraction of this layer's outputs zeroed during training (0 = none). Lesson: 0. */
  dropout: number;
}

/** The architecture. */
export interface NetworkConfig {
  /** Input image shape, height x width x channels, taken from the data set. MNIST: 28x28x1. */
  input: { height: number; width: number; channels: number };
  /** Convolutional blocks, applied in order. */
  conv: ConvBlockConfig[];
  /** Fully connected layers after flattening; the last has `units` = number of classes. */
  dense: DenseLayerConfig[];
  /** Standard deviation of the truncated-normal weight initialiser. Lesson: 0.05. */
  weightStddev: number;
  /** Constant bias initialiser. Lesson: 0.05. */
  biasInit: number;
}

/** How the learning rate moves over the run (`i` = 0-based iteration of `total`). */
export type ScheduleConfig =
  /** The same rate throughout. Lesson. */
  | { type: 'constant' }
  /** Half a cosine from `learningRate` at the first iteration to `finalLearningRate` at the last. */
  | { type: 'cosine'; finalLearningRate: number }
  /** Multiply the rate by `factor` every `every` iterations. */
  | { type: 'step'; every: number; factor: number };

/** Adam (Kingma & Ba, 2015). Lesson: learning rate 1e-4, TensorFlow 1.x defaults for the rest. */
export interface AdamConfig {
  type: 'adam';
  learningRate: number;
  schedule: ScheduleConfig;
  beta1: number;
  beta2: number;
  epsilon: number;
}

/** Stochastic gradient descent with (optionally Nesterov) momentum: v ← μv + g; θ ← θ − lr·v. */
export interface SgdConfig {
  type: 'sgd';
  learningRate: number;
  schedule: ScheduleConfig;
  /** μ; 0 is plain SGD. */
  momentum: number;
  nesterov: boolean;
}

/** RMSProp (Hinton, lecture 6e): a running mean of g² scales each step; optional momentum. */
export interface RmsPropConfig {
  type: 'rmsprop';
  learningRate: number;
  schedule: ScheduleConfig;
  /** Decay of the running mean of g². */
  rho: number;
  momentum: number;
  epsilon: number;
}

export type OptimizerConfig = AdamConfig | SgdConfig | RmsPropConfig;
export type OptimizerType = OptimizerConfig['type'];

/** Random changes to each training batch, drawn from (seed, iteration) so that a resumed run repeats them. */
export interface AugmentConfig {
  /** Shift each image by up to this many pixels in x and y (vacated pixels are 0). A random crop of an
   *  image padded by `shift` pixels is the same thing. 0 = off. Digits: 2; CIFAR: 4. */
  shift: number;
  /** Mirror each image left-right with probability 1/2 (CIFAR: yes; digits: no, a mirrored 2 is no 2). */
  flip: boolean;
  /** Rotate each image by up to this many degrees either way (bilinear; 0 = off). With any of the four
   *  options below, the shift becomes sub-pixel. See data/augment.ts. */
  rotate?: number;
  /** Scale each image by a factor in [1 − scale, 1 + scale] about its centre (0 = off). */
  scale?: number;
  /** Elastic distortion: a smooth random displacement of up to this many pixels (0 = off). */
  elastic?: number;
  /** Stroke thickness: blend each image by up to this fraction towards its dilation or erosion (0 = off). */
  thickness?: number;
}

/** How the network is trained. */
export interface TrainConfig {
  /** Images per step. Lesson: 64. */
  batchSize: number;
  /** Number of optimisation steps. Lesson: 10,000 at the end. */
  iterations: number;
  /** The update rule, its learning rate and schedule. Lesson: Adam at 1e-4, constant. */
  optimizer: OptimizerConfig;
  /** Data augmentation. Lesson: none. */
  augment: AugmentConfig;
  /** Seed for initial weights, batch order, dropout masks and augmentation. */
  seed: number;
  /** Log a line every this many iterations. */
  logEvery: number;
  /** Measure validation accuracy every this many iterations (0 = only at the end). */
  validateEvery: number;
}

export interface RunConfig {
  /** What this configuration is for, in a sentence (optional; shown in reports). */
  description?: string;
  network: NetworkConfig;
  train: TrainConfig;
}

/** The lesson's network: conv 5x5x16 → pool → relu → conv 5x5x36 → pool → relu → fc 128 → fc 10. */
export const seedNetwork: NetworkConfig = {
  input: { height: 28, width: 28, channels: 1 },
  conv: [
    { filters: 16, size: 5, stride: 1, padding: 'same', pool: 'max', poolSize: 2, activation: 'relu', order: 'pool-then-activation', dropout: 0 },
    { filters: 36, size: 5, stride: 1, padding: 'same', pool: 'max', poolSize: 2, activation: 'relu', order: 'pool-then-activation', dropout: 0 },
  ],
  dense: [
    { units: 128, activation: 'relu', dropout: 0 },
    { units: 10, activation: 'linear', dropout: 0 },
  ],
  weightStddev: 0.05,
  biasInit: 0.05,
};

/** Defaults for everything a config file may leave out, in one place. */
export const defaults = {
  convBlock: { stride: 1, padding: 'same', pool: 'max', poolSize: 2, activation: 'relu', order: 'pool-then-activation', dropout: 0 },
  /** Hidden dense layers; the last (logits) layer defaults to 'linear'. */
  dense: { activation: 'relu', dropout: 0 },
  weightStddev: 0.05,
  biasInit: 0.05,
  /** Per optimizer, when a config names one without its parameters (schedule: cosine to 1/100 of the rate). */
  optimizer: {
    adam: { type: 'adam', learningRate: 2e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 },
    sgd: { type: 'sgd', learningRate: 0.05, momentum: 0.9, nesterov: false },
    rmsprop: { type: 'rmsprop', learningRate: 1e-3, rho: 0.9, momentum: 0, epsilon: 1e-7 },
  },
  /** A cosine schedule's final rate, as a fraction of the starting rate, when not given. */
  cosineFinalFraction: 0.01,
  augment: { shift: 0, flip: false },
} as const satisfies {
  convBlock: Omit<ConvBlockConfig, 'filters' | 'size'>;
  dense: Omit<DenseLayerConfig, 'units'>;
  weightStddev: number;
  biasInit: number;
  optimizer: { [K in OptimizerType]: Omit<Extract<OptimizerConfig, { type: K }>, 'schedule'> };
  cosineFinalFraction: number;
  augment: AugmentConfig;
};

const lessonTrain: TrainConfig = {
  batchSize: 64,
  iterations: 10_000,
  optimizer: { type: 'adam', learningRate: 1e-4, schedule: { type: 'constant' }, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 },
  augment: { shift: 0, flip: false },
  seed: 1,
  logEvery: 100,
  validateEvery: 1000,
};

export type PresetName = 'seed' | 'default';

/**
 * `seed`: exactly the lesson. `default`: the same network with a recipe measured to reach ≥ 99% test
 * accuracy quickly (see README, "Choosing the default recipe"). Each is a config like examples/*.json.
 */
export const presets: Record<PresetName, RunConfig> = {
  seed: {
    description:
      'The lesson, exactly (the seed preset): two 5x5 conv blocks (16 and 36 filters), max-pool before ReLU, fc 128, Adam at 1e-4 for 10,000 iterations.',
    network: seedNetwork,
    train: lessonTrain,
  },
  default: {
    description:
      "The lesson's network with convlab's default recipe (the default preset): Adam 3e-3 with cosine decay to 3e-5 over 2,000 iterations, digits randomly shifted, rotated, scaled, distorted and thickened.",
    network: seedNetwork,
    train: {
      ...lessonTrain,
      iterations: 2_000,
      optimizer: { ...defaults.optimizer.adam, learningRate: 3e-3, schedule: { type: 'cosine', finalLearningRate: 3e-5 } },
      // what preprocessing leaves of a real picture: tilt, size, position, a writer's wobble, pen width
      augment: { shift: 2, flip: false, rotate: 10, scale: 0.1, elastic: 1, thickness: 0.5 },
    },
  },
};

export function isPresetName(name: string): name is PresetName {
  return name === 'seed' || name === 'default';
}

/** Spatial size after a block's convolution alone (TensorFlow's SAME/VALID rules). */
export function convOutputSize(inSize: number, block: ConvBlockConfig): number {
  return block.padding === 'same' ? Math.ceil(inSize / block.stride) : Math.ceil((inSize - block.size + 1) / block.stride);
}

/** Spatial size after one conv block (convolution, then SAME pooling). */
export function blockOutputSize(inSize: number, block: ConvBlockConfig): number {
  const afterConv = convOutputSize(inSize, block);
  return block.pool === 'none' ? afterConv : Math.ceil(afterConv / block.poolSize);
}

/** Per conv block its output [h, w, filters], then per dense layer [units]: the shapes dropout masks take. */
export function layerShapes(net: NetworkConfig): { conv: [number, number, number][]; dense: [number][] } {
  let h = net.input.height;
  let w = net.input.width;
  const conv = net.conv.map((block): [number, number, number] => {
    h = blockOutputSize(h, block);
    w = blockOutputSize(w, block);
    return [h, w, block.filters];
  });
  return { conv, dense: net.dense.map((d): [number] => [d.units]) };
}

/** The number of classes the network tells apart: the last dense layer's units. */
export function classCount(net: NetworkConfig): number {
  return net.dense[net.dense.length - 1].units;
}

/** The number of features entering the first dense layer (1,764 for the lesson's network). */
export function flattenSize(net: NetworkConfig): number {
  let h = net.input.height;
  let w = net.input.width;
  for (const block of net.conv) {
    h = blockOutputSize(h, block);
    w = blockOutputSize(w, block);
  }
  const channels = net.conv.length > 0 ? net.conv[net.conv.length - 1].filters : net.input.channels;
  return h * w * channels;
}

/** Weight names in the saved model, in order: conv1/kernel, conv1/bias, ..., fc1/kernel, ... */
export function weightSpecs(net: NetworkConfig): { name: string; shape: number[] }[] {
  const specs: { name: string; shape: number[] }[] = [];
  let channels = net.input.channels;
  net.conv.forEach((block, i) => {
    specs.push({ name: `conv${i + 1}/kernel`, shape: [block.size, block.size, channels, block.filters] });
    specs.push({ name: `conv${i + 1}/bias`, shape: [block.filters] });
    channels = block.filters;
  });
  let features = flattenSize(net);
  net.dense.forEach((layer, i) => {
    specs.push({ name: `fc${i + 1}/kernel`, shape: [features, layer.units] });
    specs.push({ name: `fc${i + 1}/bias`, shape: [layer.units] });
    features = layer.units;
  });
  return specs;
}

/** `2e-3 → 2e-5 (cosine)`, `1e-4 (constant)`, `0.1, ×0.5 every 1,000 iterations (step)`. */
export function describeSchedule(opt: OptimizerConfig): string {
  const s = opt.schedule;
  switch (s.type) {
    case 'constant':
      return `${opt.learningRate} (constant)`;
    case 'cosine':
      return `${opt.learningRate} → ${s.finalLearningRate} (cosine)`;
    case 'step':
      return `${opt.learningRate}, ×${s.factor} every ${s.every.toLocaleString('en-US')} iterations (step)`;
  }
}

/** One line for logs and reports, e.g. `Adam, learning rate 2e-3 → 2e-5 (cosine), β₁ 0.9, β₂ 0.999, ε 1e-8`. */
export function describeOptimizer(opt: OptimizerConfig): string {
  const lr = `learning rate ${describeSchedule(opt)}`;
  switch (opt.type) {
    case 'adam':
      return `Adam, ${lr}, β₁ ${opt.beta1}, β₂ ${opt.beta2}, ε ${opt.epsilon}`;
    case 'sgd':
      return `SGD, ${lr}, ${opt.nesterov ? 'Nesterov ' : ''}momentum ${opt.momentum}`;
    case 'rmsprop':
      return `RMSProp, ${lr}, ρ ${opt.rho}, momentum ${opt.momentum}, ε ${opt.epsilon}`;
  }
}

/** `shift ±2 px`, `shift ±4 px, left-right flips`, or `none`. */
export function describeAugment(a: AugmentConfig): string {
  const parts = [...(a.shift > 0 ? [`shift ±${a.shift} px`] : []), ...(a.flip ? ['left-right flips'] : [])];
  if (a.rotate) parts.push(`rotation ±${a.rotate}°`);
  if (a.scale) parts.push(`scale ±${Math.round(a.scale * 100)}%`);
  if (a.elastic) parts.push(`elastic ±${a.elastic} px`);
  if (a.thickness) parts.push(`stroke thickness ±${a.thickness}`);
  return parts.length > 0 ? parts.join(', ') : 'none';
}
