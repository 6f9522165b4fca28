/**
 * The error bodies stay as good as they were: each bad request below gets exactly the status and the
 * `{"error": {"code", "message"}}` recorded in error-bodies.json, which was captured from the server before
 * the route schemas replaced the hand-written contract. A new case is recorded with
 * `UPDATE_ERROR_BODIES=1 npx tsx --test test/serve/error-bodies.test.ts` (then read the diff).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { fixtureModelDir } from '../helpers/fixture-model.ts';
import { buildServer } from '../../src/serve/server.ts';

const goldenPath = fileURLToPath(new URL('./error-bodies.json', import.meta.url));
const json = { 'content-type': 'application/json' };
const px = (v = 0.5) => Array.from({ length: 784 }, () => v);
const withAt = (i: number, v: unknown) => {
  const p: unknown[] = px();
  p[i] = v;
  return { pixels: p };
};
function multipart(parts: { name: string; filename?: string; type?: string; data: string }[]): Pick<InjectOptions, 'payload' | 'headers'> {
  const boundary = 'b0undary';
  let body = '';
  for (const p of parts) {
    body += `--${boundary}\r\nContent-Disposition: form-data; name="${p.name}"${p.filename ? `; filename="${p.filename}"` : ''}\r\n`;
    body += `${p.type ? `Content-Type: ${p.type}\r\n` : ''}\r\n${p.data}\r\n`;
  }
  return { payload: `${body}--${boundary}--\r\n`, headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } };
}
function hugePngHeader(): Buffer {
  const b = Buffer.alloc(45);
  Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]).copy(b, 0);
  b.writeUInt32BE(13, 8);
  b.write('IHDR', 12, 'latin1');
  b.writeUInt32BE(100_000, 16);
  b.writeUInt32BE(100_000, 20);
  b[24] = 8;
  return b;
}

const post = (url: string, payload: unknown): InjectOptions => ({ method: 'POST', url, payload: JSON.stringify(payload), headers: json });
const cases: Record<string, InjectOptions> = {
  'too few pixels': post('/api/predict', { pixels: px().slice(1) }),
  'pixels not an array': post('/api/predict', { pixels: 'zero' }),
  'pixels an object': post('/api/predict', { pixels: { length: 784 } }),
  'a string pixel': post('/api/predict', withAt(5, 'NaN')),
  'a null pixel': post('/api/predict', withAt(9, null)),
  'a pixel above 1': post('/api/predict', withAt(100, 1.5)),
  'a pixel of 200': post('/api/predict', withAt(3, 200)),
  'a negative pixel': post('/api/predict', withAt(0, -0.01)),
  'bad base64': post('/api/predict', { image: 'iVBORw0KGgo$$$' }),
  'base64 of impossible length': post('/api/predict', { image: 'AAAAA' }),
  'image not a string': post('/api/predict', { image: 42 }),
  'a data: URL not base64': post('/api/predict', { image: 'data:image/png,abc' }),
  'empty image': post('/api/predict', { image: '' }),
  'not an image': post('/api/predict', { image: Buffer.from('hello, this is text').toString('base64') }),
  'a GIF': post('/api/predict', { image: Buffer.from('GIF89a\x01\x00\x01\x00').toString('base64') }),
  'a PNG claiming 100,000 x 100,000 pixels': post('/api/predict', { image: hugePngHeader().toString('base64') }),
  'both pixels and image': post('/api/predict', { pixels: px(), image: 'AAAA' }),
  neither: post('/api/predict', { picture: [], colour: 'red' }),
  'an empty object': post('/api/predict', {}),
  'a JSON array body': post('/api/predict', [1, 2, 3]),
  'a JSON null body': post('/api/predict', null),
  'a JSON string body': post('/api/predict', 'seven'),
  'a JSON number body': post('/api/predict', 7),
  'invalid JSON': { method: 'POST', url: '/api/predict', payload: '{"pixels": [0, 1', headers: json },
  'an empty JSON body': { method: 'POST', url: '/api/predict', payload: '', headers: json },
  'prototype poisoning': { method: 'POST', url: '/api/predict', payload: '{"__proto__": {"pixels": 1}}', headers: json },
  'text/plain': { method: 'POST', url: '/api/predict', payload: 'seven', headers: { 'content-type': 'text/plain' } },
  'application/xml': { method: 'POST', url: '/api/predict', payload: '<digit/>', headers: { 'content-type': 'application/xml' } },
  'a body over the limit': { method: 'POST', url: '/api/predict', payload: Buffer.alloc(4 * 2 ** 20 + 1, 0x20), headers: json },
  'raw bytes that are not an image': { method: 'POST', url: '/api/predict', payload: Buffer.from('not a png'), headers: { 'content-type': 'image/png' } },
  'an empty image/png body': { method: 'POST', url: '/api/predict', payload: '', headers: { 'content-type': 'image/png' } },
  'a batch over the limit': post('/api/predict', { batch: Array.from({ length: 65 }, () => ({ pixels: [0] })) }),
  'an empty batch': post('/api/predict', { batch: [] }),
  'a batch that is not an array': post('/api/predict', { batch: { pixels: px() } }),
  'a batch item that is not an object': post('/api/predict', { batch: [{ pixels: px() }, 3] }),
  'a bad item in a batch': post('/api/predict', { batch: [{ pixels: px() }, { pixels: [1] }] }),
  'a bad pixel in a batch': post('/api/predict', { batch: [{ pixels: px() }, withAt(7, 2)] }),
  'an ambiguous batch item': post('/api/predict', { batch: [{ pixels: px(), image: 'AAAA' }] }),
  'a batch item with neither': post('/api/predict', { batch: [{ foo: 1 }] }),
  'batch and pixels': post('/api/predict', { batch: [], pixels: px() }),
  'activations: a batch over its limit': post('/api/activations', { batch: Array.from({ length: 9 }, () => ({ pixels: [0] })) }),
  'activations: wrong length': post('/api/activations', { pixels: [0, 0] }),
  'activations: bad base64': post('/api/activations', { image: '***' }),
  'a multipart file that is not an image': {
    method: 'POST',
    url: '/api/predict',
    ...multipart([{ name: 'file', filename: 'notes.txt', type: 'text/plain', data: 'just text' }]),
  },
  'multipart without a file': { method: 'POST', url: '/api/predict', ...multipart([{ name: 'digit', data: '7' }]) },
  'multipart without a boundary': { method: 'POST', url: '/api/predict', payload: 'x', headers: { 'content-type': 'multipart/form-data' } },
  'no body at all': { method: 'POST', url: '/api/predict' },
  'subset: count zero': { method: 'GET', url: '/api/mnist-subset?count=0' },
  'subset: count over the limit': { method: 'GET', url: '/api/mnist-subset?count=10001' },
  'subset: count not a number': { method: 'GET', url: '/api/mnist-subset?count=12abc' },
  'subset: a negative count': { method: 'GET', url: '/api/mnist-subset?count=-5' },
  'subset: a fractional count': { method: 'GET', url: '/api/mnist-subset?count=1.5' },
  'subset: an unknown split': { method: 'GET', url: '/api/mnist-subset?split=validation' },
  'subset: past the end': { method: 'GET', url: '/api/mnist-subset?split=test&offset=9999&count=2' },
  'subset: count given twice': { method: 'GET', url: '/api/mnist-subset?count=1&count=2' },
  'subset: offset not a number': { method: 'GET', url: '/api/mnist-subset?offset=x' },
  'an unknown route': { method: 'GET', url: '/api/nothing?x=1' },
  'GET on a POST route': { method: 'GET', url: '/api/predict' },
  'DELETE on a GET route': { method: 'DELETE', url: '/api/model' },
  'an unknown wasm file': { method: 'GET', url: '/tfjs-wasm/..%2Fpackage.json' },
  'the page, not built': { method: 'GET', url: '/' },
};

let app: FastifyInstance;
before(async () => {
  app = await buildServer({ modelDir: await fixtureModelDir() });
});
after(async () => {
  await app?.close();
});

test('every bad request gets the recorded status, code and message', async () => {
  const got: Record<string, { status: number; body: unknown }> = {};
  for (const [name, request] of Object.entries(cases)) {
    const r = await app.inject(request);
    got[name] = { status: r.statusCode, body: r.json() };
  }
  if (process.env.UPDATE_ERROR_BODIES === '1' || !existsSync(goldenPath)) {
    writeFileSync(goldenPath, `${JSON.stringify(got, null, 2)}\n`);
    console.log(`recorded ${Object.keys(got).length} error bodies in error-bodies.json`);
  }
  const golden = JSON.parse(readFileSync(goldenPath, 'utf8')) as typeof got;
  for (const name of Object.keys(cases)) {
    assert.ok(golden[name], `no recorded body for "${name}": record it with UPDATE_ERROR_BODIES=1`);
    assert.deepEqual(got[name], golden[name], name);
  }
});
