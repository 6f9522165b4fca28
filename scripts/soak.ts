/**
 * A soak test of `convlab serve`: for `--duration` s (default 180) it sends good /api/predict requests from
 * 10 connections (autocannon) and, at the same time, malformed requests of every kind (fast-check's random
 * JSON, near-valid pixel arrays, random bytes under each content type), and samples the server's RSS and
 * tensor count. Prints start and end RSS; fails (exit 1) if the tensor count changes, RSS grows by more than
 * 25% + 30 MB over the run, or a request gets a 5xx.
 *
 *   npx tsx scripts/soak.ts [--model DIR] [--duration 180] [--workers N]
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import fc from 'fast-check';
import { fixtureModelDir } from '../test/helpers/fixture-model.ts';

const { values: flags } = parseArgs({ options: { model: { type: 'string' }, duration: { type: 'string', default: '180' }, workers: { type: 'string' } } });
const duration = Number(flags.duration);
if (!(duration >= 5 && duration <= 3600)) {
  console.error('soak: --duration must be 5..3600 seconds');
  process.exit(2);
}
const model = flags.model ?? (await fixtureModelDir());
const port = await freePort();
const bin = fileURLToPath(new URL('../bin/convlab.js', import.meta.url));
const args = ['serve', '--model', model, '--port', String(port), '--no-page', ...(flags.workers ? ['--workers', flags.workers] : [])];
const server = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
await new Promise<void>((resolve, reject) => {
  let out = '';
  server.stdout.on('data', (d: Buffer) => {
    if (out.length < 10_000) out += d;
    if (out.includes('convlab serving ')) resolve();
  });
  server.once('exit', (code) => reject(new Error(`convlab serve exited with ${code}:\n${out}`)));
});
const base = `http://127.0.0.1:${port}`;

/** The server's resident set, MB (Linux /proc; the worker threads are in the same process). */
function rssMb(): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${server.pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}
async function tensors(): Promise<number> {
  return ((await (await fetch(`${base}/healthz`)).json()) as { tensors: number }).tensors;
}

const pixels = Array.from({ length: 784 }, (_, i) => ((i * 37) % 100) / 100);
const good = JSON.stringify({ pixels });
const near = fc.array(fc.oneof(fc.double({ min: -0.1, max: 1.1 }), fc.constant(null), fc.string({ maxLength: 2 })), { maxLength: 800 });
const badBody = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v) ?? 'null'),
  fc.record({ pixels: near }).map((v) => JSON.stringify(v)),
  fc.record({ image: fc.oneof(fc.string({ maxLength: 40 }), fc.base64String({ maxLength: 200 })) }).map((v) => JSON.stringify(v)),
  fc.record({ batch: fc.array(fc.record({ pixels: near }), { maxLength: 70 }) }).map((v) => JSON.stringify(v)),
  fc.string({ maxLength: 60 }).map((s) => `{"pixels": [${s}`),
);
const types = ['application/json', 'image/png', 'image/jpeg', 'multipart/form-data; boundary=x', 'text/plain'];
const urls = ['/api/predict', '/api/activations', '/api/mnist-subset?count=abc', '/nope'];

let fuzzed = 0;
let fuzz5xx = 0;
let seed = 1;
/** Load and malformed requests together for `seconds`; samples RSS every 30 s into `samples`. */
async function phase(seconds: number, samples: string[] = []) {
  const t0 = performance.now();
  const fuzzer = (async () => {
    while (performance.now() - t0 < seconds * 1000) {
      const batch = fc.sample(fc.tuple(badBody, fc.constantFrom(...types), fc.constantFrom(...urls), fc.uint8Array({ maxLength: 300 }), fc.boolean()), {
        numRuns: 20,
        seed: seed++,
      });
      await Promise.all(
        batch.map(async ([body, type, url, bytes, raw]) => {
          const method = url.startsWith('/api/mnist') ? 'GET' : 'POST';
          const r = await fetch(base + url, { method, headers: { 'content-type': type }, body: method === 'GET' ? undefined : raw ? bytes : body });
          await r.arrayBuffer();
          fuzzed += 1;
          if (r.status >= 500) fuzz5xx += 1;
        }),
      );
    }
  })();
  const sampler = setInterval(() => samples.push(`${Math.round((performance.now() - t0) / 1000)} s: ${rssMb().toFixed(1)} MB`), 30_000);
  const load = await autocannon({
    url: `${base}/api/predict`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: good,
    connections: 10,
    duration: seconds,
  });
  await fuzzer;
  clearInterval(sampler);
  return load;
}

// warm up with the same mix (the wasm heaps grow to the largest pass, then stay), then the baseline
const biggest = [
  ['/api/predict', JSON.stringify({ batch: Array.from({ length: 64 }, () => ({ pixels })) })],
  ['/api/activations', JSON.stringify({ batch: Array.from({ length: 8 }, () => ({ pixels })) })],
];
for (const [url, body] of biggest)
  for (let i = 0; i < 10; i++) await fetch(base + url, { method: 'POST', headers: { 'content-type': 'application/json' }, body }).then((r) => r.text());
const warmUp = Math.min(30, Math.round(duration / 4));
console.log(`soak: ${warmUp} s warm-up, then ${duration} s of load (10 connections) + malformed requests on ${base}; Node ${process.version}`);
await phase(warmUp);
const start = { rss: rssMb(), tensors: await tensors() };
console.log(`start: RSS ${start.rss.toFixed(1)} MB, tensors ${start.tensors}`);
const samples: string[] = [];
const load = await phase(duration, samples);
await new Promise((r) => setTimeout(r, 1000));
const end = { rss: rssMb(), tensors: await tensors() };
server.kill('SIGTERM');

console.log(`RSS over the run: ${samples.join(', ')}`);
console.log(`end:   RSS ${end.rss.toFixed(1)} MB, tensors ${end.tensors}`);
console.log(
  `load: ${load.requests.total.toLocaleString('en-US')} requests, ${Math.round(load.requests.average)} req/s, ${load.errors} errors, ${load.non2xx} non-2xx; malformed: ${fuzzed.toLocaleString('en-US')} requests, ${fuzz5xx} 5xx`,
);
const ok = end.tensors === start.tensors && end.rss <= start.rss * 1.25 + 30 && load.errors === 0 && load.non2xx === 0 && fuzz5xx === 0;
if (!ok) console.error('soak: FAILED (tensor count changed, RSS grew, or errors)');
process.exitCode = ok ? 0 : 1;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port: p } = s.address() as AddressInfo;
      s.close(() => resolve(p));
    });
  });
}
