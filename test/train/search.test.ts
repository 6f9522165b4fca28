/**
 * train/search.ts: the pure parts (sampling, configs, ranking, refusing another search's file) against their
 * definitions, and runSearch itself on a small digit set: stopped half-way then run again, a stale or missing
 * best/, invalid and diverged trials. The reference for "continuing" is an uninterrupted search with the same
 * settings: its search.json must come out the same, field for field (wall-clock seconds aside).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { useBackend } from '../../src/backend.ts';
import { loadMnist, subset } from '../../src/data/mnist.ts';
import type { DataSplits } from '../../src/data/datasets.ts';
import { loadRunConfigFile, type RunDraft } from '../../src/model/validate.ts';
import { UsageError } from '../../src/errors.ts';
import {
  parseSpace,
  rank,
  readSearchFile,
  runSearch,
  trialConfig,
  trialParams,
  type SearchFile,
  type SearchSettings,
  type SearchSpace,
  type TrialRecord,
} from '../../src/train/search.ts';

let dir: string;
let data: DataSplits;
let base: RunDraft;

before(async () => {
  await useBackend('wasm');
  const mnist = await loadMnist();
  data = { train: subset(mnist.train, 0, 400), validation: subset(mnist.validation, 0, 200), test: subset(mnist.test, 0, 200), classes: 10, name: 'mnist' };
  base = await loadRunConfigFile(fileURLToPath(new URL('../../examples/smallest.json', import.meta.url)));
  dir = await mkdtemp(join(tmpdir(), 'convlab-search-'));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------------------
// Pure parts
// ---------------------------------------------------------------------------------------------------------

test('trialParams: each distribution stays in its range, whole numbers where asked, and depends only on (seed, trial)', () => {
  const space: SearchSpace = {
    'train.optimizer.learningRate': { logUniform: [1e-4, 1e-2] },
    'network.dense[0].dropout': { uniform: [0.1, 0.3] },
    'network.conv[0].filters': { int: [2, 4] },
    'network.conv[1].filters': { logInt: [8, 31] },
    'network.conv[0].pool': { choice: ['max', 'avg'] },
  };
  const n = 3000;
  const draws = Array.from({ length: n }, (_, k) => trialParams(space, 5, k + 1));
  const column = (p: string) => draws.map((d) => d[p] as number);
  assert.ok(column('train.optimizer.learningRate').every((v) => v >= 1e-4 && v <= 1e-2));
  assert.ok(column('network.dense[0].dropout').every((v) => v >= 0.1 && v <= 0.3));
  assert.deepEqual(new Set(column('network.conv[0].filters')), new Set([2, 3, 4]), 'int: every whole number from low to high, both included');
  const logInt = column('network.conv[1].filters');
  assert.ok(logInt.every((v) => Number.isInteger(v) && v >= 8 && v <= 31));
  // logInt: [8, 16) and [16, 32) are equally likely (each half of log(8)..log(32)).
  const low = logInt.filter((v) => v < 16).length;
  assert.ok(Math.abs(low - n / 2) < 5 * Math.sqrt(n / 4), `logInt 8..31: ${low} of ${n} below 16`);
  // logUniform: half the draws below the geometric mean 1e-3.
  const below = column('train.optimizer.learningRate').filter((v) => v < 1e-3).length;
  assert.ok(Math.abs(below - n / 2) < 5 * Math.sqrt(n / 4), `logUniform 1e-4..1e-2: ${below} of ${n} below 1e-3`);
  assert.deepEqual(new Set(draws.map((d) => d['network.conv[0].pool'])), new Set(['max', 'avg']));
  // Trial 7's values are the same whatever else was drawn, and another seed draws others.
  assert.deepEqual(trialParams(space, 5, 7), draws[6]);
  assert.notDeepEqual(trialParams(space, 6, 7), draws[6]);
});

test('parseSpace refuses what it cannot sample, with the path in the message', () => {
  const bad: [unknown, RegExp][] = [
    [[], /must be an object/],
    [{}, /is empty/],
    [{ 'train.optimizer.learningRate': { logUniform: [0, 1] } }, /"logUniform" needs low > 0/],
    [{ 'train.optimizer.learningRate': { uniform: [2, 1] } }, /"uniform" needs \[low, high\] with low ≤ high/],
    [{ 'network.conv[0].filters': { int: [1.5, 4] } }, /"int" needs whole numbers/],
    [{ 'network.conv[0].filters': { choice: [] } }, /"choice" needs a non-empty list/],
    [{ 'network.conv[0].filters': { normal: [0, 1] } }, /unknown distribution "normal"/],
    [{ 'network.conv[5].filters': { choice: [1] } }, /"network\.conv\[5\]\.filters" does not name a field of the base config/],
    [{ 'network..x': { choice: [1] } }, /is not a config path/],
  ];
  for (const [json, message] of bad) {
    assert.throws(
      () => parseSpace(json, 'space.json', base),
      (err: unknown) => err instanceof UsageError && err.code === 'SPACE_INVALID' && message.test(err.message) && err.message.startsWith('space.json: '),
    );
  }
});

test("trialConfig: the values are set, iterations and seed are the search's, a cosine final rate scales with the learning rate", () => {
  const settings: SearchSettings = { seed: 9, iterations: 40, dataset: 'mnist', baseSource: 'smallest.json', base, space: {} };
  const withCosine = {
    ...settings,
    base: {
      ...base,
      train: { ...base.train, optimizer: { ...base.train.optimizer, learningRate: 2e-3, schedule: { type: 'cosine' as const, finalLearningRate: 2e-5 } } },
    },
  };
  const run = trialConfig(withCosine, { 'train.optimizer.learningRate': 4e-3, 'network.conv[0].filters': 3 }, data, 2);
  assert.equal(run.network.conv[0].filters, 3);
  assert.equal(run.train.optimizer.learningRate, 4e-3);
  assert.deepEqual(run.train.optimizer.schedule, { type: 'cosine', finalLearningRate: 4e-5 });
  assert.deepEqual([run.train.iterations, run.train.seed, run.train.logEvery, run.train.validateEvery], [40, 9, 4, 0]);
  assert.throws(() => trialConfig(settings, { 'network.conv[0].pool': 'maxx' }, data, 3), /trial 3: .*pool must be "max", "avg" or "none"/);
});

test('rank: best validation accuracy first, ties by trial number, trials without an accuracy (invalid, diverged) last', () => {
  const t = (trial: number, status: TrialRecord['status'], validationAccuracy: number | null): TrialRecord => ({
    trial,
    params: {},
    status,
    validationAccuracy,
    trainSeconds: 0,
  });
  const trials = [t(1, 'diverged', null), t(2, 'ok', 0.5), t(3, 'invalid', null), t(4, 'ok', 0.9), t(5, 'ok', 0.5), t(6, 'ok', 0)];
  assert.deepEqual(
    rank(trials).map((r) => r.trial),
    [4, 2, 5, 6, 1, 3],
  );
  assert.deepEqual(
    trials.map((r) => r.trial),
    [1, 2, 3, 4, 5, 6],
    'rank must not reorder its input',
  );
});

test('readSearchFile refuses a file made with another seed, iterations, data set, base config or space, and an unreadable one', async () => {
  const folder = join(dir, 'refuse');
  const settings: SearchSettings = {
    seed: 1,
    iterations: 20,
    dataset: 'mnist',
    baseSource: 'smallest.json',
    base,
    space: { 'network.conv[0].filters': { choice: [2, 4] } },
  };
  const { mkdir } = await import('node:fs/promises');
  await mkdir(folder, { recursive: true });
  const file: SearchFile = { version: 1, settings, trials: [] };
  writeFileSync(join(folder, 'search.json'), JSON.stringify(file));
  assert.deepEqual(await readSearchFile(folder, structuredClone(settings)), file);
  const changed: [Partial<SearchSettings>, RegExp][] = [
    [{ seed: 2 }, /another seed \(1, now 2\)/],
    [{ iterations: 21 }, /another iterations \(20, now 21\)/],
    [{ dataset: 'idx:/elsewhere' }, /another dataset \("mnist", now "idx:\/elsewhere"\)/],
    [
      { base: { ...base, network: { ...base.network, conv: [{ ...base.network.conv[0], filters: 5 }, base.network.conv[1]] } } },
      /another base \(a different one/,
    ],
    [{ space: { 'network.conv[0].filters': { choice: [2, 8] } } }, /another space \(a different one/],
  ];
  for (const [change, message] of changed) {
    await assert.rejects(
      readSearchFile(folder, { ...settings, ...change }),
      (err: unknown) => err instanceof UsageError && err.code === 'SEARCH_MISMATCH' && message.test(err.message),
    );
  }
  writeFileSync(join(folder, 'search.json'), '{"version": 1, "settings": ');
  await assert.rejects(readSearchFile(folder, settings), (err: unknown) => err instanceof UsageError && err.code === 'SEARCH_CORRUPT');
});

// ---------------------------------------------------------------------------------------------------------
// runSearch
// ---------------------------------------------------------------------------------------------------------

/** Learning rates that train, one that diverges at once; a pooling name that is no config (invalid). */
const space: SearchSpace = {
  'train.optimizer.learningRate': { choice: [3e-3, 1e-2, 1e30] },
  'network.conv[0].pool': { choice: ['max', 'max', 'maxx'] },
};
const TRIALS = 6;

/** A search seed whose first TRIALS trials hold at least two trainable, one diverging and one invalid trial. */
function mixedSeed(): number {
  for (let seed = 1; ; seed++) {
    const trials = Array.from({ length: TRIALS }, (_, k) => trialParams(space, seed, k + 1));
    const invalid = trials.filter((p) => p['network.conv[0].pool'] === 'maxx');
    const ok = trials.filter((p) => p['network.conv[0].pool'] !== 'maxx');
    if (
      invalid.length >= 1 &&
      ok.filter((p) => p['train.optimizer.learningRate'] === 1e30).length >= 1 &&
      ok.filter((p) => p['train.optimizer.learningRate'] !== 1e30).length >= 2
    )
      return seed;
  }
}

let settings: SearchSettings;
let reference: SearchFile;
let referenceDir: string;

/** search.json without wall-clock seconds, which no two runs share. */
function timeless(file: SearchFile): unknown {
  return { ...file, trials: file.trials.map(({ trainSeconds: _, ...t }) => t) };
}
const readFile = (folder: string): SearchFile => JSON.parse(readFileSync(join(folder, 'search.json'), 'utf8'));
const search = (outDir: string, shouldStop?: () => boolean) => runSearch({ outDir, trials: TRIALS, settings, data, backend: 'wasm', workers: 0, shouldStop });

test('an uninterrupted search: ok, diverged and invalid trials recorded and ranked, the best tested once', async () => {
  settings = { seed: mixedSeed(), iterations: 25, dataset: data.name, baseSource: 'smallest.json', base, space };
  referenceDir = join(dir, 'reference');
  const result = await search(referenceDir);
  assert.equal(result.stopped, false);
  reference = readFile(referenceDir);
  assert.deepEqual(timeless(result.file), timeless(reference));
  assert.deepEqual(
    reference.trials.map((t) => t.trial),
    [1, 2, 3, 4, 5, 6],
  );
  for (const t of reference.trials) {
    const expected = t.params['network.conv[0].pool'] === 'maxx' ? 'invalid' : t.params['train.optimizer.learningRate'] === 1e30 ? 'diverged' : 'ok';
    assert.equal(t.status, expected, `trial ${t.trial} (${JSON.stringify(t.params)})`);
    assert.equal(t.validationAccuracy === null, expected !== 'ok');
    if (expected === 'invalid') assert.match(t.error!, /pool must be "max", "avg" or "none"/);
  }
  const ranked = rank(reference.trials);
  const best = ranked[0];
  assert.equal(best.status, 'ok');
  assert.equal(reference.best!.trial, best.trial);
  assert.equal(reference.best!.validationAccuracy, best.validationAccuracy);
  // Tested on the test split, and best/ holds that trial.
  const metrics = JSON.parse(readFileSync(join(referenceDir, 'best', 'metrics.json'), 'utf8'));
  assert.equal(metrics.testAccuracy, reference.best!.testAccuracy);
  assert.equal(metrics.testTotal, 200);
  assert.equal(JSON.parse(readFileSync(join(referenceDir, 'best', 'model.json'), 'utf8')).userDefinedMetadata.convlab.search.trial, best.trial);
});

test('stopped in the middle of a trial, then run again: the same search.json and best/ as the uninterrupted search', async () => {
  const out = join(dir, 'stopped');
  // Stop after 60 training steps over all trials: in the middle of the third trial that trains.
  let steps = 0;
  const first = await search(out, () => ++steps > 60);
  assert.equal(first.stopped, true);
  const partial = readFile(out);
  assert.ok(partial.trials.length >= 2 && partial.trials.length < TRIALS, `${partial.trials.length} trials finished before the stop`);
  assert.equal(partial.best?.testAccuracy, undefined, 'a stopped search must not test its best yet');
  assert.deepEqual(
    timeless({ ...partial, best: undefined }),
    timeless({ ...reference, best: undefined, trials: reference.trials.slice(0, partial.trials.length) }),
  );

  const again = await search(out);
  assert.equal(again.stopped, false);
  assert.deepEqual(timeless(readFile(out)), timeless(reference));
  assert.deepEqual(readFileSync(join(out, 'best', 'weights.bin')), readFileSync(join(referenceDir, 'best', 'weights.bin')));
});

test("a stale best/ (another trial's model) or a missing one is retrained before the test, not tested as it is", async () => {
  for (const damage of ['stale', 'missing'] as const) {
    const out = join(dir, `best-${damage}`);
    cpSync(referenceDir, out, { recursive: true });
    // As a crash would leave it: the best is known but not tested yet.
    const file = readFile(out);
    const { testAccuracy: _a, testCorrect: _c, testTotal: _t, ...untested } = file.best!;
    writeFileSync(join(out, 'search.json'), JSON.stringify({ ...file, best: untested }));
    if (damage === 'missing') rmSync(join(out, 'best'), { recursive: true });
    else {
      // best/ claims to be another trial, with its weights zeroed: testing it as it is would be wrong.
      const modelJson = join(out, 'best', 'model.json');
      const model = JSON.parse(readFileSync(modelJson, 'utf8'));
      model.userDefinedMetadata.convlab.search.trial = file.best!.trial + 1;
      writeFileSync(modelJson, JSON.stringify(model));
      writeFileSync(join(out, 'best', 'weights.bin'), Buffer.alloc(readFileSync(join(out, 'best', 'weights.bin')).length));
    }
    const result = await search(out);
    assert.equal(result.stopped, false);
    assert.deepEqual(timeless(readFile(out)), timeless(reference), `${damage} best/`);
    assert.deepEqual(readFileSync(join(out, 'best', 'weights.bin')), readFileSync(join(referenceDir, 'best', 'weights.bin')), `${damage} best/: weights`);
  }
});
