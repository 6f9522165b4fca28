/** `convlab serve` as a user runs it: a real process on a real loopback socket, stopped with SIGTERM. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { fixtureModelDir } from '../helpers/fixture-model.ts';
import { defaultServeWorkers } from '../../src/cli/serve.ts';

const bin = fileURLToPath(new URL('../../bin/convlab.js', import.meta.url));
let model: string;

before(async () => {
  model = await fixtureModelDir();
});

/** Starts `convlab serve ...`, resolves with the process, its URL and its output so far once it listens. */
function serve(...args: string[]): Promise<{ child: ChildProcessWithoutNullStreams; url: string; out: () => string }> {
  const child = spawn(process.execPath, [bin, 'serve', ...args], { env: { ...process.env, CONVLAB_DEBUG: '' } });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`convlab serve did not start in 30 s:\n${out}`));
    }, 30_000);
    child.stdout.on('data', () => {
      const m = / at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, url: m[1], out: () => out });
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`convlab serve exited with ${code}:\n${out}`));
    });
  });
}

const children: ChildProcessWithoutNullStreams[] = [];
after(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
});

test('serve --no-page: answers on loopback, logs one line per request, stops cleanly on SIGTERM', async () => {
  const { child, url, out } = await serve('--model', model, '--port', '0', '--no-page');
  children.push(child);
  assert.match(out(), /^convlab serving .* on wasm \(\d+ workers?, batch window [\d.]+ ms, max batch \d+\) at http:\/\/127\.0\.0\.1:\d+\/ \(API only\)/m);

  const health = await fetch(`${url}healthz`);
  assert.equal(health.status, 200);
  const pixels = new Array(784).fill(0);
  for (let r = 4; r < 24; r++) pixels[r * 28 + 14] = 1;
  const predict = await fetch(`${url}api/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ pixels }) });
  assert.equal(predict.status, 200);
  assert.equal(((await predict.json()) as { probabilities: number[] }).probabilities.length, 10);
  const bad = await fetch(`${url}api/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{' });
  assert.equal(bad.status, 400);
  const page = await fetch(url);
  assert.equal(page.status, 503, '--no-page serves no page');

  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  assert.equal(await exited, 0);
  const lines = out().split('\n');
  for (const [method, path, status] of [
    ['GET', '/healthz', 200],
    ['POST', '/api/predict', 200],
    ['POST', '/api/predict', 400],
    ['GET', '/', 503],
  ]) {
    const n = lines.filter((l) => new RegExp(`^\\S+Z 127\\.0\\.0\\.1 ${method} ${path} ${status} \\d+\\.\\d ms$`).test(l)).length;
    assert.equal(n, 1, `one line for ${method} ${path} ${status}:\n${out()}`);
  }
  assert.match(out(), /SIGTERM: draining .*\nstopped\n/);
});

test('the default --workers leaves one core to the main thread, and is at least 1', () => {
  assert.deepEqual(
    [1, 2, 3, 8].map((cores) => defaultServeWorkers(cores)),
    [1, 1, 2, 7],
  );
});

test('a missing model, or a port in use, is one line on stderr and exit code 2', async () => {
  const missing = spawnSync(process.execPath, [bin, 'serve', '--model', '/nonexistent/model', '--no-page'], {
    encoding: 'utf8',
    env: { ...process.env, CONVLAB_DEBUG: '' },
  });
  assert.equal(missing.status, 2);
  assert.equal(missing.stderr.trim().split('\n').length, 1, missing.stderr);
  assert.match(missing.stderr, /^convlab: \/nonexistent\/model: no model\.json/);

  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  const port = (blocker.address() as AddressInfo).port;
  try {
    const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const c = spawn(process.execPath, [bin, 'serve', '--model', model, '--no-page', '--port', String(port)], { env: { ...process.env, CONVLAB_DEBUG: '' } });
      children.push(c);
      let stderr = '';
      c.stderr.on('data', (d) => (stderr += d));
      c.on('exit', (code) => resolve({ code, stderr }));
    });
    assert.equal(r.code, 2);
    assert.match(r.stderr, new RegExp(`^convlab: port ${port} on 127\\.0\\.0\\.1 is in use`));
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  } finally {
    blocker.close();
  }
});

test('off loopback without --token-file or --no-auth: refuses to start, one line, exit 2', () => {
  const r = spawnSync(process.execPath, [bin, 'serve', '--model', model, '--host', '0.0.0.0', '--port', '0', '--no-page'], {
    encoding: 'utf8',
    env: { ...process.env, CONVLAB_DEBUG: '' },
  });
  assert.equal(r.status, 2, r.stderr);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], /--host 0\.0\.0\.0 is reachable from other machines: pass --token-file FILE .* or --no-auth/);
});

test('a token file that is missing or too short: one line, exit 2', async () => {
  const { mkdtemp, writeFile, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = await mkdtemp(join(tmpdir(), 'convlab-token-'));
  try {
    const short = join(dir, 'short');
    await writeFile(short, 'abc\n');
    for (const [file, pattern] of [
      [join(dir, 'missing'), /cannot read it \(ENOENT\)/],
      [short, /at least 16 characters/],
    ] as const) {
      const r = spawnSync(process.execPath, [bin, 'serve', '--model', model, '--token-file', file, '--port', '0', '--no-page'], { encoding: 'utf8' });
      assert.equal(r.status, 2, r.stderr);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, pattern);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('SIGTERM drains: requests in flight are answered, exit 0 within the bound', async () => {
  const { child, url, out } = await serve('--model', model, '--port', '0', '--no-page', '--workers', '1', '--drain-timeout', '5');
  children.push(child);
  assert.match(out(), /\(1 worker, batch window [\d.]+ ms, max batch \d+\)/);
  assert.deepEqual(await (await fetch(`${url}readyz`)).json(), { ready: true, workers: 1 });
  const batch = JSON.stringify({ batch: Array.from({ length: 64 }, () => ({ pixels: new Array(784).fill(0.2) })) });
  let killedAt = Infinity;
  const inFlight = Array.from({ length: 30 }, () =>
    fetch(`${url}api/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: batch }).then(async (r) => {
      const body = (await r.json()) as unknown[] | { error: { code: string } };
      return { status: r.status, n: Array.isArray(body) ? body.length : body.error.code, afterKill: performance.now() > killedAt };
    }),
  );
  await Promise.race(inFlight); // the first answer is in: the others are in flight
  const t0 = performance.now();
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  killedAt = performance.now();
  child.kill('SIGTERM');
  const answers = await Promise.allSettled(inFlight);
  const code = await exit;
  const seconds = (performance.now() - t0) / 1000;
  assert.equal(code, 0, out());
  assert.ok(seconds < 5 + 2, `exited after ${seconds.toFixed(1)} s`);
  assert.match(out(), /SIGTERM: draining/);
  // every request the server had taken got its whole answer; one read after the drain began got 503
  // NOT_READY (a load balancer retries it elsewhere); none got a broken answer
  const ok = answers.flatMap((a) => (a.status === 'fulfilled' ? [a.value] : []));
  for (const a of ok) assert.ok((a.status === 200 && a.n === 64) || (a.status === 503 && a.n === 'NOT_READY'), JSON.stringify(a));
  assert.ok(ok.filter((a) => a.status === 200 && a.afterKill).length > 0, `some requests in flight were answered after SIGTERM: ${JSON.stringify(ok)}`);
});
