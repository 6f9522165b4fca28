/** Config files: the presets as configs, every example, and a clear error for every way a config can be wrong. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError } from '../../src/errors.ts';
import { defaults, presets, weightSpecs } from '../../src/model/config.ts';
import { draftFromRun, loadRunConfigFile, parseAugmentFlag, parseRunConfig, resolveRunConfig, type DataShape } from '../../src/model/validate.ts';

const examples = fileURLToPath(new URL('../../examples/', import.meta.url));
const mnist: DataShape = { height: 28, width: 28, channels: 1, classes: 10, name: 'mnist' };
const cifar: DataShape = { height: 32, width: 32, channels: 3, classes: 10, name: 'cifar10:/data' };

function rejects(fn: () => unknown, code: string, message: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof UsageError, `expected a UsageError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.match(err.message, message);
    return true;
  });
}

const lessonNet = {
  conv: [
    { filters: 16, size: 5 },
    { filters: 36, size: 5 },
  ],
  dense: [{ units: 128 }, {}],
};
const resolve = (json: unknown, data = mnist) => resolveRunConfig(parseRunConfig(json, 'net.json'), data, 'net.json');

test('examples/seed.json and examples/default.json are exactly the two presets', async () => {
  for (const name of ['seed', 'default'] as const) {
    const run = resolveRunConfig(await loadRunConfigFile(join(examples, `${name}.json`)), mnist, name);
    assert.deepEqual(run, presets[name], name);
    // And a preset adapts to the data set only where it must: on MNIST it is unchanged.
    assert.deepEqual(resolveRunConfig(draftFromRun(presets[name]), mnist, name), presets[name]);
  }
});

test('every example config parses, and fits both MNIST (28x28x1) and CIFAR-10 (32x32x3)', async () => {
  const files = (await readdir(examples)).filter((f) => f.endsWith('.json'));
  assert.ok(files.length >= 10, `only ${files.length} examples`);
  for (const file of files) {
    const draft = await loadRunConfigFile(join(examples, file));
    assert.ok(draft.description, `${file} has no description`);
    for (const data of [mnist, cifar]) {
      const run = resolveRunConfig(draft, data, file);
      assert.deepEqual(run.network.input, { height: data.height, width: data.width, channels: data.channels });
      assert.equal(run.network.dense.at(-1)!.units, 10);
      assert.ok(weightSpecs(run.network).length >= 2);
    }
  }
});

test('defaults fill what a config leaves out; the output layer takes its units from the data set', () => {
  const run = resolve({ network: { conv: [{ filters: 8, size: 3 }], dense: [{ units: 32 }, {}] } }, { ...mnist, classes: 47, name: 'idx:/emnist' });
  assert.deepEqual(run.network.conv[0], {
    filters: 8,
    size: 3,
    stride: 1,
    padding: 'same',
    pool: 'max',
    poolSize: 2,
    activation: 'relu',
    order: 'pool-then-activation',
    dropout: 0,
  });
  assert.deepEqual(run.network.dense, [
    { units: 32, activation: 'relu', dropout: 0 },
    { units: 47, activation: 'linear', dropout: 0 },
  ]);
  assert.deepEqual(run.train, presets.default.train);
  // Naming another optimizer starts from its defaults; a missing schedule is cosine to 1/100 of the rate.
  const sgd = resolve({ network: lessonNet, train: { optimizer: { type: 'sgd', learningRate: 0.1 } } }).train.optimizer;
  assert.deepEqual(sgd, { type: 'sgd', learningRate: 0.1, schedule: { type: 'cosine', finalLearningRate: 0.001 }, momentum: 0.9, nesterov: false });
  const rms = resolve({ network: lessonNet, train: { optimizer: { type: 'rmsprop', schedule: { type: 'step', every: 100, factor: 0.5 } } } }).train.optimizer;
  assert.deepEqual(rms, { type: 'rmsprop', learningRate: 1e-3, schedule: { type: 'step', every: 100, factor: 0.5 }, rho: 0.9, momentum: 0, epsilon: 1e-7 });
});

test('shape errors name the block, the sizes and the fix', () => {
  // 28 → valid 5x5 → 24 → pool 4 → 6 → valid 5x5 → 2 → pool 2 → 1: the third 5x5 valid filter cannot fit.
  const tooDeep = {
    network: {
      conv: [
        { filters: 4, size: 5, padding: 'valid', poolSize: 4 },
        { filters: 4, size: 5, padding: 'valid' },
        { filters: 4, size: 5, padding: 'valid' },
      ],
      dense: [{}],
    },
  };
  rejects(
    () => resolve(tooDeep),
    'CONFIG_SHAPE',
    /^net\.json: conv block 3: the 1x1 input is smaller than the 5x5 filter with padding valid — use padding "same"/,
  );
  rejects(
    () =>
      resolve({
        network: {
          conv: [
            { filters: 4, size: 3, poolSize: 2 },
            { filters: 4, size: 3, poolSize: 16 },
          ],
          dense: [{}],
        },
      }),
    'CONFIG_SHAPE',
    /conv block 2: the 14x14 output of the convolution is smaller than the 16x16 max pool/,
  );
  rejects(
    () => resolve({ network: { ...lessonNet, dense: [{ units: 128 }, { units: 12 }] } }),
    'CONFIG_SHAPE',
    /dense layer 2 is the output layer and has 12 units, but mnist has 10 classes/,
  );
  rejects(
    () => resolve({ network: { ...lessonNet, input: { height: 28, width: 28, channels: 1 } } }, cifar),
    'CONFIG_SHAPE',
    /network\.input is 28x28x1 but cifar10:\/data has 32x32x3 images/,
  );
  rejects(
    () => resolve({ network: { conv: [{ filters: 4096, size: 5, pool: 'none' }], dense: [{ units: 4096 }, {}] } }),
    'CONFIG_SHAPE',
    /parameters, more than convlab builds/,
  );
});

test('field errors name the field, what it must be, and suggest the near miss', () => {
  const cases: [unknown, RegExp][] = [
    [{}, /needs a "network" object/],
    [
      { network: { conv: [{ filters: 16, size: 5, pool: 'maxx' }], dense: [{}] } },
      /conv block 1 \(network\.conv\[0\]\)\.pool must be "max", "avg" or "none", got "maxx" \(did you mean "max"\?\)/,
    ],
    [
      { network: { conv: [{ filter: 16, size: 5 }], dense: [{}] } },
      /conv block 1 \(network\.conv\[0\]\) has an unknown field "filter" \(did you mean "filters"\?\)/,
    ],
    [{ network: { conv: [{ size: 5 }], dense: [{}] } }, /conv block 1 \(network\.conv\[0\]\) needs "filters"/],
    [{ network: { conv: [{ filters: 2.5, size: 5 }], dense: [{}] } }, /\.filters must be a whole number ≥ 1, got 2\.5/],
    [{ network: { conv: [{ filters: 8, size: 5, dropout: 1 }], dense: [{}] } }, /\.dropout must be a number ≥ 0 and < 1, got 1/],
    [{ network: { conv: [{ filters: 8, size: 5, order: 'relu-first' }], dense: [{}] } }, /order must be "pool-then-activation" or "activation-then-pool"/],
    [{ network: { conv: [], dense: [{ activation: 'relu' }, {}] } }, /dense layer 1 \(network\.dense\[0\]\) needs "units"/],
    [{ network: { conv: [], dense: [] } }, /network\.dense is empty/],
    [{ network: { conv: [], dense: [{ units: 10, activation: 'softmax' }] } }, /activation must be "relu", "sigmoid", "tanh" or "linear", got "softmax"/],
    [{ network: lessonNet, train: { optimizer: { type: 'adam', momentum: 0.9 } } }, /train\.optimizer\.momentum is not a parameter of adam/],
    [{ network: lessonNet, train: { optimizer: { type: 'adagrad' } } }, /train\.optimizer\.type must be "adam", "sgd" or "rmsprop", got "adagrad"/],
    [{ network: lessonNet, train: { optimizer: { learningRate: -1 } } }, /learningRate must be a number > 0, got -1/],
    [{ network: lessonNet, train: { optimizer: { schedule: { type: 'step' } } } }, /schedule of type step needs "every"/],
    [
      { network: lessonNet, train: { optimizer: { schedule: { type: 'constant', finalLearningRate: 1 } } } },
      /finalLearningRate does not apply to a constant schedule/,
    ],
    [{ network: lessonNet, train: { augment: { shift: 2, flip: 'yes' } } }, /train\.augment\.flip must be true or false, got "yes"/],
    [{ network: lessonNet, train: { batchsize: 32 } }, /train has an unknown field "batchsize" \(did you mean "batchSize"\?\)/],
  ];
  for (const [json, message] of cases) rejects(() => parseRunConfig(json, 'net.json'), 'CONFIG_INVALID', message);
});

test('config files: a missing file and broken JSON are one clear error each; --augment flags', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'convlab-config-'));
  try {
    await assert.rejects(loadRunConfigFile(join(dir, 'nope.json')), /nope\.json: no such file/);
    await writeFile(join(dir, 'bad.json'), '{"network": ');
    await assert.rejects(loadRunConfigFile(join(dir, 'bad.json')), /bad\.json: not valid JSON/);
    // The config format is the one metrics.json records: a run's config can be fed back in.
    await writeFile(join(dir, 'again.json'), JSON.stringify(presets.default));
    assert.deepEqual(resolveRunConfig(await loadRunConfigFile(join(dir, 'again.json')), mnist, 'again'), presets.default);
    const readme = await readFile(fileURLToPath(new URL('../../README.md', import.meta.url)), 'utf8');
    // The README's full example writes out every field: it is a valid config, and resolving it adds nothing.
    const section = readme.split(/^## /m).find((s) => s.startsWith('Configuration\n'));
    assert.ok(section, 'README has no "## Configuration" section');
    const example = JSON.parse(/```json\n([\s\S]*?)\n```/.exec(section)![1]);
    assert.deepEqual(resolveRunConfig(parseRunConfig(example, 'README.md'), cifar, 'README.md'), example);
    // Its table of defaults states each optimizer's defaults as config.ts has them.
    const row = section.split('\n').find((l) => l.startsWith('| `train.optimizer.type`'));
    assert.ok(row, 'README has no row for train.optimizer.type');
    for (const [type, values] of Object.entries(defaults.optimizer)) {
      const stated: string = new RegExp(`\`"${type}"\` \\(([^)]*)\\)`).exec(row)![1];
      const pairs: Record<string, string> = Object.fromEntries(stated.split(', ').map((p: string) => /^`(\w+)` (\S+)$/.exec(p)!.slice(1)));
      const { type: _, ...rest } = values;
      const value = (v: string) => (v === 'true' ? true : v === 'false' ? false : Number(v));
      assert.deepEqual(Object.fromEntries(Object.entries(pairs).map(([k, v]) => [k, value(v)])), rest, `README: ${type} defaults`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  assert.deepEqual(parseAugmentFlag('shift=4,flip'), { shift: 4, flip: true });
  assert.deepEqual(parseAugmentFlag('none'), { shift: 0, flip: false });
  assert.deepEqual(parseAugmentFlag('shift=2,rotate=10,elastic=1'), { shift: 2, flip: false, rotate: 10, elastic: 1 });
  assert.throws(() => parseAugmentFlag('twist=10'), /"twist=10" is not an option; use shift=N/);
});
