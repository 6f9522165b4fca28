/**
 * A corpus of bad files. Each must give one clear line on stderr and exit code 2, with no stack trace,
 * and leave every file it was given byte-for-byte as it was.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createCanvas } from '@napi-rs/canvas';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fixtureModelDir } from '../helpers/fixture-model.ts';
import { encodeIdx } from '../../src/data/idx.ts';

const bin = fileURLToPath(new URL('../../bin/convlab.js', import.meta.url));
let dir: string;
let good: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'convlab-hostile-'));
  good = await fixtureModelDir();
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A copy of the fixture model in `name`, damaged by `damage`. */
function damagedModel(name: string, damage: (folder: string) => void): string {
  const folder = join(dir, name);
  mkdirSync(folder, { recursive: true });
  for (const f of ['model.json', 'weights.bin']) cpSync(join(good, f), join(folder, f));
  damage(folder);
  return folder;
}

function editJson(path: string, edit: (j: any) => void) {
  const j = JSON.parse(readFileSync(path, 'utf8'));
  edit(j);
  writeFileSync(path, JSON.stringify(j));
}

/** A real PNG of a digit-like stroke. */
function pngFile(): string {
  const path = join(dir, 'digit.png');
  const canvas = createCanvas(120, 120);
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, 120, 120);
  ctx.lineWidth = 12;
  ctx.beginPath();
  ctx.moveTo(60, 15);
  ctx.lineTo(60, 105);
  ctx.stroke();
  writeFileSync(path, canvas.toBuffer('image/png'));
  return path;
}

/** sha256 of every file under `folder`, to prove nothing was touched. */
function snapshot(folder: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out[p] = createHash('sha256').update(readFileSync(p)).digest('hex');
    }
  };
  walk(folder);
  return out;
}

interface Case {
  name: string;
  /** Builds the bad input; returns the command's arguments. */
  setup: () => string[];
  error: RegExp;
}

/** A small, valid MNIST-like IDX folder (20 train, 10 test images of 28x28), then damaged by `damage`. */
function idxFolder(name: string, damage: (folder: string) => void): string {
  const folder = join(dir, name);
  mkdirSync(folder, { recursive: true });
  const images = (n: number) => encodeIdx({ dtype: 'uint8', shape: [n, 28, 28], data: new Uint8Array(n * 784).map((_, i) => (i * 7) % 256) });
  const labels = (n: number) => encodeIdx({ dtype: 'uint8', shape: [n], data: new Uint8Array(n).map((_, i) => i % 10) });
  writeFileSync(join(folder, 'train-images-idx3-ubyte'), images(20));
  writeFileSync(join(folder, 'train-labels-idx1-ubyte'), labels(20));
  writeFileSync(join(folder, 't10k-images-idx3-ubyte'), images(10));
  writeFileSync(join(folder, 't10k-labels-idx1-ubyte'), labels(10));
  damage(folder);
  return folder;
}

/** A CIFAR-10 binary folder with `records` records per batch file, then damaged by `damage`. */
function cifarFolder(name: string, damage: (folder: string) => void): string {
  const folder = join(dir, name);
  mkdirSync(folder, { recursive: true });
  const batch = (records: number) => Buffer.alloc(records * 3073, 3);
  for (let k = 1; k <= 5; k++) writeFileSync(join(folder, `data_batch_${k}.bin`), batch(4));
  writeFileSync(join(folder, 'test_batch.bin'), batch(4));
  damage(folder);
  return folder;
}

const train = (dataset: string) => ['train', '--dataset', dataset, '--iterations', '1', '--no-report', '--out', join(dir, 'never-written')];

const cases: Case[] = [
  {
    name: 'a truncated IDX images file',
    setup: () =>
      train(
        `idx:${idxFolder('idx-truncated', (f) => writeFileSync(join(f, 'train-images-idx3-ubyte'), readFileSync(join(f, 'train-images-idx3-ubyte')).subarray(0, 5000)))}`,
      ),
    error: /train-images-idx3-ubyte: expected 15,696 bytes for 20x28x28 uint8, got 5,000/,
  },
  {
    name: 'a garbage IDX file (wrong magic)',
    setup: () => train(`idx:${idxFolder('idx-garbage', (f) => writeFileSync(join(f, 'train-labels-idx1-ubyte'), 'GIF89a garbage bytes here'))}`),
    error: /train-labels-idx1-ubyte: not an IDX file/,
  },
  {
    name: 'IDX images and labels with different counts',
    setup: () =>
      train(
        `idx:${idxFolder('idx-mismatch', (f) =>
          writeFileSync(join(f, 't10k-labels-idx1-ubyte'), encodeIdx({ dtype: 'uint8', shape: [9], data: new Uint8Array(9) })),
        )}`,
      ),
    error: /t10k-images-idx3-ubyte has 10 images but \S*t10k-labels-idx1-ubyte has 9 labels — the files do not belong together/,
  },
  {
    name: 'a CIFAR-10 file of the wrong length',
    setup: () => train(`cifar10:${cifarFolder('cifar-length', (f) => writeFileSync(join(f, 'data_batch_3.bin'), Buffer.alloc(3073 * 2 + 100)))}`),
    error: /data_batch_3\.bin.*3,073/,
  },
  {
    name: 'a CIFAR-10 label out of range',
    setup: () => train(`cifar10:${cifarFolder('cifar-label', (f) => writeFileSync(join(f, 'test_batch.bin'), Buffer.alloc(3073, 12)))}`),
    error: /test_batch\.bin.*label/i,
  },
  {
    name: 'a config that is not JSON',
    setup: () => {
      writeFileSync(join(dir, 'broken.json'), '{ "network": { "conv": [ ');
      return ['train', '--config', join(dir, 'broken.json'), '--iterations', '1', '--no-report', '--out', join(dir, 'never-written')];
    },
    error: /broken\.json/,
  },
  {
    name: 'a config whose layers do not fit the input',
    setup: () => {
      const conv = { filters: 4, size: 5, padding: 'valid', pool: 'max', poolSize: 2 };
      writeFileSync(join(dir, 'too-deep.json'), JSON.stringify({ network: { conv: [conv, conv, conv, conv], dense: [{ activation: 'linear' }] } }));
      return ['train', '--config', join(dir, 'too-deep.json'), '--iterations', '1', '--no-report', '--out', join(dir, 'never-written')];
    },
    error: /conv block \d.*smaller than the 5x5 filter/,
  },
  {
    name: 'model.json that is not JSON',
    setup: () => ['evaluate', '--model', damagedModel('bad-json', (f) => writeFileSync(join(f, 'model.json'), '{"format": "layers-model",'))],
    error: /model\.json.*(JSON|parse)/i,
  },
  {
    name: 'model.json with a weight missing from its manifest',
    setup: () => [
      'evaluate',
      '--model',
      damagedModel('missing-weight', (f) => editJson(join(f, 'model.json'), (j) => j.weightsManifest[0].weights.splice(2, 1))),
    ],
    error: /conv2\/kernel/,
  },
  {
    name: 'model.json with a misshaped weight',
    setup: () => [
      'evaluate',
      '--model',
      damagedModel('misshaped', (f) => editJson(join(f, 'model.json'), (j) => (j.weightsManifest[0].weights[0].shape = [5, 5, 16, 1]))),
    ],
    error: /conv1\/kernel.*shape/,
  },
  {
    name: 'weights.bin of the wrong length',
    setup: () => [
      'evaluate',
      '--model',
      damagedModel('short-weights', (f) => writeFileSync(join(f, 'weights.bin'), readFileSync(join(f, 'weights.bin')).subarray(0, 4000))),
    ],
    error: /weights\.bin.*expected [\d,]+ bytes.*got 4,000/,
  },
  {
    name: 'weights.bin missing',
    setup: () => ['predict', '--model', damagedModel('no-weights', (f) => rmSync(join(f, 'weights.bin'))), pngFile()],
    error: /weights\.bin/,
  },
  {
    name: 'a model folder that does not exist',
    setup: () => ['visualize', '--model', join(dir, 'nothing-here')],
    error: /no model\.json/,
  },
  {
    name: 'a picture that is text',
    setup: () => {
      writeFileSync(join(dir, 'fake.png'), 'this is not a png');
      return ['predict', '--model', good, join(dir, 'fake.png')];
    },
    error: /fake\.png: not a PNG or JPEG image/,
  },
  {
    name: 'a truncated PNG',
    setup: () => {
      const png = readFileSync(pngFile());
      writeFileSync(join(dir, 'half.png'), png.subarray(0, Math.floor(png.length / 2)));
      return ['predict', '--model', good, join(dir, 'half.png')];
    },
    error: /half\.png: .*(truncated|corrupt)/,
  },
  {
    name: 'a damaged checkpoint',
    setup: () => {
      const folder = join(dir, 'bad-checkpoint');
      mkdirSync(folder, { recursive: true });
      writeFileSync(join(folder, 'checkpoint.bin'), Buffer.concat([Buffer.from('CLCKPT01'), Buffer.from([5, 0, 0, 0]), Buffer.from('{"a":')]));
      return ['train', '--resume', folder];
    },
    error: /checkpoint\.bin: .*the checkpoint cannot be resumed/,
  },
];

for (const c of cases) {
  test(`hostile input: ${c.name}`, () => {
    const args = c.setup();
    const before = snapshot(dir);
    const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8' });
    assert.equal(r.status, 2, `exit code ${r.status}\n${r.stdout}${r.stderr}`);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, `expected one line, got:\n${r.stderr}`);
    assert.match(lines[0], /^convlab: /);
    assert.match(lines[0], c.error);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
    assert.deepEqual(snapshot(dir), before, 'the command changed files it was given');
  });
}
