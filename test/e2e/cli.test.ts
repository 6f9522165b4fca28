/** The `convlab` command as a user runs it: real child processes, real files. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, rm, writeFile, stat } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { convlab } from '../helpers/cli.ts';
import { loadMnist } from '../../src/data/mnist.ts';
import { renderOnPaper } from '../helpers/digits.ts';

let dir: string;
let model: string;

/** A failure is one clear line on stderr, a non-zero exit, and no stack trace. */
function assertOneLineError(r: ReturnType<typeof convlab>, pattern: RegExp) {
  assert.notEqual(r.code, 0, 'expected a non-zero exit');
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `expected one line on stderr, got:\n${r.stderr}`);
  assert.match(lines[0], pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'stack trace printed');
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'convlab-cli-'));
  model = join(dir, 'run');
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('train writes the model, weights and metrics and ends with the accuracy line', async () => {
  const r = convlab('train', '--preset', 'seed', '--iterations', '40', '--learning-rate', '0.001', '--seed', '2', '--out', model);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^iter 20\/40 \| loss \d+\.\d{4} \| batch acc +\d+\.\d% \| lr 1\.00e-3 \| +[\d,]+ img\/s$/m);
  assert.match(r.stdout, /^iter 40\/40 \| validation acc +\d+\.\d\d% \(\d+ \/ 5000\)$/m);
  const last = r.stdout
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('Accuracy'));
  assert.equal(last.length, 1);
  const m = /^Accuracy on test set: (\d+\.\d\d)% \((\d+) \/ 10000\)$/.exec(last[0]);
  assert.ok(m, last[0]);

  const metrics = JSON.parse(await readFile(join(model, 'metrics.json'), 'utf8'));
  for (const key of [
    'testAccuracy',
    'testCorrect',
    'testTotal',
    'validationAccuracy',
    'iterations',
    'trainSeconds',
    'trainImagesPerSecond',
    'seed',
    'backend',
    'config',
    'history',
    'confusionMatrix',
  ]) {
    assert.ok(key in metrics, `metrics.json lacks ${key}`);
  }
  assert.equal(metrics.testCorrect, Number(m[2]));
  assert.equal(metrics.testTotal, 10000);
  assert.equal(metrics.iterations, 40);
  assert.equal(metrics.seed, 2);
  assert.equal(metrics.backend, 'wasm');
  assert.equal(metrics.config.train.optimizer.learningRate, 0.001);
  assert.equal(metrics.history.length, 10); // short runs log about ten times
  assert.equal(metrics.confusionMatrix.length, 10);
  assert.equal(
    metrics.confusionMatrix.flat().reduce((a: number, b: number) => a + b, 0),
    10000,
  );
  assert.equal(
    metrics.confusionMatrix.reduce((a: number, row: number[], i: number) => a + row[i], 0),
    metrics.testCorrect,
  );
  assert.ok(metrics.testAccuracy > 0.5, `40 steps at lr 1e-3 should pass 50%, got ${metrics.testAccuracy}`);

  const modelJson = JSON.parse(await readFile(join(model, 'model.json'), 'utf8'));
  assert.equal(modelJson.format, 'layers-model');
  assert.deepEqual(
    modelJson.modelTopology.config.layers.map((l: { class_name: string }) => l.class_name),
    ['Conv2D', 'MaxPooling2D', 'Activation', 'Conv2D', 'MaxPooling2D', 'Activation', 'Flatten', 'Dense', 'Dense'],
  );
  assert.equal((await stat(join(model, 'weights.bin'))).size, 4 * (5 * 5 * 16 + 16 + 5 * 5 * 16 * 36 + 36 + 1764 * 128 + 128 + 128 * 10 + 10));
});

test('train refuses to overwrite an existing model', () => {
  const before = readFileSync(join(model, 'weights.bin'));
  const r = convlab('train', '--iterations', '1', '--out', model);
  assertOneLineError(r, /already holds a model/);
  assert.deepEqual(readFileSync(join(model, 'weights.bin')), before);
});

test('evaluate prints the same accuracy as training did, and the confusion matrix', async () => {
  const metrics = JSON.parse(await readFile(join(model, 'metrics.json'), 'utf8'));
  const r = convlab('evaluate', '--model', model);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`^Accuracy on test set: [\\d.]+% \\(${metrics.testCorrect} / 10000\\)$`, 'm'));
  assert.match(r.stdout, /^true\\pred +0 +1 +2/m);
  assert.equal(r.stdout.trim().split('\n').length, 1 + 2 + 11);
});

test('predict classifies a picture file; --json gives one object per file', async () => {
  const mnist = await loadMnist();
  const png = join(dir, 'seven.png');
  await writeFile(png, renderOnPaper(mnist.test.images.slice(0, 784), { scale: 6, w: 300, h: 200, x: 10, y: 20 }).toBuffer('image/png'));
  const text = convlab('predict', '--model', model, png);
  assert.equal(text.code, 0, text.stderr);
  // The first test digit is a 7 (its label says so); a model at ~90% reads a clean 7 on paper as a 7.
  assert.equal(mnist.test.labels[0], 7);
  assert.match(text.stdout, /seven\.png: 7 {2}\(7: [\d.]+%, \d: [\d.]+%, \d: [\d.]+%\)/);
  const json = convlab('predict', '--model', model, '--json', png, png);
  assert.equal(json.code, 0, json.stderr);
  const lines = json.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.equal(lines.length, 2);
  assert.equal(lines[0].file, png);
  assert.equal(lines[0].probabilities.length, 10);
  assert.ok(Math.abs(lines[0].probabilities.reduce((a: number, b: number) => a + b, 0) - 1) < 1e-4);
  assert.equal(lines[0].class, lines[0].probabilities.indexOf(Math.max(...lines[0].probabilities)));
  assert.equal(lines[0].class, 7);
  assert.deepEqual(lines[1], lines[0], 'the same file twice gives the same answer');
  // The text output's top three are the JSON's three largest probabilities, in order, as percentages.
  const top = [...lines[0].probabilities.entries()].sort((a, b) => b[1] - a[1]).slice(0, 3);
  const shown = [...text.stdout.matchAll(/(\d): ([\d.]+)%/g)].map((m) => [Number(m[1]), Number(m[2])]);
  assert.deepEqual(
    shown.map(([c]) => c),
    top.map(([c]) => c),
  );
  shown.forEach(([, p], i) => assert.ok(Math.abs(p - 100 * top[i][1]) < 0.1, `shown ${p}% vs ${100 * top[i][1]}%`));
});

test('bad input: one clear line and a non-zero exit', async () => {
  const garbage = join(dir, 'notes.png');
  await writeFile(garbage, 'hello, this is not a picture');
  assertOneLineError(convlab('predict', '--model', model, garbage), /notes\.png: not a PNG or JPEG image/);
  assertOneLineError(convlab('predict', '--model', model, join(dir, 'missing.png')), /missing\.png: no such file/);
  assertOneLineError(convlab('evaluate', '--model', join(dir, 'nowhere')), /no model\.json/);
  assertOneLineError(convlab('train', '--bogus'), /unknown option '--bogus'/);
  assertOneLineError(convlab('train', '--iterations', 'ten'), /--iterations.*positive|whole number/);
  assertOneLineError(convlab('train', '--backend', 'gpu'), /--backend.*gpu.*wasm, cpu, tensorflow/);
  assertOneLineError(convlab('train', '--iterations', '5', '--epochs', '1'), /cannot be used with/);
  assertOneLineError(convlab('train', '--iterations', '1', '--backend', 'tensorflow', '--out', join(dir, 'tf')), /@tensorflow\/tfjs-node/);
  // A copy of the trained model with its weights.bin cut short (copied, not trained again: a run costs seconds).
  const broken = join(dir, 'broken');
  await rm(broken, { recursive: true, force: true });
  await cp(model, broken, { recursive: true });
  const weights = join(broken, 'weights.bin');
  await writeFile(weights, (await readFile(weights)).subarray(0, 1000));
  assertOneLineError(convlab('evaluate', '--model', broken), /weights\.bin.*expected [\d,]+ bytes/);
});
