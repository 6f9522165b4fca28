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

test('a window gathers requests that arrive while another pass runs; on an idle server a request goes at once', async () => {
  const sizes: number[] = [];
  const batcher = new PredictBatcher([runner(sizes, 60), runner(sizes, 60)], { windowMs: 30, maxBatch: 64 });
  const t0 = performance.now();
  const first = batcher.predict([digit(0)], [0]); // idle server: at once, busy for 60 ms
  while (sizes.length === 0) await new Promise((r) => setImmediate(r));
  const t1 = performance.now();
  const second = batcher.predict([digit(1)], [0]); // a pass is running: waits up to 30 ms for company
  await new Promise((r) => setTimeout(r, 10));
  const third = batcher.predict([digit(2)], [0]); // joins it
  await first;
  const firstTook = performance.now() - t0;
  await Promise.all([second, third]);
  const secondTook = performance.now() - t1;
  assert.deepEqual(sizes, [1, 2], 'the second and third share a pass on the other runner');
  assert.ok(firstTook < 60 + 25, `the lone first request took ${firstTook.toFixed(1)} ms: it waited for the window`);
  assert.ok(secondTook >= 25 + 60, `the second request took ${secondTook.toFixed(1)} ms: it did not wait for its window`);
  assert.ok(secondTook < 30 + 60 + 200, `the second request took ${secondTook.toFixed(1)} ms`);
});

test('a full batch goes at once, even while another pass runs', async () => {
  const sizes: number[] = [];
  const batcher = new PredictBatcher([runner(sizes, 40), runner(sizes, 40)], { windowMs: 5000, maxBatch: 3 });
  const t0 = performance.now();
  const busy = batcher.predict([digit(0)], [0]);
  await new Promise((r) => setTimeout(r, 5));
  await batcher.predict([digit(1), digit(2), digit(3)], [0, 0, 0]);
  await busy;
  assert.deepEqual(sizes, [1, 3]);
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

test('a runner that comes free starts its next pass on the queued requests before the last pass is answered', async () => {
  const events: string[] = [];
  let passes = 0;
  const slow: Runner = {
    run: async (images) => {
      const n = ++passes;
      events.push(`pass ${n} starts`);
      await new Promise((r) => setTimeout(r, 20));
      return softmaxOf(model.net, model.params, images);
    },
    close: async () => {},
  };
  const batcher = new PredictBatcher([slow], { windowMs: 2 });
  const first = batcher.predict([digit(0)], [0]).then(() => events.push('first answered'));
  await new Promise((r) => setTimeout(r, 5)); // the first pass is running
  const second = batcher.predict([digit(1)], [0]).then(() => events.push('second answered'));
  await Promise.all([first, second]);
  // the worker computes the next batch while this thread sends the answers of the last (no idle gap between passes)
  assert.deepEqual(events, ['pass 1 starts', 'pass 2 starts', 'first answered', 'second answered']);
});
