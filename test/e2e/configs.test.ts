/**
 * Configs, data sets and search as a user runs them: `--config`, `--dataset idx:DIR`, `--augment`,
 * SIGKILL + `--resume` with dropout and RMSProp, evaluate/visualize on the recorded data set, and
 * `convlab search` (ranked table, search.json, continuing, Ctrl-C, the best model tested).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { convlab, exited, start, waitFor } from '../helpers/cli.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadMnist, subset } from '../../src/data/mnist.ts';
import { writeIdxDataset } from '../helpers/datasets.ts';

const examples = fileURLToPath(new URL('../../examples/', import.meta.url));
let dir: string;
let digits: string;

function assertOneLineError(r: ReturnType<typeof convlab>, pattern: RegExp) {
  assert.notEqual(r.code, 0, `expected a non-zero exit; stdout: ${r.stdout}`);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `expected one line on stderr, got:\n${r.stderr}`);
  assert.match(lines[0], pattern);
}

const json = (path: string) => JSON.parse(readFileSync(path, 'utf8'));

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'convlab-configs-'));
  // A small IDX data set cut from MNIST: 2,000 training images (200 of them validation), 500 test images.
  const mnist = await loadMnist();
  digits = join(dir, 'digits');
  await writeIdxDataset(digits, subset(mnist.train, 0, 2000), subset(mnist.test, 0, 500));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('a config that cannot work is refused before training, in one line', async () => {
  const bad = join(dir, 'too-deep.json');
  await writeFile(
    bad,
    JSON.stringify({
      network: {
        conv: [
          { filters: 4, size: 5, padding: 'valid', poolSize: 4 },
          { filters: 4, size: 5, padding: 'valid' },
          { filters: 4, size: 5, padding: 'valid' },
        ],
        dense: [{}],
      },
    }),
  );
  assertOneLineError(
    convlab('train', '--config', bad, '--out', join(dir, 'never')),
    /too-deep\.json: conv block 3: the 1x1 input is smaller than the 5x5 filter with padding valid/,
  );
  assert.ok(!existsSync(join(dir, 'never')), 'nothing may be written for a refused config');
  assertOneLineError(convlab('train', '--config', bad, '--preset', 'seed'), /--config.*cannot be used with.*--preset|--preset.*cannot be used with.*--config/);
  assertOneLineError(convlab('train', '--config', join(dir, 'absent.json')), /absent\.json: no such file/);
  assertOneLineError(convlab('train', '--dataset', `cifar10:${digits}`, '--iterations', '1'), /missing data_batch_1\.bin.*test_batch\.bin/);
  assertOneLineError(convlab('train', '--dataset', 'imagenet', '--iterations', '1'), /--dataset imagenet: expected mnist, idx:DIR/);
  assertOneLineError(convlab('train', '--augment', 'twist=5', '--iterations', '1'), /"twist=5" is not an option/);
});

test('--config + --dataset idx:DIR + --augment: SIGKILL, --resume, byte-identical; evaluate and visualize use the recorded data set', async () => {
  const config = join(dir, 'regularised.json');
  await writeFile(
    config,
    JSON.stringify({
      description: 'dropout, tanh, average pooling, RMSProp',
      network: {
        conv: [
          { filters: 8, size: 5, pool: 'avg', activation: 'tanh', order: 'activation-then-pool' },
          { filters: 16, size: 5, dropout: 0.1 },
        ],
        dense: [{ units: 64, dropout: 0.5 }, {}],
      },
      train: { batchSize: 32, optimizer: { type: 'rmsprop', learningRate: 0.002, momentum: 0.5 } },
    }),
  );
  const base = [
    'train',
    '--config',
    config,
    '--dataset',
    `idx:${digits}`,
    '--augment',
    'shift=2',
    '--iterations',
    '60',
    '--checkpoint-every',
    '5',
    '--workers',
    '2',
    '--log-every',
    '10',
  ];
  const reference = join(dir, 'reference');
  const r = convlab(...base, '--no-report', '--out', reference);
  assert.equal(r.code, 0, r.stderr);
  assert.match(
    r.stdout,
    /convlab train: .*regularised\.json, idx:.*digits, 60 iterations of 32 images, RMSProp, learning rate 0\.002 → 0\.00002 \(cosine\), ρ 0\.9, momentum 0\.5, ε 1e-7, augmentation shift ±2 px/,
  );
  assert.match(r.stdout, /^Accuracy on test set: [\d.]+% \(\d+ \/ 500\)$/m);
  const metrics = json(join(reference, 'metrics.json'));
  assert.equal(metrics.dataset, `idx:${digits}`);
  assert.equal(metrics.preset, config);
  assert.equal(metrics.testTotal, 500);
  assert.deepEqual(metrics.config.network.input, { height: 28, width: 28, channels: 1 });
  assert.equal(metrics.config.train.augment.shift, 2);
  assert.ok(metrics.testAccuracy > 0.5, `60 steps should pass 50%, got ${metrics.testAccuracy}`);
  const model = json(join(reference, 'model.json'));
  assert.deepEqual(
    model.modelTopology.config.layers.map((l: { class_name: string }) => l.class_name),
    ['Conv2D', 'Activation', 'AveragePooling2D', 'Conv2D', 'MaxPooling2D', 'Activation', 'Dropout', 'Flatten', 'Dense', 'Dropout', 'Dense'],
  );
  assert.equal(model.userDefinedMetadata.convlab.dataset, `idx:${digits}`);

  const killed = join(dir, 'killed');
  const child = start(...base, '--no-report', '--out', killed);
  await waitFor(join(killed, 'checkpoint.bin'));
  await sleep(200);
  child.kill('SIGKILL');
  await exited(child);
  assert.ok(!existsSync(join(killed, 'weights.bin')), 'the killed run should not have finished');
  const resumed = convlab('train', '--resume', killed, '--no-report');
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.deepEqual(readFileSync(join(killed, 'weights.bin')), readFileSync(join(reference, 'weights.bin')));
  assertOneLineError(
    convlab('train', '--resume', killed, '--dataset', 'mnist'),
    /--resume continues the saved run exactly as it was configured; drop --dataset/,
  );

  // evaluate and visualize find the data set in model.json.
  const evaluated = convlab('evaluate', '--model', reference);
  assert.equal(evaluated.code, 0, evaluated.stderr);
  assert.match(evaluated.stdout, new RegExp(`^Accuracy on test set: [\\d.]+% \\(${metrics.testCorrect} / 500\\)$`, 'm'));
  const drawn = convlab('visualize', '--model', reference);
  assert.equal(drawn.code, 0, drawn.stderr);
  assert.match(drawn.stdout, /wrote .*report\.html \(11 figures/);
  const html = readFileSync(join(reference, 'report.html'), 'utf8');
  assert.match(html, /RMSProp/);
  assert.match(html, /average-pool/);
});

test('search: ranked table after each trial, search.json, continuing with more trials, Ctrl-C, the best tested', async () => {
  const space = join(dir, 'space.json');
  await writeFile(
    space,
    JSON.stringify({
      'train.optimizer.learningRate': { logUniform: [1e-3, 2e-2] },
      'network.conv[0].filters': { choice: [2, 4] },
      'train.batchSize': { choice: [16, 32] },
    }),
  );
  const args = (out: string, trials: number, iterations = 150) => [
    'search',
    '--config',
    join(examples, 'smallest.json'),
    '--dataset',
    `idx:${digits}`,
    '--space',
    space,
    '--trials',
    String(trials),
    '--iterations',
    String(iterations),
    '--seed',
    '3',
    '--workers',
    '0',
    '--out',
    out,
  ];
  const out = join(dir, 'search');
  const first = convlab(...args(out, 2));
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stdout, /^rank \| trial \| val acc \| seconds \| lr +\| conv1\.filters \| batchSize$/m);
  assert.match(first.stdout, /^trial 2\/2: validation [\d.]+% in [\d.]+ s$/m);
  assert.match(first.stdout, /^Accuracy on test set: [\d.]+% \(\d+ \/ 500\)$/m);
  const two = json(join(out, 'search.json'));
  assert.deepEqual(
    two.trials.map((t: { trial: number }) => t.trial),
    [1, 2],
  );
  for (const t of two.trials) {
    assert.ok(t.params['train.optimizer.learningRate'] >= 1e-3 && t.params['train.optimizer.learningRate'] <= 2e-2);
    assert.ok([2, 4].includes(t.params['network.conv[0].filters']));
  }
  const best = two.trials.reduce((a: { validationAccuracy: number }, b: { validationAccuracy: number }) =>
    b.validationAccuracy > a.validationAccuracy ? b : a,
  );
  assert.equal(two.best.trial, best.trial);
  assert.ok(two.best.testAccuracy > 0.5, `best test accuracy ${two.best.testAccuracy}`);
  const bestMetrics = json(join(out, 'best', 'metrics.json'));
  assert.equal(bestMetrics.testAccuracy, two.best.testAccuracy);
  assert.equal(json(join(out, 'best', 'model.json')).userDefinedMetadata.convlab.search.trial, best.trial);

  // More trials later: the first two are kept, not retrained.
  const more = convlab(...args(out, 3));
  assert.equal(more.code, 0, more.stderr);
  assert.match(more.stdout, /continuing .*search\.json: 2 of 3 trials already done/);
  assert.doesNotMatch(more.stdout, /^trial [12]\/3/m);
  const three = json(join(out, 'search.json'));
  assert.deepEqual(three.trials.slice(0, 2), two.trials);
  // Trials depend only on (seed, trial): a fresh search of 3 samples the same values.
  const fresh = convlab(...args(join(dir, 'search-fresh'), 3));
  assert.equal(fresh.code, 0, fresh.stderr);
  const again = json(join(dir, 'search-fresh', 'search.json'));
  assert.deepEqual(
    again.trials.map((t: { params: object }) => t.params),
    three.trials.map((t: { params: object }) => t.params),
  );
  assert.deepEqual(
    again.trials.map((t: { validationAccuracy: number }) => t.validationAccuracy),
    three.trials.map((t: { validationAccuracy: number }) => t.validationAccuracy),
  );

  assertOneLineError(convlab(...args(out, 3, 151)), /search\.json was started with another iterations \(150, now 151\)/);
  // Another seed, space or data set is refused the same way, and the file is left as it was.
  assertOneLineError(convlab(...args(out, 2).map((a) => (a === '3' ? '4' : a))), /search\.json was started with another seed \(3, now 4\)/);
  assert.deepEqual(json(join(out, 'search.json')), three);

  // SIGKILL in the middle of a trial, then the same command again: the search.json of the uninterrupted search.
  const killed = join(dir, 'search-killed');
  const victim = start(...args(killed, 3));
  await waitFor(join(killed, 'search.json')); // trial 1 is written; trial 2 is training
  victim.kill('SIGKILL');
  await exited(victim);
  const finished = json(join(killed, 'search.json')).trials.length;
  assert.ok(finished < 3, `the search finished (${finished} trials) before it could be killed`);
  const rerun = convlab(...args(killed, 3));
  assert.equal(rerun.code, 0, rerun.stderr);
  const timeless = (f: { trials: { trainSeconds: number }[] }) => ({ ...f, trials: f.trials.map(({ trainSeconds: _, ...t }) => t) });
  assert.deepEqual(timeless(json(join(killed, 'search.json'))), timeless(again));

  // Ctrl-C: the finished trials stay; running the same command again continues.
  const interrupted = join(dir, 'search-int');
  const child = start(...args(interrupted, 4, 1500));
  await waitFor(join(interrupted, 'search.json'));
  child.kill('SIGINT');
  const { code } = await exited(child);
  assert.equal(code, 130, child.output());
  assert.match(child.output(), /interrupted; \d finished trials are in/);
  const kept = json(join(interrupted, 'search.json')).trials.length;
  assert.ok(kept >= 1 && kept < 4);
});
