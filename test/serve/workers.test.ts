/** /api/predict on worker threads: the same answers as the main thread, concurrent requests, /readyz. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import { fixtureModelDir } from '../helpers/fixture-model.ts';
import { buildServer, tensorCount } from '../../src/serve/server.ts';
import { loadMnist, type MnistSplits } from '../../src/data/mnist.ts';
import type { Prediction } from '../../src/serve/schema.ts';

let onWorkers: FastifyInstance;
let onMain: FastifyInstance;
let mnist: MnistSplits;
const digit = (k: number) => Array.from(mnist.test.images.slice(k * 784, (k + 1) * 784));

before(async () => {
  const modelDir = await fixtureModelDir();
  onWorkers = await buildServer({ modelDir, workers: 2 });
  onMain = await buildServer({ modelDir, workers: 0 });
  mnist = await loadMnist();
});
after(async () => {
  await onWorkers?.close();
  await onMain?.close();
});

const post = (app: FastifyInstance, payload: unknown) => app.inject({ method: 'POST', url: '/api/predict', payload: payload as object });

test('/readyz reports the workers', async () => {
  assert.deepEqual((await onWorkers.inject({ method: 'GET', url: '/readyz' })).json(), { ready: true, workers: 2 });
  assert.deepEqual((await onMain.inject({ method: 'GET', url: '/readyz' })).json(), { ready: true, workers: 0 });
});

test("60 concurrent requests on 2 workers: each answer equals the main thread's; no tensors left on the main thread", async () => {
  const tensors = tensorCount();
  const bodies = Array.from({ length: 60 }, (_, k) => (k % 7 === 0 ? { batch: [{ pixels: digit(k) }, { pixels: digit(k + 1) }] } : { pixels: digit(k) }));
  const [fromWorkers, fromMain] = await Promise.all([Promise.all(bodies.map((b) => post(onWorkers, b))), Promise.all(bodies.map((b) => post(onMain, b)))]);
  fromWorkers.forEach((r, k) => {
    assert.equal(r.statusCode, 200, r.body);
    const a = [r.json()].flat() as Prediction[];
    const b = [fromMain[k].json()].flat() as Prediction[];
    assert.equal(a.length, b.length);
    a.forEach((p, j) => {
      assert.equal(p.class, b[j].class);
      p.probabilities.forEach((v, i) => assert.ok(Math.abs(v - b[j].probabilities[i]) < 1e-5, `${k}/${j}[${i}] ${v} vs ${b[j].probabilities[i]}`));
    });
  });
  assert.equal(tensorCount(), tensors);
});

test('draining: /readyz answers 503 and API requests get NOT_READY (a load balancer retries elsewhere); /healthz stays up', async () => {
  const app = await buildServer({ modelDir: await fixtureModelDir(), workers: 0 });
  try {
    app.drain();
    const ready = await app.inject({ method: 'GET', url: '/readyz' });
    assert.equal(ready.statusCode, 503);
    assert.deepEqual(ready.json(), { ready: false, workers: 0, reason: 'draining: shutting down' });
    const r = await post(app, { pixels: digit(0) });
    assert.equal(r.statusCode, 503);
    assert.equal(r.json().error.code, 'NOT_READY');
    assert.equal((await app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);
  } finally {
    await app.close();
  }
});
