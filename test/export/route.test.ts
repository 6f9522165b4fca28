/**
 * The served download: `/api/model` links to `/api/model.onnx`, which is an attachment that ONNX Runtime
 * runs to the same probabilities as the server's own /api/predict; `?layout=nhwc` works, a bad layout is a
 * 400 with the API's error body.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { Rng } from '../../src/data/batches.ts';
import { useBackend } from '../../src/backend.ts';
import { presets, type NetworkConfig } from '../../src/model/config.ts';
import { disposeParams, initParams } from '../../src/model/cnn.ts';
import { saveModel } from '../../src/model/checkpoint.ts';
import { buildServer } from '../../src/serve/server.ts';
import type { ModelInfo } from '../../src/serve/schema.ts';
import { ortProbabilities, session } from './runtime.ts';

let dir: string;
let app: FastifyInstance;
const net: NetworkConfig = {
  ...presets.seed.network,
  conv: [{ ...presets.seed.network.conv[0], filters: 4 }],
  dense: [{ units: 10, activation: 'linear', dropout: 0 }],
};
const pixels = Array.from({ length: 784 }, (_, i) => ((i * 37) % 100) / 100);

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'convlab-onnx-route-'));
  await useBackend('cpu');
  const params = initParams(net, new Rng(9));
  await saveModel(dir, net, params, { train: presets.seed.train });
  disposeParams(params);
  app = await buildServer({ modelDir: dir, backend: 'cpu' });
});

after(async () => {
  await app?.close();
  await rm(dir, { recursive: true, force: true });
});

test('/api/model links the ONNX file; it downloads as an attachment and predicts what the server predicts', async () => {
  const info = (await app.inject({ method: 'GET', url: '/api/model' })).json() as ModelInfo;
  assert.equal(info.files.onnx, '/api/model.onnx');

  const served = (await app.inject({ method: 'POST', url: '/api/predict', payload: { pixels } })).json() as { probabilities: number[] };
  const downloads: Record<string, Buffer> = {};
  for (const [layout, query, name] of [
    ['nchw', '', 'model.onnx'],
    ['nhwc', '?layout=nhwc', 'model-nhwc.onnx'],
  ] as const) {
    const r: LightMyRequestResponse = await app.inject({ method: 'GET', url: `${info.files.onnx}${query}` });
    assert.equal(r.statusCode, 200);
    assert.equal(r.headers['content-type'], 'application/octet-stream');
    assert.equal(r.headers['content-disposition'], `attachment; filename="${name}"`);
    downloads[layout] = Buffer.from(r.rawPayload);
    const s = await session(r.rawPayload);
    const got = await ortProbabilities(s, Float32Array.from(pixels), 1, net.input, layout);
    served.probabilities.forEach((p, j) => assert.ok(Math.abs(got.probabilities[j] - p) <= 1e-5, `${layout}: class ${j}: ${got.probabilities[j]} vs ${p}`));
    await s.release();
  }
  // The route keeps each file after the first request: a later download, after the other layout was made,
  // is byte for byte the first one (not a buffer the next export overwrote), and the layouts differ.
  const again = await app.inject({ method: 'GET', url: '/api/model.onnx' });
  assert.ok(again.rawPayload.equals(downloads.nchw), 'the second download of model.onnx differs from the first');
  assert.ok(!downloads.nchw.equals(downloads.nhwc), 'both layouts gave the same file');
});

test('a bad layout is a 400 with the error body', async () => {
  const r = await app.inject({ method: 'GET', url: '/api/model.onnx?layout=chwn' });
  assert.equal(r.statusCode, 400);
  assert.deepEqual(Object.keys(r.json().error).sort(), ['code', 'message']);
  assert.equal(r.json().error.code, 'BAD_REQUEST');
  assert.match(r.json().error.message, /layout=chwn: expected nchw or nhwc/);
});
