/** `convlab visualize` as a user runs it: a real child process, real files. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { convlab } from '../helpers/cli.ts';
import { fixtureModelDir } from '../helpers/fixture-model.ts';

let dir: string;
let model: string;

before(async () => {
  model = await fixtureModelDir();
  dir = await mkdtemp(join(tmpdir(), 'convlab-viz-cli-'));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('visualize writes the figures and report.html and lists them, one line each', async () => {
  const out = join(dir, 'viz');
  const r = convlab('visualize', '--model', model, '--out', out, '--image', '7', '--image', '0', '--channels', '0,2');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
  const lines = r.stdout.trim().split('\n');
  const files = [
    'curves.png',
    'samples.png',
    'conv1-weights.png',
    'conv1-maps.png',
    'conv2-weights-ch0.png',
    'conv2-weights-ch2.png',
    'conv2-maps.png',
    'errors.png',
    'confusion.png',
    'saliency.png',
    'embedding.png',
  ];
  assert.deepEqual(
    lines.slice(0, -1).map((l) => /^wrote (\S+) +\d+x\d+$/.exec(l)?.[1]),
    files,
  );
  assert.equal(lines.at(-1), `wrote ${join(out, 'report.html')} (11 figures in ${out})`);
  assert.deepEqual((await readdir(out)).sort(), [...files, 'report.html'].sort());
});

test('visualize on a folder without metrics.json says which figure it skipped and why', async () => {
  const bare = join(dir, 'bare');
  await mkdir(bare);
  for (const f of ['model.json', 'weights.bin']) await copyFile(join(model, f), join(bare, f));
  const r = convlab('visualize', '--model', bare);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`^skipped curves\\.png: no metrics\\.json in ${bare.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`, 'm'));
  assert.match(r.stdout, /^wrote confusion\.png/m);
  assert.ok((await readdir(bare)).includes('report.html'), 'the report goes next to the model by default');
});

test('visualize fails in one line for a bad --image or --channels', () => {
  for (const [args, pattern] of [
    [['--image', '10000'], /^convlab: --image 10000: the test set has images 0 to 9,999/],
    [['--channels', 'one'], /--channels.*whole numbers/],
    [['--channels', '16'], /^convlab: --channels 16: conv2 has input channels 0 to 15/],
  ] as const) {
    const r = convlab('visualize', '--model', model, '--out', join(dir, 'bad'), ...args);
    assert.notEqual(r.code, 0);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], pattern);
  }
});
