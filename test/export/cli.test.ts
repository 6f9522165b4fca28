/**
 * `convlab export` as a user runs it: the default file, --out, --layout, --force, and bad input (a folder
 * that is not a model, a damaged weights.bin, an unwritable or existing --out): one line on stderr, exit 2,
 * nothing half-written and no temp file left behind.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { convlab } from '../helpers/cli.ts';
import { useBackend } from '../../src/backend.ts';
import { Rng } from '../../src/data/batches.ts';
import { presets, type NetworkConfig } from '../../src/model/config.ts';
import { disposeParams, initParams, predictProbabilities } from '../../src/model/cnn.ts';
import { saveModel } from '../../src/model/checkpoint.ts';
import { argmaxRow, ortProbabilities, session } from './runtime.ts';

let dir: string;
let model: string;
/** convlab's probabilities for `probe` (8 random images), from the saved model. */
let expected: Float32Array;
const probe = Float32Array.from({ length: 8 * 28 * 28 }, (_, i) => ((i * 7919) % 1000) / 1000);

const net: NetworkConfig = {
  ...presets.seed.network,
  conv: [
    { ...presets.seed.network.conv[0], filters: 4 },
    { ...presets.seed.network.conv[1], filters: 6, pool: 'avg', activation: 'tanh', order: 'activation-then-pool' },
  ],
  dense: [{ units: 10, activation: 'linear', dropout: 0 }],
};

function assertOneLineError(r: ReturnType<typeof convlab>, pattern: RegExp): void {
  assert.equal(r.code, 2, `expected exit 2, got ${r.code}; stdout: ${r.stdout} stderr: ${r.stderr}`);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `expected one line on stderr, got:\n${r.stderr}`);
  assert.match(lines[0], pattern);
}

/** No `.model.onnx.*.tmp` (or anything else new) in `folder`. */
function assertNoTemp(folder: string): void {
  const temps = readdirSync(folder).filter((f) => f.endsWith('.tmp'));
  assert.deepEqual(temps, [], `temp files left in ${folder}`);
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'convlab-export-'));
  model = join(dir, 'model');
  await useBackend('cpu');
  const params = initParams(net, new Rng(5));
  await saveModel(model, net, params, { train: presets.seed.train, dataset: 'mnist' });
  const p = predictProbabilities(net, params, tf.tensor4d(probe, [8, 28, 28, 1]));
  expected = p.dataSync() as Float32Array;
  p.dispose();
  disposeParams(params);
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('export writes DIR/model.onnx by default; ONNX Runtime loads it and agrees with convlab', async () => {
  const r = convlab('export', '--model', model);
  assert.equal(r.code, 0, r.stderr);
  const file = join(model, 'model.onnx');
  assert.match(
    r.stdout.trim(),
    /^wrote .*model\.onnx \([\d,]+ bytes, ONNX opset 13\): input images \[N,1,28,28\] NCHW float32 in \[0,1\] → probabilities, logits \[N,10\]$/,
  );
  assert.equal(r.stderr, '');
  const s = await session(readFileSync(file));
  assert.deepEqual(s.inputNames, ['images']);
  assert.deepEqual(s.outputNames, ['probabilities', 'logits']);
  const got = await ortProbabilities(s, probe, 8, net.input, 'nchw');
  for (let i = 0; i < expected.length; i++) assert.ok(Math.abs(got.probabilities[i] - expected[i]) <= 1e-5, `probability ${i}`);
  for (let n = 0; n < 8; n++) assert.equal(argmaxRow(got.probabilities, n, 10), argmaxRow(expected, n, 10));
  await s.release();
  assertNoTemp(model);
});

test('an existing file is kept unless --force; --out and --layout nhwc', async () => {
  const file = join(model, 'model.onnx');
  const before = readFileSync(file);
  assertOneLineError(convlab('export', '--model', model), /model\.onnx: already exists — pass --force to replace it/);
  assert.deepEqual(readFileSync(file), before, 'the existing file must be untouched');

  const out = join(dir, 'exports', 'nested', 'digits-nhwc.onnx'); // missing folders are created
  const r = convlab('export', '--model', model, '--format', 'onnx', '--layout', 'nhwc', '--out', out);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /input images \[N,28,28,1\] NHWC/);
  const s = await session(readFileSync(out));
  const got = await ortProbabilities(s, probe, 8, net.input, 'nhwc');
  for (let i = 0; i < expected.length; i++) assert.ok(Math.abs(got.probabilities[i] - expected[i]) <= 1e-5);
  await s.release();

  // --force replaces it (here: with the NCHW version, which is a different file)
  const nhwc = readFileSync(out);
  assert.equal(convlab('export', '--model', model, '--out', out, '--force').code, 0);
  assert.notDeepEqual(readFileSync(out), nhwc);
  assertNoTemp(join(dir, 'exports', 'nested'));
});

test('bad input: one line, exit 2, nothing written', async () => {
  // not a model
  const empty = join(dir, 'empty');
  await mkdir(empty);
  assertOneLineError(convlab('export', '--model', empty), /empty: no model\.json — pass the folder that `convlab train` wrote/);
  assert.deepEqual(readdirSync(empty), []);
  assertOneLineError(convlab('export', '--model', join(dir, 'absent')), /absent: no model\.json/);

  // a damaged weights.bin: truncated, and one with a NaN
  const damaged = join(dir, 'damaged');
  await mkdir(damaged);
  await copyFile(join(model, 'model.json'), join(damaged, 'model.json'));
  await copyFile(join(model, 'weights.bin'), join(damaged, 'weights.bin'));
  await truncate(join(damaged, 'weights.bin'), statSync(join(damaged, 'weights.bin')).size - 4);
  assertOneLineError(convlab('export', '--model', damaged), /weights\.bin: expected [\d,]+ bytes .* got [\d,]+ — the file is truncated/);
  assert.ok(!existsSync(join(damaged, 'model.onnx')));
  const bytes = readFileSync(join(model, 'weights.bin'));
  bytes.writeFloatLE(Number.NaN, 40);
  await writeFile(join(damaged, 'weights.bin'), bytes);
  assertOneLineError(convlab('export', '--model', damaged), /weights\.bin: weight conv1\/kernel holds NaN at index 10 — the model is corrupt/);
  assert.deepEqual(readdirSync(damaged).sort(), ['model.json', 'weights.bin']);

  // an unwritable --out: its folder is a file; --out is a folder
  const blocker = join(dir, 'a-file');
  await writeFile(blocker, 'not a folder');
  assertOneLineError(
    convlab('export', '--model', model, '--out', join(blocker, 'model.onnx')),
    /--out .*a-file\/model\.onnx: cannot write there \((ENOTDIR|EEXIST)\)/,
  );
  assert.equal(readFileSync(blocker, 'utf8'), 'not a folder');
  assertOneLineError(convlab('export', '--model', model, '--out', dir), /--out .*: is a folder — pass a file name/);

  // flags
  assertOneLineError(convlab('export', '--model', model, '--format', 'tflite'), /--format.*tflite.*onnx/);
  assertOneLineError(convlab('export', '--model', model, '--layout', 'chwn'), /--layout.*chwn/);
  assertOneLineError(convlab('export'), /--model/);
  assertNoTemp(model);
  assertNoTemp(dir);
});
