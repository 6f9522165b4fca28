/**
 * Every route through Fastify's `inject` (no socket), and every kind of bad input: each must get a 4xx
 * with `{"error": {"code", "message"}}`, never a 500, and the server must keep answering. Tensor counts
 * stay flat across all of it, and each request logs exactly one line.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import * as tf from '@tensorflow/tfjs';
import fc from 'fast-check';
import { fixtureModelDir } from '../helpers/fixture-model.ts';
import { renderOnPaper } from '../helpers/digits.ts';
import { buildServer, tensorCount } from '../../src/serve/server.ts';
import { ERROR_STATUS, LIMITS, type Activations, type ApiErrorBody, type MnistSubset, type ModelInfo, type Prediction } from '../../src/serve/schema.ts';
import { loadMnist, type MnistSplits } from '../../src/data/mnist.ts';
import { imageFloats } from '../../src/data/images.ts';
import { loadParams, type LoadedModel } from '../../src/model/load.ts';
import { disposeParams, predictProbabilities } from '../../src/model/cnn.ts';

let app: FastifyInstance;
let mnist: MnistSplits;
let reference: LoadedModel;
const lines: string[] = [];
let requests = 0;

/** MNIST test image k: 784 floats in [0,1]. */
const digit = (k: number) => mnist.test.images.slice(k * 784, (k + 1) * 784);
const label = (k: number) => mnist.test.labels[k];
const png = (k: number) => renderOnPaper(digit(k), { scale: 6, w: 220, h: 200, x: 20, y: 10 }).toBuffer('image/png');

async function call(options: InjectOptions): Promise<LightMyRequestResponse> {
  requests += 1;
  return app.inject(options);
}
const post = (url: string, payload: unknown) => call({ method: 'POST', url, payload: payload as InjectOptions['payload'] });
const get = (url: string) => call({ method: 'GET', url });

function multipart(parts: { name: string; filename?: string; type?: string; data: Buffer | string }[]) {
  const boundary = '----convlab-test-boundary';
  const chunks: Buffer[] = [];
  for (const p of parts) {
    const disposition = `form-data; name="${p.name}"${p.filename ? `; filename="${p.filename}"` : ''}`;
    const head = `--${boundary}\r\nContent-Disposition: ${disposition}\r\n${p.type ? `Content-Type: ${p.type}\r\n` : ''}\r\n`;
    chunks.push(Buffer.from(head), Buffer.from(p.data), Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { payload: Buffer.concat(chunks), headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } };
}

function assertError(r: LightMyRequestResponse, status: number, code: string): void {
  assert.equal(r.statusCode, status, `expected ${status} ${code}, got ${r.statusCode}: ${r.body.slice(0, 300)}`);
  const body = r.json() as ApiErrorBody;
  assert.equal(body.error.code, code, body.error.message);
  assert.ok(body.error.message.length > 10, 'a message that says what to do');
  assert.match(r.headers['content-type'] as string, /^application\/json/);
}

/** What convlab's own forward pass says, for comparing the server's answers with. */
function expected(pixels: Float32Array): number[] {
  const p = tf.tidy(() => predictProbabilities(reference.net, reference.params, tf.tensor4d(pixels, [1, 28, 28, 1])));
  const out = Array.from(p.dataSync());
  p.dispose();
  return out;
}

function assertClose(a: number[], b: number[], tol = 1e-5): void {
  assert.equal(a.length, b.length);
  a.forEach((v, i) => assert.ok(Math.abs(v - b[i]) <= tol, `[${i}] ${v} vs ${b[i]}`));
}

before(async () => {
  const modelDir = await fixtureModelDir();
  app = await buildServer({ modelDir, log: (line) => lines.push(line) });
  reference = await loadParams(modelDir);
  mnist = await loadMnist();
});

after(async () => {
  await app?.close();
  if (reference) disposeParams(reference.params);
});

describe('POST /api/predict', () => {
  test("pixels: the class and probabilities of convlab's forward pass, for real test digits", async () => {
    let correct = 0;
    for (let k = 0; k < 20; k++) {
      const r = await post('/api/predict', { pixels: Array.from(digit(k)) });
      assert.equal(r.statusCode, 200, r.body);
      const p = r.json() as Prediction;
      assert.deepEqual(Object.keys(p).sort(), ['class', 'ms', 'probabilities']);
      assertClose(p.probabilities, expected(digit(k)));
      assert.ok(Math.abs(p.probabilities.reduce((a, b) => a + b, 0) - 1) < 1e-5);
      assert.equal(p.class, p.probabilities.indexOf(Math.max(...p.probabilities)));
      assert.ok(p.ms >= 0 && p.ms < 1000);
      if (p.class === label(k)) correct += 1;
    }
    assert.ok(correct >= 17, `${correct}/20 right`); // the fixture model is ~94% accurate
  });

  test('image: a base64 PNG, a data: URL, a JPEG, a multipart upload and raw bytes give the same answer', async () => {
    const k = 0; // a 7
    const bytes = png(k);
    const jpeg = renderOnPaper(digit(k), { scale: 6, w: 220, h: 200, x: 20, y: 10 }).toBuffer('image/jpeg', 92);
    const answers: Prediction[] = [];
    for (const payload of [
      { image: bytes.toString('base64') },
      { image: `data:image/png;base64,${bytes.toString('base64')}` },
      { image: jpeg.toString('base64') },
    ]) {
      const r = await post('/api/predict', payload);
      assert.equal(r.statusCode, 200, r.body);
      answers.push(r.json());
    }
    const form = multipart([{ name: 'file', filename: 'seven.png', type: 'image/png', data: bytes }]);
    const m = await call({ method: 'POST', url: '/api/predict', ...form });
    assert.equal(m.statusCode, 200, m.body);
    answers.push(m.json());
    const raw = await call({ method: 'POST', url: '/api/predict', payload: bytes, headers: { 'content-type': 'image/png' } });
    assert.equal(raw.statusCode, 200, raw.body);
    answers.push(raw.json());
    for (const a of answers) assert.equal(a.class, label(k));
    assertClose(answers[3].probabilities, answers[0].probabilities, 0);
    assertClose(answers[4].probabilities, answers[0].probabilities, 0);
  });

  test('batch: an array of answers, each equal to the single answer; up to the limit', async () => {
    const inputs = [{ pixels: Array.from(digit(1)) }, { image: png(2).toString('base64') }, { pixels: Array.from(digit(3)) }];
    const r = await post('/api/predict', { batch: inputs });
    assert.equal(r.statusCode, 200, r.body);
    const batch = r.json() as Prediction[];
    assert.equal(batch.length, 3);
    for (const [i, input] of inputs.entries()) {
      const single = (await post('/api/predict', input)).json() as Prediction;
      assert.equal(batch[i].class, single.class);
      assertClose(batch[i].probabilities, single.probabilities);
    }
    const full = await post('/api/predict', { batch: Array.from({ length: LIMITS.predictBatch }, (_, k) => ({ pixels: Array.from(digit(k)) })) });
    assert.equal(full.statusCode, 200);
    assert.equal((full.json() as Prediction[]).length, LIMITS.predictBatch);
    const one = await post('/api/predict', { batch: [{ pixels: Array.from(digit(0)) }] });
    assert.ok(Array.isArray(one.json()), 'a batch of one is still an array');
  });

  test('concurrent requests share forward passes, and each still gets its own answer', async () => {
    // 40 requests at once, batches among them and a bad one in the middle: the server groups them
    // into forward passes of up to LIMITS.predictBatch images (PredictBatcher)
    const bodies: unknown[] = Array.from({ length: 40 }, (_, k) =>
      k % 10 === 3 ? { batch: [{ pixels: Array.from(digit(k)) }, { pixels: Array.from(digit(k + 1)) }] } : { pixels: Array.from(digit(k)) },
    );
    bodies[20] = { pixels: [0.5] };
    // Leaks beyond the tensor count: live tensors, the backend's data ids and (on wasm) the heap, after a
    // warm-up round and again after five more rounds of the same 40 concurrent requests.
    const memory = () => {
      const heap = (tf.backend() as unknown as { wasm?: { HEAPU8: Uint8Array } }).wasm?.HEAPU8.byteLength ?? 0;
      return { tensors: tf.memory().numTensors, dataIds: tf.backend().numDataIds(), heap };
    };
    let before: ReturnType<typeof memory> | undefined;
    for (let round = 0; round < 6; round++) {
      const answers = await Promise.all(bodies.map((b) => post('/api/predict', b)));
      answers.forEach((r, k) => {
        if (k === 20) return assertError(r, 400, 'PIXELS_LENGTH');
        assert.equal(r.statusCode, 200, r.body);
        const got = k % 10 === 3 ? (r.json() as Prediction[]) : [r.json() as Prediction];
        got.forEach((p, j) => assertClose(p.probabilities, expected(digit(k + j))));
      });
      if (round === 0) before = memory();
    }
    assert.deepEqual(memory(), before, 'tensors, data ids and wasm heap flat over 200 concurrent requests');
  });
});

describe('POST /api/activations', () => {
  test('the input and every layer with its shape; softmax equals /api/predict', async () => {
    const pixels = Array.from(digit(4));
    const r = await post('/api/activations', { pixels });
    assert.equal(r.statusCode, 200, r.body);
    const a = r.json() as Activations;
    assert.deepEqual(a.input.shape, [28, 28]);
    assertClose(a.input.data, pixels, 0);
    assert.deepEqual(
      a.layers.map((l) => [l.name, l.kind, l.shape.join('x')]),
      [
        ['conv1', 'conv', '14x14x16'],
        ['conv2', 'conv', '7x7x36'],
        ['fc1', 'dense', '128'],
        ['fc2', 'logits', '10'],
        ['softmax', 'softmax', '10'],
      ],
    );
    for (const l of a.layers)
      assert.equal(
        l.data.length,
        l.shape.reduce((x, y) => x * y, 1),
        l.name,
      );
    for (const l of a.layers.slice(0, 3))
      assert.ok(
        l.data.every((v) => v >= 0),
        `${l.name} is after a ReLU`,
      );
    assert.ok(
      a.layers[0].data.some((v) => v > 0),
      'conv1 responds to a digit',
    );
    const p = (await post('/api/predict', { pixels })).json() as Prediction;
    assertClose(a.probabilities, p.probabilities);
    assertClose(a.layers[4].data, p.probabilities);
    assert.equal(a.class, p.class);
  });

  test('an image is preprocessed: the input is the 28x28 the network saw; batches up to their own limit', async () => {
    const r = await post('/api/activations', { batch: [{ image: png(0).toString('base64') }, { pixels: Array.from(digit(1)) }] });
    assert.equal(r.statusCode, 200, r.body);
    const [fromImage, fromPixels] = r.json() as Activations[];
    assert.equal(fromImage.input.data.length, 784);
    assert.equal(Math.max(...fromImage.input.data), 1, 'preprocessing stretches the ink to 1');
    assert.equal(fromImage.class, label(0));
    assert.equal(fromPixels.class, (await post('/api/predict', { pixels: Array.from(digit(1)) })).json().class);
    const over = await post('/api/activations', { batch: Array.from({ length: LIMITS.activationsBatch + 1 }, () => ({ pixels: Array.from(digit(0)) })) });
    assertError(over, 400, 'BATCH_TOO_LARGE');
  });
});

describe('bad input: a 4xx with a code, never a 500', () => {
  const px = () => Array.from(digit(0));
  const withAt = (i: number, v: unknown) => {
    const p: unknown[] = px();
    p[i] = v;
    return { pixels: p };
  };
  const cases: { name: string; request: () => InjectOptions; status: number; code: string }[] = [
    {
      name: 'too few pixels',
      request: () => ({ method: 'POST', url: '/api/predict', payload: { pixels: px().slice(1) } }),
      status: 400,
      code: 'PIXELS_LENGTH',
    },
    {
      name: 'too many pixels',
      request: () => ({ method: 'POST', url: '/api/predict', payload: { pixels: [...px(), 0] } }),
      status: 400,
      code: 'PIXELS_LENGTH',
    },
    { name: 'pixels not an array', request: () => ({ method: 'POST', url: '/api/predict', payload: { pixels: 'zero' } }), status: 400, code: 'PIXELS_LENGTH' },
    { name: 'a "NaN" pixel', request: () => ({ method: 'POST', url: '/api/predict', payload: withAt(5, 'NaN') }), status: 400, code: 'PIXELS_NOT_NUMBER' },
    {
      name: 'a null pixel (JSON.stringify(NaN))',
      request: () => ({ method: 'POST', url: '/api/predict', payload: JSON.stringify(withAt(9, NaN)), headers: { 'content-type': 'application/json' } }),
      status: 400,
      code: 'PIXELS_NOT_NUMBER',
    },
    {
      name: 'a bare NaN literal',
      request: () => ({ method: 'POST', url: '/api/predict', payload: `{"pixels":[NaN${',0'.repeat(783)}]}`, headers: { 'content-type': 'application/json' } }),
      status: 400,
      code: 'BAD_JSON',
    },
    { name: 'a pixel above 1', request: () => ({ method: 'POST', url: '/api/predict', payload: withAt(100, 1.5) }), status: 400, code: 'PIXELS_RANGE' },
    { name: 'a negative pixel', request: () => ({ method: 'POST', url: '/api/predict', payload: withAt(0, -0.01) }), status: 400, code: 'PIXELS_RANGE' },
    {
      name: '0..255 pixels',
      request: () => ({ method: 'POST', url: '/api/predict', payload: { pixels: px().map((v) => v * 255) } }),
      status: 400,
      code: 'PIXELS_RANGE',
    },
    { name: 'bad base64', request: () => ({ method: 'POST', url: '/api/predict', payload: { image: 'iVBORw0KGgo$$$' } }), status: 400, code: 'IMAGE_BASE64' },
    {
      name: 'base64 of impossible length',
      request: () => ({ method: 'POST', url: '/api/predict', payload: { image: 'AAAAA' } }),
      status: 400,
      code: 'IMAGE_BASE64',
    },
    { name: 'image not a string', request: () => ({ method: 'POST', url: '/api/predict', payload: { image: 42 } }), status: 400, code: 'IMAGE_BASE64' },
    { name: 'empty image', request: () => ({ method: 'POST', url: '/api/predict', payload: { image: '' } }), status: 400, code: 'IMAGE_EMPTY' },
    {
      name: 'not an image',
      request: () => ({ method: 'POST', url: '/api/predict', payload: { image: Buffer.from('hello, this is text').toString('base64') } }),
      status: 400,
      code: 'IMAGE_DECODE',
    },
    {
      name: 'a truncated PNG',
      request: () => ({ method: 'POST', url: '/api/predict', payload: { image: png(0).subarray(0, 300).toString('base64') } }),
      status: 400,
      code: 'IMAGE_DECODE',
    },
    {
      name: 'a GIF',
      request: () => ({ method: 'POST', url: '/api/predict', payload: { image: Buffer.from('GIF89a\x01\x00\x01\x00').toString('base64') } }),
      status: 400,
      code: 'IMAGE_DECODE',
    },
    {
      name: 'a PNG claiming 100,000 x 100,000 pixels',
      request: () => ({ method: 'POST', url: '/api/predict', payload: { image: hugePngHeader().toString('base64') } }),
      status: 413,
      code: 'IMAGE_TOO_LARGE',
    },
    {
      name: 'both pixels and image',
      request: () => ({ method: 'POST', url: '/api/predict', payload: { pixels: px(), image: 'AAAA' } }),
      status: 400,
      code: 'INPUT_AMBIGUOUS',
    },
    { name: 'neither', request: () => ({ method: 'POST', url: '/api/predict', payload: { picture: [] } }), status: 400, code: 'INPUT_MISSING' },
    {
      name: 'a JSON array body',
      request: () => ({ method: 'POST', url: '/api/predict', payload: JSON.stringify(px()), headers: { 'content-type': 'application/json' } }),
      status: 400,
      code: 'BAD_REQUEST',
    },
    {
      name: 'a JSON null body',
      request: () => ({ method: 'POST', url: '/api/predict', payload: 'null', headers: { 'content-type': 'application/json' } }),
      status: 400,
      code: 'BAD_REQUEST',
    },
    {
      name: 'invalid JSON',
      request: () => ({ method: 'POST', url: '/api/predict', payload: '{"pixels": [0, 1', headers: { 'content-type': 'application/json' } }),
      status: 400,
      code: 'BAD_JSON',
    },
    {
      name: 'an empty JSON body',
      request: () => ({ method: 'POST', url: '/api/predict', payload: '', headers: { 'content-type': 'application/json' } }),
      status: 400,
      code: 'BAD_JSON',
    },
    {
      name: 'prototype poisoning',
      request: () => ({ method: 'POST', url: '/api/predict', payload: '{"__proto__": {"pixels": 1}}', headers: { 'content-type': 'application/json' } }),
      status: 400,
      code: 'BAD_JSON',
    },
    {
      name: 'text/plain',
      request: () => ({ method: 'POST', url: '/api/predict', payload: 'seven', headers: { 'content-type': 'text/plain' } }),
      status: 415,
      code: 'UNSUPPORTED_MEDIA_TYPE',
    },
    {
      name: 'application/xml',
      request: () => ({ method: 'POST', url: '/api/predict', payload: '<digit/>', headers: { 'content-type': 'application/xml' } }),
      status: 415,
      code: 'UNSUPPORTED_MEDIA_TYPE',
    },
    {
      name: 'a body over the limit',
      request: () => ({ method: 'POST', url: '/api/predict', payload: { image: 'A'.repeat(LIMITS.bodyBytes + 16) } }),
      status: 413,
      code: 'BODY_TOO_LARGE',
    },
    {
      name: 'raw image bytes over the limit',
      request: () => ({ method: 'POST', url: '/api/predict', payload: Buffer.alloc(LIMITS.bodyBytes + 1), headers: { 'content-type': 'image/png' } }),
      status: 413,
      code: 'BODY_TOO_LARGE',
    },
    {
      name: 'raw bytes that are not an image',
      request: () => ({ method: 'POST', url: '/api/predict', payload: Buffer.from('not a png'), headers: { 'content-type': 'image/png' } }),
      status: 400,
      code: 'IMAGE_DECODE',
    },
    {
      name: 'a batch over the limit',
      request: () => ({ method: 'POST', url: '/api/predict', payload: { batch: Array.from({ length: LIMITS.predictBatch + 1 }, () => ({ pixels: px() })) } }),
      status: 400,
      code: 'BATCH_TOO_LARGE',
    },
    { name: 'an empty batch', request: () => ({ method: 'POST', url: '/api/predict', payload: { batch: [] } }), status: 400, code: 'BATCH_EMPTY' },
    {
      name: 'a batch that is not an array',
      request: () => ({ method: 'POST', url: '/api/predict', payload: { batch: { pixels: px() } } }),
      status: 400,
      code: 'BAD_REQUEST',
    },
    {
      name: 'a bad item in a batch',
      request: () => ({ method: 'POST', url: '/api/predict', payload: { batch: [{ pixels: px() }, { pixels: [1] }] } }),
      status: 400,
      code: 'PIXELS_LENGTH',
    },
    {
      name: 'batch and pixels',
      request: () => ({ method: 'POST', url: '/api/predict', payload: { batch: [], pixels: px() } }),
      status: 400,
      code: 'INPUT_AMBIGUOUS',
    },
    {
      name: 'a multipart file that is not an image',
      request: () => ({ method: 'POST', url: '/api/predict', ...multipart([{ name: 'file', filename: 'notes.txt', type: 'text/plain', data: 'just text' }]) }),
      status: 400,
      code: 'IMAGE_DECODE',
    },
    {
      name: 'multipart without a file',
      request: () => ({ method: 'POST', url: '/api/predict', ...multipart([{ name: 'digit', data: '7' }]) }),
      status: 400,
      code: 'MULTIPART_NO_FILE',
    },
    {
      name: 'multipart with two files',
      request: () => ({
        method: 'POST',
        url: '/api/predict',
        ...multipart([
          { name: 'a', filename: 'a.png', type: 'image/png', data: png(0) },
          { name: 'b', filename: 'b.png', type: 'image/png', data: png(1) },
        ]),
      }),
      status: 400,
      code: 'MULTIPART_TOO_MANY_FILES',
    },
    {
      name: 'a multipart file over the limit',
      request: () => ({
        method: 'POST',
        url: '/api/predict',
        ...multipart([{ name: 'file', filename: 'big.png', type: 'image/png', data: Buffer.alloc(LIMITS.bodyBytes + 1) }]),
      }),
      status: 413,
      code: 'BODY_TOO_LARGE',
    },
    {
      name: 'multipart without a boundary',
      request: () => ({ method: 'POST', url: '/api/predict', payload: 'x', headers: { 'content-type': 'multipart/form-data' } }),
      status: 400,
      code: 'BAD_REQUEST',
    },
    {
      name: 'a cut-off multipart body',
      request: () => ({
        method: 'POST',
        url: '/api/predict',
        payload: '--b\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\nabc',
        headers: { 'content-type': 'multipart/form-data; boundary=b' },
      }),
      status: 400,
      code: 'BAD_REQUEST',
    },
    { name: 'no body at all', request: () => ({ method: 'POST', url: '/api/predict' }), status: 400, code: 'BAD_REQUEST' },
    {
      name: 'an empty image/png body',
      request: () => ({ method: 'POST', url: '/api/predict', payload: '', headers: { 'content-type': 'image/png' } }),
      status: 400,
      code: 'IMAGE_EMPTY',
    },
    {
      name: 'activations: a multipart upload that is not an image',
      request: () => ({ method: 'POST', url: '/api/activations', ...multipart([{ name: 'file', filename: 'x.bin', data: Buffer.from([1, 2, 3]) }]) }),
      status: 400,
      code: 'IMAGE_DECODE',
    },
    {
      name: 'activations: wrong length',
      request: () => ({ method: 'POST', url: '/api/activations', payload: { pixels: [0, 0] } }),
      status: 400,
      code: 'PIXELS_LENGTH',
    },
    {
      name: 'activations: bad base64',
      request: () => ({ method: 'POST', url: '/api/activations', payload: { image: '***' } }),
      status: 400,
      code: 'IMAGE_BASE64',
    },
    { name: 'an unknown route', request: () => ({ method: 'GET', url: '/api/nothing' }), status: 404, code: 'NOT_FOUND' },
    { name: 'GET on a POST route', request: () => ({ method: 'GET', url: '/api/predict' }), status: 404, code: 'NOT_FOUND' },
    { name: 'an unknown wasm file', request: () => ({ method: 'GET', url: '/tfjs-wasm/..%2Fpackage.json' }), status: 404, code: 'NOT_FOUND' },
  ];

  for (const c of cases) {
    test(c.name, async () => {
      assertError(await call(c.request()), c.status, c.code);
    });
  }

  test('the server still answers after all of them', async () => {
    assert.equal((await get('/healthz')).statusCode, 200);
    assert.equal((await post('/api/predict', { pixels: px() })).statusCode, 200);
  });

  test('property: any JSON body gets a 200 or a 4xx with a known code, never a 500', async () => {
    const known = new Set(Object.keys(ERROR_STATUS));
    const pixelsLike = fc.array(fc.oneof(fc.double({ noNaN: false }), fc.constant(0.5), fc.string(), fc.constant(null)), { minLength: 780, maxLength: 786 });
    const body = fc.oneof(
      fc.jsonValue({ maxDepth: 3 }),
      fc.record({ pixels: pixelsLike }),
      fc.record({ image: fc.oneof(fc.string(), fc.base64String({ maxLength: 64 })) }),
      fc.record({ batch: fc.array(fc.record({ pixels: pixelsLike }), { maxLength: 3 }) }),
    );
    await fc.assert(
      fc.asyncProperty(body, fc.constantFrom('/api/predict', '/api/activations'), async (payload, url) => {
        const r = await call({ method: 'POST', url, payload: JSON.stringify(payload) ?? 'null', headers: { 'content-type': 'application/json' } });
        if (r.statusCode === 200) return;
        assert.ok(r.statusCode >= 400 && r.statusCode < 500, `${r.statusCode} ${r.body.slice(0, 200)}`);
        assert.ok(known.has((r.json() as ApiErrorBody).error.code), r.body);
      }),
      { numRuns: 150, seed: 5 },
    );
  });

  test('property: random bytes under any accepted content type get a 4xx, never a 500', async () => {
    const known = new Set(Object.keys(ERROR_STATUS));
    const types = [
      'application/json',
      'image/png',
      'image/jpeg',
      'multipart/form-data',
      'multipart/form-data; boundary=b',
      'multipart/form-data; boundary=----x',
    ];
    const png8 = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
    const bytes = fc.oneof(
      fc.uint8Array({ maxLength: 300 }),
      fc.uint8Array({ maxLength: 300 }).map((b) => Uint8Array.from([...png8, ...b])), // PNG signature, garbage after
      fc.uint8Array({ maxLength: 300 }).map((b) => Uint8Array.from([0xff, 0xd8, 0xff, ...b])), // JPEG start, garbage after
      fc.string({ maxLength: 200 }).map((t) => new TextEncoder().encode(`--b\r\nContent-Disposition: form-data; name="file"; filename="f"\r\n\r\n${t}`)),
    );
    await fc.assert(
      fc.asyncProperty(bytes, fc.constantFrom(...types), fc.constantFrom('/api/predict', '/api/activations'), async (body, type, url) => {
        const r = await call({ method: 'POST', url, payload: Buffer.from(body), headers: { 'content-type': type } });
        assert.ok(r.statusCode >= 400 && r.statusCode < 500, `${type}: ${r.statusCode} ${r.body.slice(0, 200)}`);
        assert.ok(known.has((r.json() as ApiErrorBody).error.code), r.body);
      }),
      { numRuns: 200, seed: 11 },
    );
  });
});

describe('the model, the data, the document', () => {
  test('GET /api/model: architecture, config, metrics, files', async () => {
    const r = await get('/api/model');
    assert.equal(r.statusCode, 200);
    const m = r.json() as ModelInfo;
    assert.deepEqual(
      m.architecture.map((l) => l.name),
      ['conv1', 'conv2', 'fc1', 'fc2', 'softmax'],
    );
    assert.deepEqual(
      m.architecture.map((l) => l.parameters),
      [416, 14_436, 225_920, 1_290, 0],
    );
    assert.equal(m.parameters, 242_062);
    assert.equal(m.network.conv[1].filters, 36);
    assert.equal((m.train as { iterations: number }).iterations, 300);
    assert.ok(typeof m.metrics?.testAccuracy === 'number' && m.metrics.testAccuracy > 0.9);
    assert.equal(m.backend, 'wasm');
    assert.deepEqual(m.files, { modelJson: '/model/model.json', weights: '/model/weights.bin', onnx: '/api/model.onnx' });
    assert.equal(m.limits.predictBatch, LIMITS.predictBatch);
  });

  test('GET /model/model.json and weights.bin: the layers-model files', async () => {
    const json = await get('/model/model.json');
    assert.equal(json.statusCode, 200);
    const model = json.json() as { format: string; weightsManifest: { paths: string[] }[] };
    assert.equal(model.format, 'layers-model');
    assert.deepEqual(model.weightsManifest[0].paths, ['weights.bin']);
    const weights = await get('/model/weights.bin');
    assert.equal(weights.statusCode, 200);
    assert.equal(weights.rawPayload.length, 242_062 * 4);
  });

  test('GET /api/mnist-subset: uint8 pixels and labels equal to MNIST, for train and test', async () => {
    for (const [split, data] of [
      ['train', mnist.train],
      ['test', mnist.test],
    ] as const) {
      const r = await get(`/api/mnist-subset?split=${split}&offset=10&count=5`);
      assert.equal(r.statusCode, 200, r.body);
      const s = r.json() as MnistSubset;
      assert.deepEqual([s.split, s.offset, s.count, s.height, s.width], [split, 10, 5, 28, 28]);
      const pixels = Buffer.from(s.pixels, 'base64');
      const labels = Buffer.from(s.labels, 'base64');
      assert.equal(pixels.length, 5 * 784);
      assert.deepEqual([...labels], [...data.labels.subarray(10, 15)]);
      const floats = imageFloats(data, 10, 5);
      for (let i = 0; i < pixels.length; i += 37) assert.equal(Math.fround(pixels[i] / 255), floats[i]);
    }
    const d = (await get('/api/mnist-subset')).json() as MnistSubset;
    assert.deepEqual([d.split, d.offset, d.count], ['train', 0, 1000]);
  });

  for (const [query, why] of [
    ['count=0', 'zero'],
    [`count=${LIMITS.subsetCount + 1}`, 'over the limit'],
    ['count=12abc', 'not a number'],
    ['count=-5', 'negative'],
    ['count=1.5', 'a fraction'],
    ['split=validation', 'an unknown split'],
    ['split=test&offset=9999&count=2', 'past the end'],
    ['count=1&count=2', 'given twice'],
  ]) {
    test(`GET /api/mnist-subset with a count ${why} → 400`, async () => {
      assertError(await get(`/api/mnist-subset?${query}`), 400, 'BAD_REQUEST');
    });
  }

  test('GET /api/openapi.json: OpenAPI 3.1 with every route, and every $ref resolves', async () => {
    const r = await get('/api/openapi.json');
    assert.equal(r.statusCode, 200);
    const doc = r.json() as { openapi: string; paths: Record<string, unknown>; components: { schemas: Record<string, unknown> } };
    assert.equal(doc.openapi, '3.1.0');
    const paths = [
      '/api/predict',
      '/api/activations',
      '/api/model',
      '/api/model.onnx',
      '/api/explain/test-run',
      '/api/explain/errors',
      '/api/explain/embedding',
      '/api/mnist-subset',
      '/api/openapi.json',
      '/healthz',
      '/readyz',
      '/model/model.json',
      '/model/weights.bin',
      '/tfjs-wasm/{file}',
    ];
    assert.deepEqual(Object.keys(doc.paths).sort(), paths.sort(), 'every route, generated from the routes themselves');
    const refs = [...r.body.matchAll(/"\$ref":"#\/components\/schemas\/(\w+)"/g)].map((m) => m[1]);
    assert.ok(refs.length > 10);
    for (const ref of refs) assert.ok(ref in doc.components.schemas, ref);
    for (const code of Object.keys(ERROR_STATUS)) assert.ok(r.body.includes(`"${code}"`), code);
    const predict = (doc.paths['/api/predict'] as { post: { requestBody: { content: Record<string, unknown> } } }).post;
    assert.deepEqual(Object.keys(predict.requestBody.content).sort(), ['application/json', 'image/jpeg', 'image/png', 'multipart/form-data']);
  });

  test('GET /healthz', async () => {
    const r = await get('/healthz');
    assert.equal(r.statusCode, 200);
    const h = r.json() as { status: string; backend: string; tensors: number; predict: { passes: number; images: number } };
    assert.equal(h.status, 'ok');
    assert.equal(h.backend, 'wasm');
    assert.equal(h.tensors, tensorCount());
    assert.ok(h.predict.passes >= 1 && h.predict.images >= h.predict.passes, JSON.stringify(h.predict));
  });

  test('GET /tfjs-wasm/*.wasm: the wasm binaries from node_modules, as application/wasm', async () => {
    const r = await get('/tfjs-wasm/tfjs-backend-wasm-simd.wasm');
    assert.equal(r.statusCode, 200);
    assert.equal(r.headers['content-type'], 'application/wasm');
    assert.deepEqual([...r.rawPayload.subarray(0, 4)], [0x00, 0x61, 0x73, 0x6d]); // "\0asm"
  });

  test('GET / without a built page → 503 PAGE_NOT_BUILT; with one → the page', async () => {
    assertError(await get('/'), 503, 'PAGE_NOT_BUILT');
    const dir = await mkdtemp(join(tmpdir(), 'convlab-web-'));
    try {
      await writeFile(join(dir, 'index.html'), '<!doctype html><title>convlab</title>');
      await mkdir(join(dir, 'assets'));
      await writeFile(join(dir, 'assets', 'app-1234.js'), 'export {};');
      const withPage = await buildServer({ modelDir: await fixtureModelDir(), webDir: dir });
      try {
        const r = await withPage.inject({ method: 'GET', url: '/' });
        assert.equal(r.statusCode, 200);
        assert.match(r.headers['content-type'] as string, /text\/html/);
        assert.match(r.body, /<title>convlab<\/title>/);
        assert.equal(r.headers['cache-control'], 'no-cache');
        const asset = await withPage.inject({ method: 'GET', url: '/assets/app-1234.js' });
        assert.equal(asset.statusCode, 200);
        assert.match(asset.headers['cache-control'] as string, /immutable/, 'hashed assets are cached for good');
        assert.equal((await withPage.inject({ method: 'GET', url: '/api/model' })).statusCode, 200, 'the API wins over the static files');
        assertError(await withPage.inject({ method: 'GET', url: '/missing.js' }), 404, 'NOT_FOUND');
      } finally {
        await withPage.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('resources', () => {
  test('tf.memory().numTensors is flat across good and bad requests', async () => {
    const pixels = Array.from(digit(7));
    const image = png(7).toString('base64');
    const round = async () => {
      await post('/api/predict', { pixels });
      await post('/api/predict', { image });
      await post('/api/predict', { batch: [{ pixels }, { image }] });
      await post('/api/activations', { pixels });
      await post('/api/activations', { batch: [{ pixels }, { image }] });
      await post('/api/predict', { pixels: pixels.slice(1) });
      await post('/api/predict', { image: 'nope!' });
      await get('/api/model');
      await get('/healthz');
    };
    await round(); // warm-up: first calls may create lasting state in the backend
    const before = tensorCount();
    for (let i = 0; i < 5; i++) await round();
    assert.equal(tensorCount(), before);
  });

  test('one log line per request, in a fixed format', () => {
    assert.equal(lines.length, requests, 'one line per request');
    const format = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z 127\.0\.0\.1 (GET|POST) \S+ \d{3} \d+\.\d ms$/;
    for (const line of lines) assert.match(line, format);
    assert.ok(lines.some((l) => / POST \/api\/predict 200 /.test(l)));
    assert.ok(lines.some((l) => / POST \/api\/predict 413 /.test(l)));
  });
});

/** The first 33 bytes of a PNG whose header declares 100,000 x 100,000 pixels. */
function hugePngHeader(): Buffer {
  const b = Buffer.alloc(45);
  Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]).copy(b, 0);
  b.writeUInt32BE(13, 8);
  b.write('IHDR', 12, 'latin1');
  b.writeUInt32BE(100_000, 16);
  b.writeUInt32BE(100_000, 20);
  b[24] = 8; // bit depth
  b[25] = 0; // grayscale
  return b;
}
