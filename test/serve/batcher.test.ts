/** The dynamic batcher on its own: which requests share a pass, the window, the order of the answers. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { fixtureModelDir } from '../helpers/fixture-model.ts';
import { useBackend } from '../../src/backend.ts';
import { loadParams, type LoadedModel } from '../../src/model/load.ts';
import { disposeParams } from '../../src/model/cnn.ts';
import { loadMnist, type MnistSplits } from '../../src/data/mnist.ts';
import { PredictBatcher, type Runner } from '../../src/serve/batcher.ts';
import { softmaxOf } from '../../src/serve/inference.ts';

let model: LoadedModel;
let mnist: MnistSplits;
const digit = (k: number) => mnist.test.images.slice(k * 784, (k + 1) * 784);

before(async () => {
  await useBackend('wasm');
  model = await loadParams(await fixtureModelDir());
  mnist = await loadMnist();
});
after(() => disposeParams(model.params));

/** A main-thread runner that records each pass's size, optionally slowed down. */
function runner(sizes: number[], delayMs = 0): Runner {
  return {
    run: async (images) => {
      sizes.push(images.length);
      if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
      return softmaxOf(model.net, model.params, images);
    },
    close: async () => {},
  };
}
const expected = (im: Float32Array) => Array.from(softmaxOf(model.net, model.params, [im]));
const close = (a: number[], b: number[]) => a.every((v, i) => Math.abs(v - b[i]) < 1e-5);

test('requests made in one turn share a pass of at most maxBatch images; answers in order', async () => {
  const sizes: number[] = [];
  const batcher = new PredictBatcher([runner(sizes)], { maxBatch: 8 });
  const jobs = [1, 3, 2, 4, 1].map((n, j) => Array.from({ length: n }, (_, i) => digit(10 * j + i)));
  const answers = await Promise.all(
    jobs.map((images) =>
      batcher.predict(
        images,
        images.map(() => 0),
      ),
    ),
  );
  assert.deepEqual(sizes, [6, 5], 'passes of 1+3+2 and 4+1 images');
  jobs.forEach((images, j) => images.forEach((im, i) => assert.ok(close(answers[j][i].probabilities, expected(im)), `job ${j} image ${i}`)));
  await batcher.predict([digit(0)], [0]);
  assert.deepEqual(sizes, [6, 5, 1], 'a later request gets its own pass');
});

test('a window gathers requests that arrive over a few ms; a lone request waits only the window', async () => {
  const sizes: number[] = [];
  const batcher = new PredictBatcher([runner(sizes)], { windowMs: 30, maxBatch: 64 });
  const t0 = performance.now();
  const first = batcher.predict([digit(0)], [0]);
  await new Promise((r) => setTimeout(r, 10));
  const second = batcher.predict([digit(1)], [0]);
  await Promise.all([first, second]);
  assert.deepEqual(sizes, [2], 'both in one pass');
  const lone = performance.now();
  await batcher.predict([digit(2)], [0]);
  const waited = performance.now() - lone;
  assert.ok(waited >= 25 && waited < 30 + 200, `a lone request took ${waited.toFixed(1)} ms with a 30 ms window`);
  assert.ok(performance.now() - t0 < 2000);
});

test('a full batch goes at once, without waiting for the window', async () => {
  const sizes: number[] = [];
  const batcher = new PredictBatcher([runner(sizes)], { windowMs: 5000, maxBatch: 4 });
  const t0 = performance.now();
  await batcher.predict([digit(0), digit(1), digit(2), digit(3)], [0, 0, 0, 0]);
  assert.ok(performance.now() - t0 < 1000, 'did not wait 5 s');
});

test('while every runner is busy, requests queue and the next free runner takes them all', async () => {
  const sizes: number[] = [];
  const batcher = new PredictBatcher([runner(sizes, 50), runner(sizes, 50)], { maxBatch: 64 });
  const a = batcher.predict([digit(0)], [0]);
  const b = new Promise((r) => setImmediate(r)).then(() => batcher.predict([digit(1)], [0])); // next turn: the second runner
  await new Promise((r) => setTimeout(r, 10));
  const rest = Array.from({ length: 10 }, (_, k) => batcher.predict([digit(2 + k)], [0]));
  const all = await Promise.all([a, b, ...rest]);
  assert.deepEqual(sizes, [1, 1, 10], 'two single passes, then the queue of 10 in one');
  all.forEach((answer, k) => assert.ok(close(answer[0].probabilities, expected(digit(k)))));
});

test('a failing pass rejects only its own requests; the batcher goes on', async () => {
  let fail = true;
  const flaky: Runner = {
    run: async (images) => {
      if (fail) {
        fail = false;
        throw new Error('boom');
      }
      return softmaxOf(model.net, model.params, images);
    },
    close: async () => {},
  };
  const batcher = new PredictBatcher([flaky]);
  await assert.rejects(batcher.predict([digit(0)], [0]), /boom/);
  assert.equal((await batcher.predict([digit(0)], [0])).length, 1);
});
