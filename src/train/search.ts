/**
 * Seeded random search over hyperparameters (`convlab search`). A search space maps config paths to
 * distributions:
 *
 *   { "train.optimizer.learningRate": { "logUniform": [3e-4, 1e-2] },
 *     "network.conv[0].filters":      { "choice": [8, 16, 32] },
 *     "network.dense[0].dropout":     { "uniform": [0, 0.5] } }
 *
 * Trial k's values are drawn from Rng.derive(seed, k), so a trial does not depend on the ones before it:
 * the search can stop at any moment and continue, or be extended with more trials, and get the same
 * answers. Each trial trains the base config with its values for `iterations` steps and is scored on the
 * validation split. After every trial, `search.json` is rewritten (atomically) with all finished trials;
 * the best model so far lives in `best/` (a normal run folder). At the end the best is tested once on the
 * test split, the only time the search looks at it.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BackendName } from '../backend.ts';
import { Rng } from '../data/rng.ts';
import type { DataSplits } from '../data/datasets.ts';
import type { RunConfig } from '../model/config.ts';
import { parseRunConfig, resolveRunConfig, type RunDraft } from '../model/validate.ts';
import { disposeParams, initParams, type Params } from '../model/cnn.ts';
import { saveModel } from '../model/checkpoint.ts';
import { loadParams } from '../model/load.ts';
import { ConvlabError, TrainingError, UsageError } from '../errors.ts';
import { evaluate } from '../eval/classify.ts';
import { train } from './loop.ts';
import { withEngine } from './engine.ts';
import { logInterval, withLearningRate } from './overrides.ts';
import { lockFolder } from './run.ts';
import { writeJsonAtomic } from '../atomic-write.ts';

/** Randomness stream of the search (the loop uses 1 and 2). */
const STREAM_SEARCH = 3;
export const SEARCH_FILE = 'search.json';
export const BEST_DIR = 'best';

export type Distribution =
  | { uniform: [number, number] }
  | { logUniform: [number, number] }
  /** Whole numbers from a to b inclusive. */
  | { int: [number, number] }
  /** Whole numbers from a to b, log-uniformly (as many 8..16 as 16..32). */
  | { logInt: [number, number] }
  | { choice: (number | string | boolean)[] };

/** Config path (`network.conv[0].filters`, `train.optimizer.learningRate`) → distribution. */
export type SearchSpace = Record<string, Distribution>;

export type ParamValue = number | string | boolean;

export interface TrialRecord {
  trial: number;
  params: Record<string, ParamValue>;
  /** 'diverged': the loss became NaN; 'invalid': the values make a config that cannot work (see `error`). */
  status: 'ok' | 'diverged' | 'invalid';
  /** Validation accuracy after training (null when the trial did not finish). */
  validationAccuracy: number | null;
  trainSeconds: number;
  error?: string;
}

export interface SearchSettings {
  seed: number;
  iterations: number;
  dataset: string;
  /** Where the base config came from (preset name or file). */
  baseSource: string;
  base: RunDraft;
  space: SearchSpace;
}

export interface SearchFile {
  version: 1;
  settings: SearchSettings;
  trials: TrialRecord[];
  best?: { trial: number; validationAccuracy: number; testAccuracy?: number; testCorrect?: number; testTotal?: number; model: string };
}

export interface SearchOptions {
  outDir: string;
  trials: number;
  settings: SearchSettings;
  data: DataSplits;
  backend: BackendName;
  workers: number;
  /** Polled after every training step: true abandons the current trial and stops. */
  shouldStop?: () => boolean;
}

export interface SearchHooks {
  /** Before the first trial: how many are already done (from an earlier, interrupted search). */
  onStart?(done: number, total: number): void;
  onTrialStart?(trial: number, total: number, params: Record<string, ParamValue>): void;
  /** After every trial, with all finished trials ranked best first. */
  onTrial?(record: TrialRecord, ranking: TrialRecord[], total: number): void;
}

export type SearchResult = { stopped: true; file: SearchFile } | { stopped: false; file: SearchFile; best: NonNullable<SearchFile['best']> | undefined };

// ---------------------------------------------------------------------------------------------------------
// The space
// ---------------------------------------------------------------------------------------------------------

/**
 * The default space around a base config: learning rate log-uniform over 3e-4..1e-2, each conv block's
 * filters and each hidden dense layer's units at half, the same or double the base, each hidden dense
 * layer's dropout uniform over 0..0.5.
 */
export function defaultSpace(base: RunDraft): SearchSpace {
  const space: SearchSpace = { 'train.optimizer.learningRate': { logUniform: [3e-4, 1e-2] } };
  base.network.conv.forEach((b, i) => {
    space[`network.conv[${i}].filters`] = { choice: [Math.max(1, Math.round(b.filters / 2)), b.filters, b.filters * 2] };
  });
  base.network.dense.slice(0, -1).forEach((d, i) => {
    const units = d.units ?? 128;
    space[`network.dense[${i}].units`] = { choice: [Math.max(1, Math.round(units / 2)), units, units * 2] };
    space[`network.dense[${i}].dropout`] = { uniform: [0, 0.5] };
  });
  return space;
}

/** Checks a space read from JSON; `source` names the file in messages. */
export function parseSpace(value: unknown, source: string, base: RunDraft): SearchSpace {
  const fail = (message: string) => new UsageError('SPACE_INVALID', `${source}: ${message}`);
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw fail('must be an object mapping config paths to distributions, e.g. {"train.optimizer.learningRate": {"logUniform": [1e-4, 1e-2]}}');
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length === 0) throw fail('is empty: name at least one config path to vary');
  const space: SearchSpace = {};
  for (const [path, d] of entries) {
    const at = `"${path}"`;
    if (typeof d !== 'object' || d === null || Array.isArray(d) || Object.keys(d).length !== 1) {
      throw fail(`${at} must be one of {"uniform": [a, b]}, {"logUniform": [a, b]}, {"int": [a, b]}, {"logInt": [a, b]}, {"choice": [...]}`);
    }
    const [kind, args] = Object.entries(d)[0];
    if (kind === 'choice') {
      if (!Array.isArray(args) || args.length === 0 || !args.every((a) => ['number', 'string', 'boolean'].includes(typeof a)))
        throw fail(`${at}: "choice" needs a non-empty list of numbers, strings or booleans`);
    } else if (['uniform', 'logUniform', 'int', 'logInt'].includes(kind)) {
      const ok = Array.isArray(args) && args.length === 2 && args.every((a) => typeof a === 'number' && Number.isFinite(a)) && args[0] <= args[1];
      if (!ok) throw fail(`${at}: "${kind}" needs [low, high] with low ≤ high`);
      if ((kind === 'logUniform' || kind === 'logInt') && args[0] <= 0) throw fail(`${at}: "${kind}" needs low > 0`);
      if ((kind === 'int' || kind === 'logInt') && !args.every(Number.isInteger)) throw fail(`${at}: "${kind}" needs whole numbers`);
    } else {
      throw fail(`${at}: unknown distribution "${kind}" (use uniform, logUniform, int, logInt or choice)`);
    }
    parsePath(path, source); // syntax
    if (!pathExists(base, path))
      throw fail(
        `${at} does not name a field of the base config (e.g. network.conv[0].filters, network.dense[0].dropout, train.optimizer.learningRate, train.batchSize)`,
      );
    space[path] = d as Distribution;
  }
  return space;
}

/** `network.conv[0].filters` → ['network', 'conv', 0, 'filters']. */
function parsePath(path: string, source: string): (string | number)[] {
  if (!/^[A-Za-z]\w*(\.[A-Za-z]\w*|\[\d+\])*$/.test(path))
    throw new UsageError('SPACE_INVALID', `${source}: "${path}" is not a config path like network.conv[0].filters`);
  return [...path.matchAll(/([A-Za-z]\w*)|\[(\d+)\]/g)].map((m) => (m[1] !== undefined ? m[1] : Number(m[2])));
}

function pathExists(base: RunDraft, path: string): boolean {
  const keys = parsePath(path, '');
  let node: unknown = base;
  for (const [i, key] of keys.entries()) {
    if (typeof node !== 'object' || node === null) return false;
    const last = i === keys.length - 1;
    // A field the base leaves to its default (e.g. a dense layer's dropout) may still be set.
    if (last) return !Array.isArray(node) || typeof key === 'number';
    node = (node as Record<string | number, unknown>)[key];
  }
  return true;
}

function setPath(target: unknown, path: string, value: ParamValue): void {
  const keys = parsePath(path, '');
  let node = target as Record<string | number, unknown>;
  for (const key of keys.slice(0, -1)) node = node[key] as Record<string | number, unknown>;
  node[keys[keys.length - 1]] = value;
}

/** Rounds to 3 significant digits so that tables and search.json stay readable. */
const round3 = (x: number) => Number(x.toPrecision(3));

function sample(d: Distribution, rng: Rng): ParamValue {
  if ('choice' in d) return d.choice[rng.int(d.choice.length)];
  if ('uniform' in d) return round3(d.uniform[0] + rng.next() * (d.uniform[1] - d.uniform[0]));
  if ('logUniform' in d) {
    const [lo, hi] = d.logUniform.map(Math.log);
    return round3(Math.exp(lo + rng.next() * (hi - lo)));
  }
  if ('int' in d) return d.int[0] + rng.int(d.int[1] - d.int[0] + 1);
  const [lo, hi] = [Math.log(d.logInt[0]), Math.log(d.logInt[1] + 1)];
  return Math.min(d.logInt[1], Math.floor(Math.exp(lo + rng.next() * (hi - lo))));
}

/** Trial `trial`'s values: depends only on (seed, trial), never on other trials. */
export function trialParams(space: SearchSpace, seed: number, trial: number): Record<string, ParamValue> {
  const rng = Rng.derive(seed, trial, STREAM_SEARCH);
  return Object.fromEntries(Object.entries(space).map(([path, d]) => [path, sample(d, rng)]));
}

/**
 * The base config with a trial's values set, checked like a config file and resolved for the data set.
 * A new learning rate scales a cosine schedule's final rate with it, as --learning-rate does (overrides.ts).
 */
export function trialConfig(settings: SearchSettings, params: Record<string, ParamValue>, data: DataSplits, trial: number): RunConfig {
  const draft = structuredClone(settings.base) as unknown as Record<string, unknown>;
  const train = draft.train as RunConfig['train'];
  const startRate = train.optimizer.learningRate;
  for (const [path, value] of Object.entries(params)) setPath(draft, path, value);
  const rate = train.optimizer.learningRate;
  if (rate !== startRate) train.optimizer = withLearningRate({ ...train.optimizer, learningRate: startRate }, rate);
  Object.assign(train, { iterations: settings.iterations, seed: settings.seed, logEvery: logInterval(settings.iterations), validateEvery: 0 });
  const source = `trial ${trial}`;
  return resolveRunConfig(parseRunConfig(draft, source), { ...data.train, classes: data.classes, name: data.name }, source);
}

/** Finished trials, best first (diverged trials last; ties by trial number). */
export function rank(trials: TrialRecord[]): TrialRecord[] {
  return [...trials].sort((a, b) => (b.validationAccuracy ?? -1) - (a.validationAccuracy ?? -1) || a.trial - b.trial);
}

// ---------------------------------------------------------------------------------------------------------
// Running it
// ---------------------------------------------------------------------------------------------------------

/** Reads `outDir/search.json` if there is one; refuses one made with other settings. */
export async function readSearchFile(outDir: string, settings: SearchSettings): Promise<SearchFile | undefined> {
  const file = join(outDir, SEARCH_FILE);
  if (!existsSync(file)) return undefined;
  let saved: SearchFile;
  try {
    saved = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new UsageError('SEARCH_CORRUPT', `${file}: unreadable (${(err as Error).message}); move it away to start a new search there`, { cause: err });
  }
  for (const key of Object.keys(settings) as (keyof SearchSettings)[]) {
    if (JSON.stringify(saved.settings?.[key]) !== JSON.stringify(settings[key])) {
      const shown = (v: unknown) => (typeof v === 'object' ? 'a different one' : JSON.stringify(v));
      throw new UsageError(
        'SEARCH_MISMATCH',
        `${file} was started with another ${key} (${shown(saved.settings?.[key])}, now ${shown(settings[key])}) — run it again with the same options to continue it, or choose another --out`,
      );
    }
  }
  return saved;
}

export async function runSearch(options: SearchOptions, hooks: SearchHooks = {}): Promise<SearchResult> {
  const { outDir, settings, data } = options;
  await mkdir(outDir, { recursive: true });
  const unlock = await lockFolder(outDir);
  try {
    const file: SearchFile = (await readSearchFile(outDir, settings)) ?? { version: 1, settings, trials: [] };
    const done = new Set(file.trials.map((t) => t.trial));
    hooks.onStart?.(file.trials.filter((t) => t.trial <= options.trials).length, options.trials);

    for (let k = 1; k <= options.trials; k++) {
      if (done.has(k)) continue;
      const params = trialParams(settings.space, settings.seed, k);
      hooks.onTrialStart?.(k, options.trials, params);
      const outcome = await runTrial(options, params, k);
      if (outcome === 'stopped') return { stopped: true, file };
      const { record, params: trained } = outcome;
      try {
        const best = file.best;
        if (record.validationAccuracy !== null && (best === undefined || record.validationAccuracy > best.validationAccuracy)) {
          // The model first, then search.json: a crash in between only repeats this (deterministic) trial.
          await saveBest(options, trained!, record);
          file.best = { trial: k, validationAccuracy: record.validationAccuracy, model: BEST_DIR };
        }
      } finally {
        if (trained) disposeParams(trained);
      }
      file.trials = [...file.trials, record].sort((a, b) => a.trial - b.trial);
      await writeJsonAtomic(join(outDir, SEARCH_FILE), file);
      hooks.onTrial?.(record, rank(file.trials), options.trials);
    }

    // --- the best, tested once
    const best = file.best;
    if (best !== undefined && best.testAccuracy === undefined) {
      const tested = await testBest(options, file, best.trial);
      file.best = { ...best, ...tested };
      await writeJsonAtomic(join(outDir, SEARCH_FILE), file);
    }
    return { stopped: false, file, best: file.best };
  } finally {
    await unlock();
  }
}

type TrialOutcome = 'stopped' | { record: TrialRecord; params?: Params };

async function runTrial(options: SearchOptions, params: Record<string, ParamValue>, k: number): Promise<TrialOutcome> {
  let run: RunConfig;
  try {
    run = trialConfig(options.settings, params, options.data, k);
  } catch (err) {
    // e.g. more pooling than the image has pixels: a point of the space that cannot be trained.
    if (err instanceof UsageError) return { record: { trial: k, params, status: 'invalid', validationAccuracy: null, trainSeconds: 0, error: err.message } };
    throw err;
  }
  const weights = initParams(run.network, new Rng(run.train.seed));
  try {
    const data = { train: options.data.train, validation: options.data.validation };
    const result = await withEngine(run.network, options, (engine) => train(run, weights, data, {}, { engine, shouldStop: options.shouldStop }));
    if (result.stopped) {
      disposeParams(weights);
      return 'stopped';
    }
    const record: TrialRecord = { trial: k, params, status: 'ok', validationAccuracy: result.validation.accuracy, trainSeconds: round3(result.trainSeconds) };
    return { record, params: weights };
  } catch (err) {
    disposeParams(weights);
    if (err instanceof TrainingError && err.code === 'LOSS_NOT_FINITE') {
      return { record: { trial: k, params, status: 'diverged', validationAccuracy: null, trainSeconds: 0 } };
    }
    throw err;
  }
}

async function saveBest(options: SearchOptions, params: Params, record: TrialRecord): Promise<void> {
  const run = trialConfig(options.settings, record.params, options.data, record.trial);
  await saveModel(join(options.outDir, BEST_DIR), run.network, params, {
    train: run.train,
    dataset: options.data.name,
    search: { trial: record.trial, params: record.params, validationAccuracy: record.validationAccuracy },
  });
}

/** Evaluates best/ on the test split and writes best/metrics.json. Retrains the trial if best/ is stale. */
async function testBest(options: SearchOptions, file: SearchFile, trial: number) {
  const dir = join(options.outDir, BEST_DIR);
  const record = file.trials.find((t) => t.trial === trial)!;
  const run = trialConfig(options.settings, record.params, options.data, trial);
  let model = existsSync(join(dir, 'model.json')) ? await loadParams(dir).catch(() => undefined) : undefined;
  if (model && (model.metadata.search as { trial?: number } | undefined)?.trial !== trial) {
    disposeParams(model.params);
    model = undefined;
  }
  if (model === undefined) {
    const outcome = await runTrial({ ...options, shouldStop: undefined }, record.params, trial);
    if (outcome === 'stopped' || outcome.params === undefined)
      throw new ConvlabError('SEARCH_BEST', `trial ${trial} could not be retrained for testing`, { exitCode: 1 });
    await saveBest(options, outcome.params, record);
    disposeParams(outcome.params);
    model = await loadParams(dir);
  }
  try {
    const test = evaluate(model.net, model.params, options.data.test);
    await writeJsonAtomic(join(dir, 'metrics.json'), {
      testAccuracy: test.accuracy,
      testCorrect: test.correct,
      testTotal: test.total,
      validationAccuracy: record.validationAccuracy,
      iterations: run.train.iterations,
      trainSeconds: record.trainSeconds,
      seed: run.train.seed,
      backend: options.backend,
      preset: `search trial ${trial}`,
      dataset: options.data.name,
      config: run,
      search: { trial, params: record.params },
      confusionMatrix: test.confusion,
      createdAt: new Date().toISOString(),
    });
    return { testAccuracy: test.accuracy, testCorrect: test.correct, testTotal: test.total };
  } finally {
    disposeParams(model.params);
  }
}
