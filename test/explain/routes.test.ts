/**
 * The explain routes through app.inject: the test run's confusion matrix is the one metrics.json
 * recorded, a cell's images are exactly that cell's test images, bad queries are 400s with a code,
 * and nothing leaks tensors.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import * as tf from '@tensorflow/tfjs';
import { buildServer } from '../../src/serve/server.ts';
import { fixtureModelDir } from '../helpers/fixture-model.ts';
import type { ErrorCell, TestRun } from '../../src/explain/api.ts';

let app: FastifyInstance;
before(async () => {
  app = await buildServer({ modelDir: await fixtureModelDir() });
});
after(async () => {
  await app?.close();
});

test('test-run: the confusion matrix of the served model, the same as metrics.json', async () => {
  const r = await app.inject({ method: 'GET', url: '/api/explain/test-run' });
  assert.equal(r.statusCode, 200, r.body);
  const run = JSON.parse(r.body) as TestRun;
  assert.equal(run.total, 10_000);
  assert.equal(run.classes, 10);
  assert.equal(
    run.confusion.flat().reduce((a, b) => a + b, 0),
    10_000,
  );
  assert.deepEqual(run.confusion, run.metricsConfusion, "the wasm backend gives the training run's own answers");
  assert.equal(
    run.correct,
    run.confusion.reduce((n, row, i) => n + row[i], 0),
  );
});

test("errors: a cell's images are that cell's test images, with pixels and probabilities", async () => {
  const run = JSON.parse((await app.inject({ method: 'GET', url: '/api/explain/test-run' })).body) as TestRun;
  const tensors = tf.memory().numTensors;
  let checked = 0;
  for (let t = 0; t < 10 && checked < 3; t++) {
    for (let p = 0; p < 10; p++) {
      if (t === p || run.confusion[t][p] === 0) continue;
      const r = await app.inject({ method: 'GET', url: `/api/explain/errors?true=${t}&predicted=${p}&limit=5` });
      assert.equal(r.statusCode, 200, r.body);
      const cell = JSON.parse(r.body) as ErrorCell;
      assert.equal(cell.count, run.confusion[t][p]);
      assert.equal(cell.images.length, Math.min(5, cell.count));
      for (const im of cell.images) {
        assert.equal(im.label, t);
        assert.equal(im.predicted, p);
        assert.equal(Buffer.from(im.pixels, 'base64').length, 784);
        assert.equal(im.probabilities.indexOf(Math.max(...im.probabilities)), p);
      }
      assert.deepEqual(
        [...cell.images.map((i) => i.index)].sort((a, b) => a - b),
        cell.images.map((i) => i.index),
        'in test-set order',
      );
      checked++;
      break;
    }
  }
  assert.equal(checked, 3);
  assert.equal(tf.memory().numTensors, tensors);
});

test('errors: bad queries are 400 BAD_REQUEST with the fix in the message', async () => {
  for (const q of ['', '?true=3', '?true=3&predicted=10', '?true=-1&predicted=2', '?true=a&predicted=2', '?true=1&predicted=2&limit=1000']) {
    const r = await app.inject({ method: 'GET', url: `/api/explain/errors${q}` });
    assert.equal(r.statusCode, 400, q);
    const body = JSON.parse(r.body) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'BAD_REQUEST', q);
    assert.match(body.error.message, /must be a whole number from 0 to \d+.*e\.g\. \/api\/explain\/errors\?true=3&predicted=5/, q);
  }
});
