/**
 * The network and training configuration: one typed object per concern, defaults in one place,
 * saved with every model (`model.json` user metadata) and every run (`metrics.json`).
 */

/** One convolutional block: conv (+ bias) → pool → activation, as in the lesson. */
export interface ConvBlockConfig {
  /** Number of filters (output channels). Lesson: 16, then 36. */
  filters: number;
  /** Square filter size in pixels. Lesson: 5. */
  size: number;
  /** Convolution stride. Lesson: 1. */
  stride: number;
  /** 'same' keeps the spatial size at stride 1; 'valid' shrinks it by size-1. Lesson: 'same'. */
  padding: 'same' | 'valid';
  /** Pooling after the convolution. Lesson: 'max'. */
  pool: 'max' | 'none';
  /** Pool window and stride. Lesson: 2. */
  poolSize: number;
  /** Non-linearity. Lesson: 'relu'. */
  activation: 'relu';
}

/** One fully connected layer. The last one's output is the logits (softmax is applied by the loss). */
export interface DenseLayerConfig {
  /** Output units. Lesson: 128, then 10 (the number of classes). */
  units: number;
  /** 'relu' for hidden layers, 'linear' for the logits layer. */
  activation: 'relu' | 'linear';
}

/** The architecture. */
export interface NetworkConfig {
  /** Input image shape, height x width x channels. MNIST: 28x28x1. */
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

/** How the network is trained. */
export interface TrainConfig {
  /** Images per step. Lesson: 64. */
  batchSize: number;
  /** Number of optimisation steps. Lesson: 10,000 at the end. */
  iterations: number;
  /** Adam's step size at iteration 0. Lesson: 1e-4. */
  learningRate: number;
  /** Learning-rate schedule: 'constant', or 'cosine' decay to `finalLearningRate` over all iterations. */
  schedule: 'constant' | 'cosine';
  /** Learning rate at the last iteration, for 'cosine'. */
  finalLearningRate: number;
  /** Adam's moment decay rates and epsilon (TensorFlow 1.x defaults, as the lesson used). */
  beta1: number;
  beta2: number;
  epsilon: number;
  /** Seed for initial weights and batch order. */
  seed: number;
  /** Log a line every this many iterations. */
  logEvery: number;
  /** Measure validation accuracy every this many iterations (0 = only at the end). */
  validateEvery: number;
}

export interface RunConfig {
  network: NetworkConfig;
  train: TrainConfig;
}

/** The lesson's network: conv 5x5x16 → pool → relu → conv 5x5x36 → pool → relu → fc 128 → fc 10. */
export const seedNetwork: NetworkConfig = {
  input: { height: 28, width: 28, channels: 1 },
  conv: [
    { filters: 16, size: 5, stride: 1, padding: 'same', pool: 'max', poolSize: 2, activation: 'relu' },
    { filters: 36, size: 5, stride: 1, padding: 'same', pool: 'max', poolSize: 2, activation: 'relu' },
  ],
  dense: [
    { units: 128, activation: 'relu' },
    { units: 10, activation: 'linear' },
  ],
  weightStddev: 0.05,
  biasInit: 0.05,
};

const lessonTrain: TrainConfig = {
  batchSize: 64,
  iterations: 10_000,
  learningRate: 1e-4,
  schedule: 'constant',
  finalLearningRate: 1e-4,
  beta1: 0.9,
  beta2: 0.999,
  epsilon: 1e-8,
  seed: 1,
  logEvery: 100,
  validateEvery: 1000,
};

export type PresetName = 'seed' | 'default';

/**
 * `seed`: exactly the lesson. `default`: the same network with a recipe measured to reach ≥ 99% test
 * accuracy quickly (see README, "Choosing the default recipe").
 */
export const presets: Record<PresetName, RunConfig> = {
  seed: { network: seedNetwork, train: lessonTrain },
  default: {
    network: seedNetwork,
    train: {
      ...lessonTrain,
      batchSize: 64,
      iterations: 3_500,
      learningRate: 2e-3,
      schedule: 'cosine',
      finalLearningRate: 2e-5,
      logEvery: 100,
      validateEvery: 1000,
    },
  },
};

export function isPresetName(name: string): name is PresetName {
  return name === 'seed' || name === 'default';
}

/** Spatial size after one conv block (TensorFlow's SAME/VALID rules, then SAME pooling). */
export function blockOutputSize(inSize: number, block: ConvBlockConfig): number {
  const afterConv =
    block.padding === 'same' ? Math.ceil(inSize / block.stride) : Math.ceil((inSize - block.size + 1) / block.stride);
  return block.pool === 'max' ? Math.ceil(afterConv / block.poolSize) : afterConv;
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
