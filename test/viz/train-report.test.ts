/** `convlab train` draws the report at the end of a run, unless told --no-report. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../../bin/convlab.js', import.meta.url));
let dir: string;

function train(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, 'train', '--iterations', '2', '--batch-size', '16', '--workers', '0', ...args], {
    encoding: 'utf8',
    env: { ...process.env, CONVLAB_DEBUG: '' },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'convlab-train-report-'));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('train ends with one line saying where report.html is, and writes it with the figures', async () => {
  const out = join(dir, 'run');
  const r = train('--out', out);
  assert.equal(r.code, 0, r.stderr);
  const last = r.stdout.trim().split('\n').at(-1);
  assert.equal(last, `report: ${join(out, 'report.html')} (11 figures)`);
  const files = await readdir(out);
  for (const f of ['report.html', 'samples.png', 'conv1-weights.png', 'conv2-weights-ch0.png', 'curves.png', 'confusion.png']) {
    assert.ok(files.includes(f), `${f} missing from ${files.join(' ')}`);
  }
});

test('train --no-report writes the model and no figures', async () => {
  const out = join(dir, 'quiet');
  const r = train('--out', out, '--no-report');
  assert.equal(r.code, 0, r.stderr);
  assert.doesNotMatch(r.stdout, /^report:/m);
  assert.deepEqual(
    (await readdir(out)).filter((f) => f.endsWith('.png') || f.endsWith('.html')),
    [],
  );
});
