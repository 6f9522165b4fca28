/**
 * Reading a run configuration from JSON (`convlab train --config net.json`, `model.json`, a checkpoint) and
 * checking it before any training starts. Two stages:
 *
 *   parseRunConfig(json)          fields, types and ranges; defaults for what is left out → RunDraft
 *   resolveRunConfig(draft, data) the input shape and class count from the data set, then every layer's
 *                                 shape ("conv block 3: the 1x1 input is smaller than the 5x5 filter…")
 *
 * Every problem is a UsageError (code CONFIG_INVALID or CONFIG_SHAPE) naming the file, the layer and the fix.
 */
import { readFile } from 'node:fs/promises';
import { UsageError, formatCount } from '../errors.ts';
import { Reader } from './reader.ts';
import {
  convOutputSize,
  defaults,
  presets,
  weightSpecs,
  type AugmentConfig,
  type ConvBlockConfig,
  type DenseLayerConfig,
  type NetworkConfig,
  type OptimizerConfig,
  type OptimizerType,
  type RunConfig,
  type ScheduleConfig,
  type TrainConfig,
} from './config.ts';

/** A network whose input shape and output units may still come from the data set. */
export interface NetworkDraft extends Omit<NetworkConfig, 'input' | 'dense'> {
  input?: NetworkConfig['input'];
  dense: (Omit<DenseLayerConfig, 'units'> & { units?: number })[];
}

export interface RunDraft {
  description?: string;
  network: NetworkDraft;
  train: TrainConfig;
}

/** What a data set tells the network: its image shape and how many classes it has. */
export interface DataShape {
  height: number;
  width: number;
  channels: number;
  classes: number;
  /** For messages, e.g. "mnist" or "cifar10:/data/cifar". */
  name: string;
}

/** The largest network convlab agrees to build (a typo like 16000 filters should not exhaust memory). */
const MAX_PARAMETERS = 50_000_000;

// ---------------------------------------------------------------------------------------------------------
// Stage 1: fields
// ---------------------------------------------------------------------------------------------------------

/** A preset as a draft: its input shape and class count adapt to the data set (on MNIST nothing changes). */
export function draftFromRun(run: RunConfig): RunDraft {
  const { input: _input, ...network } = run.network;
  const dense = network.dense.map((d, i) => (i === network.dense.length - 1 ? { activation: d.activation, dropout: d.dropout } : { ...d }));
  return { ...(run.description ? { description: run.description } : {}), network: { ...network, dense }, train: run.train };
}

/**
 * Checks a parsed JSON config (`{ "network": …, "train": … }`) field by field and fills in defaults:
 * network fields from `defaults`, training fields from the `default` preset, optimizer fields from
 * `defaults.optimizer[type]`. `source` (the file name) starts every message.
 */
export function parseRunConfig(value: unknown, source: string): RunDraft {
  const r = new Reader(source);
  const top = r.object(value, '', ['description', 'network', 'train']);
  const description = top.description === undefined ? undefined : r.string(top.description, 'description');
  if (top.network === undefined) throw r.fail('', 'needs a "network" object with "conv" and "dense" lists (see README, "Configuration")');
  const network = parseNetwork(r, top.network);
  const train = parseTrain(r, top.train ?? {});
  return { ...(description !== undefined ? { description } : {}), network, train };
}

function parseNetwork(r: Reader, value: unknown): NetworkDraft {
  const net = r.object(value, 'network', ['input', 'conv', 'dense', 'weightStddev', 'biasInit']);
  let input: NetworkConfig['input'] | undefined;
  if (net.input !== undefined) {
    const i = r.object(net.input, 'network.input', ['height', 'width', 'channels']);
    input = {
      height: r.int(i.height, 'network.input.height', 1),
      width: r.int(i.width, 'network.input.width', 1),
      channels: r.int(i.channels, 'network.input.channels', 1),
    };
  }
  const convList = net.conv === undefined ? [] : r.array(net.conv, 'network.conv');
  const conv = convList.map((b, k) => parseConvBlock(r, b, k));
  if (net.dense === undefined) throw r.fail('network', 'needs a "dense" list ending with the output layer, e.g. [{"units": 128}, {"activation": "linear"}]');
  const denseList = r.array(net.dense, 'network.dense');
  if (denseList.length === 0) throw r.fail('network.dense', 'is empty; it needs at least the output layer, e.g. [{"activation": "linear"}]');
  const dense = denseList.map((d, k) => parseDense(r, d, k, k === denseList.length - 1));
  return {
    ...(input ? { input } : {}),
    conv,
    dense,
    weightStddev: net.weightStddev === undefined ? defaults.weightStddev : r.number(net.weightStddev, 'network.weightStddev', { min: 0, exclusiveMin: true }),
    biasInit: net.biasInit === undefined ? defaults.biasInit : r.number(net.biasInit, 'network.biasInit'),
  };
}

function parseConvBlock(r: Reader, value: unknown, k: number): ConvBlockConfig {
  const at = `conv block ${k + 1} (network.conv[${k}])`;
  const b = r.object(value, at, ['filters', 'size', 'stride', 'padding', 'pool', 'poolSize', 'activation', 'order', 'dropout']);
  const d = defaults.convBlock;
  if (b.filters === undefined) throw r.fail(at, 'needs "filters" (how many feature maps, e.g. 16)');
  if (b.size === undefined) throw r.fail(at, 'needs "size" (the filter is size x size pixels, e.g. 5)');
  return {
    filters: r.int(b.filters, `${at}.filters`, 1),
    size: r.int(b.size, `${at}.size`, 1),
    stride: b.stride === undefined ? d.stride : r.int(b.stride, `${at}.stride`, 1),
    padding: b.padding === undefined ? d.padding : r.oneOf(b.padding, `${at}.padding`, ['same', 'valid'] as const),
    pool: b.pool === undefined ? d.pool : r.oneOf(b.pool, `${at}.pool`, ['max', 'avg', 'none'] as const),
    poolSize: b.poolSize === undefined ? d.poolSize : r.int(b.poolSize, `${at}.poolSize`, 1),
    activation: b.activation === undefined ? d.activation : r.oneOf(b.activation, `${at}.activation`, ['relu', 'sigmoid', 'tanh'] as const),
    order: b.order === undefined ? d.order : r.oneOf(b.order, `${at}.order`, ['pool-then-activation', 'activation-then-pool'] as const),
    dropout: b.dropout === undefined ? d.dropout : r.dropout(b.dropout, `${at}.dropout`),
  };
}

function parseDense(r: Reader, value: unknown, k: number, last: boolean): NetworkDraft['dense'][number] {
  const at = `dense layer ${k + 1} (network.dense[${k}])`;
  const d = r.object(value, at, ['units', 'activation', 'dropout']);
  if (d.units === undefined && !last) throw r.fail(at, 'needs "units" (only the output layer may leave it out: it has one unit per class)');
  const activation =
    d.activation === undefined
      ? last
        ? 'linear'
        : defaults.dense.activation
      : r.oneOf(d.activation, `${at}.activation`, ['relu', 'sigmoid', 'tanh', 'linear'] as const);
  return {
    ...(d.units !== undefined ? { units: r.int(d.units, `${at}.units`, 1) } : {}),
    activation,
    dropout: d.dropout === undefined ? defaults.dense.dropout : r.dropout(d.dropout, `${at}.dropout`),
  };
}

function parseTrain(r: Reader, value: unknown): TrainConfig {
  const base = presets.default.train;
  const t = r.object(value, 'train', ['batchSize', 'iterations', 'optimizer', 'augment', 'seed', 'logEvery', 'validateEvery']);
  return {
    batchSize: t.batchSize === undefined ? base.batchSize : r.int(t.batchSize, 'train.batchSize', 1),
    iterations: t.iterations === undefined ? base.iterations : r.int(t.iterations, 'train.iterations', 0),
    optimizer: t.optimizer === undefined ? base.optimizer : parseOptimizer(r, t.optimizer),
    augment: t.augment === undefined ? base.augment : parseAugment(r, t.augment),
    seed: t.seed === undefined ? base.seed : r.int(t.seed, 'train.seed', 0),
    logEvery: t.logEvery === undefined ? base.logEvery : r.int(t.logEvery, 'train.logEvery', 1),
    validateEvery: t.validateEvery === undefined ? base.validateEvery : r.int(t.validateEvery, 'train.validateEvery', 0),
  };
}

const OPTIMIZER_FIELDS: Record<OptimizerType, string[]> = {
  adam: ['beta1', 'beta2', 'epsilon'],
  sgd: ['momentum', 'nesterov'],
  rmsprop: ['rho', 'momentum', 'epsilon'],
};

export function parseOptimizer(r: Reader, value: unknown): OptimizerConfig {
  const raw = r.object(value, 'train.optimizer', ['type', 'learningRate', 'schedule', 'beta1', 'beta2', 'epsilon', 'momentum', 'nesterov', 'rho']);
  const type = raw.type === undefined ? 'adam' : r.oneOf(raw.type, 'train.optimizer.type', ['adam', 'sgd', 'rmsprop'] as const);
  const foreign = Object.keys(raw).find((k) => !['type', 'learningRate', 'schedule', ...OPTIMIZER_FIELDS[type]].includes(k));
  if (foreign !== undefined)
    throw r.fail(`train.optimizer.${foreign}`, `is not a parameter of ${type} (it takes learningRate, schedule, ${OPTIMIZER_FIELDS[type].join(', ')})`);
  const at = (k: string) => `train.optimizer.${k}`;
  const fraction = (k: string, fallback: number) => (raw[k] === undefined ? fallback : r.number(raw[k], at(k), { min: 0, max: 1, exclusiveMax: true }));
  const positive = (k: string, fallback: number) => (raw[k] === undefined ? fallback : r.number(raw[k], at(k), { min: 0, exclusiveMin: true }));
  const d = defaults.optimizer[type];
  const learningRate = positive('learningRate', d.learningRate);
  const schedule = raw.schedule === undefined ? cosineTo(learningRate) : parseSchedule(r, raw.schedule, learningRate);
  switch (type) {
    case 'adam': {
      const a = defaults.optimizer.adam;
      return { type, learningRate, schedule, beta1: fraction('beta1', a.beta1), beta2: fraction('beta2', a.beta2), epsilon: positive('epsilon', a.epsilon) };
    }
    case 'sgd': {
      const s = defaults.optimizer.sgd;
      const nesterov = raw.nesterov === undefined ? s.nesterov : r.boolean(raw.nesterov, at('nesterov'));
      return { type, learningRate, schedule, momentum: fraction('momentum', s.momentum), nesterov };
    }
    case 'rmsprop': {
      const p = defaults.optimizer.rmsprop;
      return { type, learningRate, schedule, rho: fraction('rho', p.rho), momentum: fraction('momentum', p.momentum), epsilon: positive('epsilon', p.epsilon) };
    }
  }
}

function cosineTo(learningRate: number): ScheduleConfig {
  return { type: 'cosine', finalLearningRate: learningRate * defaults.cosineFinalFraction };
}

function parseSchedule(r: Reader, value: unknown, learningRate: number): ScheduleConfig {
  const at = 'train.optimizer.schedule';
  const s = r.object(value, at, ['type', 'finalLearningRate', 'every', 'factor']);
  const type = r.oneOf(s.type, `${at}.type`, ['constant', 'cosine', 'step'] as const);
  const allowed: string[] = { constant: [], cosine: ['finalLearningRate'], step: ['every', 'factor'] }[type];
  const foreign = Object.keys(s).find((k) => k !== 'type' && !allowed.includes(k));
  if (foreign !== undefined) throw r.fail(`${at}.${foreign}`, `does not apply to a ${type} schedule`);
  switch (type) {
    case 'constant':
      return { type };
    case 'cosine':
      return s.finalLearningRate === undefined
        ? cosineTo(learningRate)
        : { type, finalLearningRate: r.number(s.finalLearningRate, `${at}.finalLearningRate`, { min: 0 }) };
    case 'step':
      if (s.every === undefined || s.factor === undefined) throw r.fail(at, 'of type step needs "every" (iterations) and "factor" (e.g. 0.5)');
      return { type, every: r.int(s.every, `${at}.every`, 1), factor: r.number(s.factor, `${at}.factor`, { min: 0, exclusiveMin: true }) };
  }
}

function parseAugment(r: Reader, value: unknown): AugmentConfig {
  const a = r.object(value, 'train.augment', ['shift', 'flip', 'rotate', 'scale', 'elastic', 'thickness']);
  const out: AugmentConfig = {
    shift: a.shift === undefined ? defaults.augment.shift : r.int(a.shift, 'train.augment.shift', 0),
    flip: a.flip === undefined ? defaults.augment.flip : r.boolean(a.flip, 'train.augment.flip'),
  };
  for (const k of ['rotate', 'scale', 'elastic', 'thickness'] as const) if (a[k] !== undefined) out[k] = r.number(a[k], `train.augment.${k}`, { min: 0 });
  return out;
}

/** Reads and checks a config file (`--config net.json`); every failure names the file. */
export async function loadRunConfigFile(file: string): Promise<RunDraft> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message;
    throw new UsageError('CONFIG_NOT_FOUND', `${file}: ${why} — pass the path of a config JSON file (see examples/)`, { cause: err });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new UsageError('CONFIG_INVALID', `${file}: not valid JSON (${(err as Error).message})`, { cause: err });
  }
  return parseRunConfig(json, file);
}

/** `--augment shift=2`, `--augment shift=4,flip`, `--augment none`. */
export function parseAugmentFlag(text: string): AugmentConfig {
  const out: AugmentConfig = { shift: 0, flip: false };
  if (text === 'none') return out;
  for (const part of text.split(',').map((p) => p.trim())) {
    const shift = /^shift=(\d+)$/.exec(part);
    const warp = /^(rotate|scale|elastic|thickness)=(\d+(?:\.\d+)?)$/.exec(part);
    if (shift) out.shift = Number(shift[1]);
    else if (warp) out[warp[1] as 'rotate' | 'scale' | 'elastic' | 'thickness'] = Number(warp[2]);
    else if (part === 'flip') out.flip = true;
    else
      throw new UsageError(
        'AUGMENT_SPEC',
        `--augment ${text}: "${part}" is not an option; use shift=N (pixels), flip, rotate=DEG, scale=F, elastic=PX, thickness=F, or none — e.g. shift=4,flip`,
      );
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Stage 2: shapes
// ---------------------------------------------------------------------------------------------------------

/** The draft made concrete for a data set, with every layer's shape checked. */
export function resolveRunConfig(draft: RunDraft, data: DataShape, source: string): RunConfig {
  const { height, width, channels, classes } = data;
  const given = draft.network.input;
  if (given && (given.height !== height || given.width !== width || given.channels !== channels)) {
    throw new UsageError(
      'CONFIG_SHAPE',
      `${source}: network.input is ${given.height}x${given.width}x${given.channels} but ${data.name} has ${height}x${width}x${channels} images — remove "input" (it is taken from the data set) or pick the matching --dataset`,
    );
  }
  const last = draft.network.dense.length - 1;
  const dense = draft.network.dense.map((d, i): DenseLayerConfig => {
    if (i < last) return d as DenseLayerConfig;
    if (d.units !== undefined && d.units !== classes) {
      throw new UsageError(
        'CONFIG_SHAPE',
        `${source}: dense layer ${i + 1} is the output layer and has ${d.units} units, but ${data.name} has ${classes} classes — set "units" to ${classes} or leave it out`,
      );
    }
    return { ...d, units: classes };
  });
  const network: NetworkConfig = { ...draft.network, input: { height, width, channels }, dense };
  checkShapes(network, source);
  return { ...(draft.description !== undefined ? { description: draft.description } : {}), network, train: draft.train };
}

/**
 * Walks the layers and throws CONFIG_SHAPE at the first that cannot work: a 'valid' filter larger than its
 * input, a pool window larger than the map it pools, a network too large to build.
 */
export function checkShapes(net: NetworkConfig, source: string): void {
  const fail = (message: string) => new UsageError('CONFIG_SHAPE', `${source}: ${message}`);
  let h = net.input.height;
  let w = net.input.width;
  net.conv.forEach((b, k) => {
    const block = `conv block ${k + 1}`;
    if (b.padding === 'valid' && (h < b.size || w < b.size)) {
      throw fail(
        `${block}: the ${h}x${w} input is smaller than the ${b.size}x${b.size} filter with padding valid — use padding "same", a smaller filter, or less pooling before it`,
      );
    }
    h = convOutputSize(h, b);
    w = convOutputSize(w, b);
    if (b.pool !== 'none' && (h < b.poolSize || w < b.poolSize)) {
      throw fail(
        `${block}: the ${h}x${w} output of the convolution is smaller than the ${b.poolSize}x${b.poolSize} ${b.pool} pool — set "pool": "none", a smaller "poolSize", or remove the block`,
      );
    }
    if (b.pool !== 'none') {
      h = Math.ceil(h / b.poolSize);
      w = Math.ceil(w / b.poolSize);
    }
  });
  const parameters = weightSpecs(net).reduce((n, s) => n + s.shape.reduce((a, c) => a * c, 1), 0);
  if (parameters > MAX_PARAMETERS) {
    throw fail(
      `the network has ${formatCount(parameters)} parameters, more than convlab builds (${formatCount(MAX_PARAMETERS)}) — use fewer filters or units, or pool more before the dense layers`,
    );
  }
}

/**
 * A network config saved with a model (model.json) or a checkpoint, read by the same rules as a config
 * file: every field present or defaulted as for a config file (models saved before `order` and `dropout`
 * existed get their defaults), the input shape and every layer's units given, every shape workable.
 */
export function parseSavedNetwork(value: unknown, source: string): NetworkConfig {
  const r = new Reader(source);
  const draft = parseNetwork(r, value);
  if (draft.input === undefined) throw r.fail('network', 'needs "input" {height, width, channels}');
  const missing = draft.dense.findIndex((d) => d.units === undefined);
  if (missing >= 0) throw r.fail(`dense layer ${missing + 1} (network.dense[${missing}])`, 'needs "units"');
  const net: NetworkConfig = { ...draft, input: draft.input, dense: draft.dense as DenseLayerConfig[] };
  checkShapes(net, source);
  return net;
}
