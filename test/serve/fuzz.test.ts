/**
 * Property-based fuzzing of every API route: 10,000 random and malformed requests (random JSON, broken JSON,
 * near-valid pixel arrays, random bytes under every content type, oversized bodies, wrong methods). Every
 * answer must be 2xx or 4xx with a JSON error body, the server must keep answering, and the tensor count
 * must be the same at the end as at the start.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance, InjectOptions } from 'fastify';
import fc from 'fast-check';
import { fixtureModelDir } from '../helpers/fixture-model.ts';
import { buildServer, tensorCount } from '../../src/serve/server.ts';

let app: FastifyInstance;

before(async () => {
  app = await buildServer({ modelDir: await fixtureModelDir() });
});
after(async () => {
  await app?.close();
});

const routes = ['/api/predict', '/api/activations', '/api/model', '/healthz', '/api/openapi.json', '/api/mnist-subset', '/nope', '/api/predict/extra'];
const contentTypes = [
  'application/json',
  'text/plain',
  'image/png',
  'image/jpeg',
  'multipart/form-data; boundary=x',
  'multipart/form-data',
  'application/octet-stream',
  '',
];

const nearPixels = fc.array(
  fc.oneof(fc.double({ min: -0.1, max: 1.1 }), fc.double(), fc.constant(Number.NaN), fc.constant(0.5), fc.string({ maxLength: 3 }), fc.constant(null)),
  { minLength: 0, maxLength: 800 },
);

const jsonBody = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
  fc.record({ pixels: nearPixels }).map((v) => JSON.stringify(v)),
  fc
    .record({ image: fc.oneof(fc.string({ maxLength: 50 }), fc.base64String({ maxLength: 200 }), fc.constant('data:image/png;base64,iVBORw0KGgo=')) })
    .map((v) => JSON.stringify(v)),
  fc.record({ batch: fc.array(fc.oneof(fc.record({ pixels: nearPixels }), fc.jsonValue({ maxDepth: 1 })), { maxLength: 70 }) }).map((v) => JSON.stringify(v)),
  fc.string({ maxLength: 100 }).map((s) => `{"pixels": [${s}`), // broken JSON
);

const anyRequest: fc.Arbitrary<InjectOptions> = fc.record({
  method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE'),
  url: fc.oneof(
    fc.constantFrom(...routes),
    fc
      .tuple(fc.constantFrom('/api/mnist-subset'), fc.dictionary(fc.constantFrom('split', 'offset', 'count'), fc.string({ maxLength: 8 }), { maxKeys: 3 }))
      .map(([path, q]) => `${path}?${new URLSearchParams(q)}`),
  ),
  headers: fc.constantFrom(...contentTypes).map((t) => (t ? { 'content-type': t } : {})),
  payload: fc.oneof(
    jsonBody,
    fc.uint8Array({ maxLength: 400 }).map((b) => Buffer.from(b)),
    fc.constant(undefined),
  ),
}) as fc.Arbitrary<InjectOptions>;

/** Most requests aim at the two routes that parse bodies. */
const bodyRequest: fc.Arbitrary<InjectOptions> = fc.record({
  method: fc.constant('POST'),
  url: fc.constantFrom('/api/predict', '/api/activations'),
  headers: fc.constantFrom(...contentTypes.slice(0, 4)).map((t) => ({ 'content-type': t })),
  payload: fc.oneof({ arbitrary: jsonBody, weight: 4 }, { arbitrary: fc.uint8Array({ maxLength: 400 }).map((b) => Buffer.from(b)), weight: 1 }),
}) as fc.Arbitrary<InjectOptions>;

const request = fc.oneof({ arbitrary: bodyRequest, weight: 3 }, { arbitrary: anyRequest, weight: 1 });

test('10,000 random and malformed requests: only 2xx/4xx, JSON errors, the server stays up, tensors flat', async () => {
  const before = tensorCount();
  const statuses = new Map<number, number>();
  let runs = 0;
  await fc.assert(
    fc.asyncProperty(request, async (options) => {
      runs += 1;
      if (options.method === 'GET' || options.method === 'DELETE') delete options.payload;
      const r = await app.inject(options);
      statuses.set(r.statusCode, (statuses.get(r.statusCode) ?? 0) + 1);
      if (r.statusCode >= 500) return false;
      if (r.statusCode >= 400) {
        const body = r.json() as { error?: { code?: string; message?: string } };
        return typeof body.error?.code === 'string' && typeof body.error?.message === 'string';
      }
      return true;
    }),
    { numRuns: 10_000, seed: 2026 },
  );
  // Oversized bodies, which the random sizes above do not reach.
  for (const size of [4 * 2 ** 20 + 1, 8 * 2 ** 20]) {
    const r = await app.inject({ method: 'POST', url: '/api/predict', headers: { 'content-type': 'application/json' }, payload: Buffer.alloc(size, 0x20) });
    assert.equal(r.statusCode, 413);
  }
  const health = await app.inject({ method: 'GET', url: '/healthz' });
  assert.equal(health.statusCode, 200);
  assert.equal(tensorCount(), before, 'tensor count changed across the fuzzed requests');
  console.log(`fuzzed ${runs} requests; statuses ${JSON.stringify(Object.fromEntries([...statuses].sort()))}`);
  assert.ok((statuses.get(200) ?? 0) > 100, 'the fuzzer should also produce some valid requests');
});
