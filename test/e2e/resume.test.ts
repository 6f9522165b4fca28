/** Crash-safe training, with real child processes: SIGKILL, Ctrl-C, a diverging run, two runs on one folder. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { convlab as run, exited, start, waitFor } from '../helpers/cli.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { Rng } from '../../src/data/batches.ts';

let dir: string;
/** Seeds the random kill moments; set it to replay a failure (the test prints the one it used). */
const SEED_VARIABLE = 'CONVLAB_TEST_SEED';
const killSeed = process.env[SEED_VARIABLE] === undefined ? Date.now() % 2 ** 31 : Number(process.env[SEED_VARIABLE]);
const base = ['train', '--preset', 'seed', '--iterations', '20', '--learning-rate', '0.001', '--checkpoint-every', '5', '--no-report', '--log-every', '10'];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'convlab-resume-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

for (const workers of ['2', '0']) {
  test(`SIGKILL at an arbitrary moment, then --resume: byte-identical weights.bin (${workers} workers)`, async (t) => {
    const reference = join(dir, `reference-${workers}`);
    const r = run(...base, '--workers', workers, '--out', reference);
    assert.equal(r.code, 0, r.stderr);

    const killed = join(dir, `killed-${workers}`);
    const child = start(...base, '--workers', workers, '--out', killed);
    await waitFor(join(killed, 'checkpoint.bin'));
    // A random moment after the first checkpoint: mid-step, mid-checkpoint-write, or anywhere between.
    const delay = new Rng(killSeed + Number(workers)).int(1500);
    t.diagnostic(`SIGKILL ${delay} ms after the first checkpoint (replay with ${SEED_VARIABLE}=${killSeed})`);
    await sleep(delay);
    child.kill('SIGKILL');
    const { signal } = await exited(child);
    assert.equal(signal, 'SIGKILL');
    assert.ok(!existsSync(join(killed, 'weights.bin')), 'the killed run should not have finished');

    const resumed = run('train', '--resume', killed, '--no-report');
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stdout, /^resuming .* at iteration \d+\/20$/m);
    assert.match(resumed.stdout, /Accuracy on test set/);
    assert.ok(
      readFileSync(join(killed, 'weights.bin')).equals(readFileSync(join(reference, 'weights.bin'))),
      `weights.bin differs after a SIGKILL ${delay} ms after the first checkpoint (replay with ${SEED_VARIABLE}=${killSeed})`,
    );
    assert.ok(!existsSync(join(killed, 'checkpoint.bin')), 'a finished run leaves no checkpoint behind');
    const [a, b] = [reference, killed].map((d) => JSON.parse(readFileSync(join(d, 'metrics.json'), 'utf8')));
    assert.equal(a.testCorrect, b.testCorrect);
    assert.deepEqual(
      a.history.map((h: { loss: number }) => h.loss),
      b.history.map((h: { loss: number }) => h.loss),
    );
  });
}

test('Ctrl-C finishes the step, writes a checkpoint, says how to resume and exits 130', async () => {
  const out = join(dir, 'interrupted');
  const child = start(...base, '--iterations', '2000', '--workers', '1', '--out', out);
  await waitFor(join(out, 'checkpoint.bin')); // training is under way
  child.kill('SIGINT');
  const { code } = await exited(child);
  assert.equal(code, 130, child.output());
  assert.match(child.output(), /interrupted at iteration (\d+)\/2000; checkpoint saved/);
  assert.match(child.output(), new RegExp(`resume with: convlab train --resume ${out.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`));
  const at = Number(/interrupted at iteration (\d+)/.exec(child.output())![1]);
  const header = readFileSync(join(out, 'checkpoint.bin'));
  assert.ok(header.toString('utf8', 12, 12 + header.readUInt32LE(8)).includes(`"iteration":${at}`), 'checkpoint is not at the interrupted iteration');
  // The folder is free again (no stale lock blocks a resume) and a fresh run there is refused.
  const fresh = run('train', '--iterations', '1', '--out', out);
  assert.equal(fresh.code, 2);
  assert.match(fresh.stderr, /holds an unfinished run; continue it with --resume/);
});

test('a diverging run stops with the iteration and the likely cause, keeps its last good checkpoint, exits non-zero', () => {
  const out = join(dir, 'diverged');
  const r = run(
    'train',
    '--preset',
    'seed',
    '--iterations',
    '50',
    '--learning-rate',
    '1e30',
    '--checkpoint-every',
    '1',
    '--workers',
    '0',
    '--no-report',
    '--out',
    out,
  );
  assert.equal(r.code, 1, r.stdout + r.stderr);
  const line = r.stderr.trim().split('\n').at(-1)!;
  assert.match(line, /iteration \d+: the loss is (NaN|Infinity|-Infinity); training diverged\. The learning rate \(1\.00e\+30\) is the likely cause/);
  assert.match(line, /last good checkpoint \(iteration \d+\) is kept/);
  assert.ok(existsSync(join(out, 'checkpoint.bin')));
  assert.ok(!existsSync(join(out, 'model.json')), 'a diverged run must not save a model');
});

test('a second run on the same --out is refused while the first is running', async () => {
  const out = join(dir, 'shared');
  const first = start(...base, '--iterations', '2000', '--workers', '1', '--out', out);
  await waitFor(join(out, 'checkpoint.bin'));
  const second = run(...base, '--workers', '1', '--out', out);
  assert.equal(second.code, 2);
  assert.match(second.stderr, /in use by another convlab run \(pid \d+\)/);
  first.kill('SIGKILL');
  await exited(first);
});
