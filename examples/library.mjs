// convlab as a library: train the lesson's network for a few steps, test it, save it, load it back and
// classify a digit. Run it with `node examples/library.mjs [OUT_DIR]` (the package test runs it).
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng, evaluate, initParams, loadMnist, loadParams, predict, presets, saveModel, subset, train, useBackend } from 'convlab';

await useBackend('wasm'); // nothing happens at import time: the backend starts here

const data = await loadMnist(); // the bundled MNIST: 55,000 train, 5,000 validation, 10,000 test
const run = {
  network: presets.default.network,
  train: { ...presets.default.train, iterations: 30, logEvery: 10, validateEvery: 0 },
};
const params = initParams(run.network, new Rng(run.train.seed));

// The same hooks the CLI's log lines and progress bar use.
const hooks = { onLog: (entry, total) => console.log(`iter ${entry.iteration}/${total} | loss ${entry.loss.toFixed(4)}`) };
const result = await train(run, params, { train: data.train, validation: subset(data.validation, 0, 1000) }, hooks);
const test = evaluate(run.network, params, subset(data.test, 0, 1000));
console.log(`validation ${(result.validation.accuracy * 100).toFixed(1)}%, test ${(test.accuracy * 100).toFixed(1)}% after ${result.iterations} steps`);

const dir = process.argv[2] ?? (await mkdtemp(join(tmpdir(), 'convlab-')));
await saveModel(dir, run.network, params, { train: run.train, dataset: 'mnist' });
const model = await loadParams(dir); // model.json + weights.bin, readable by tf.loadLayersModel too
const [first] = predict(model, data.test.images.subarray(0, 28 * 28));
console.log(`test image 0 is a ${data.test.labels[0]}; the model says ${first.class} (${(first.probabilities[first.class] * 100).toFixed(1)}%)`);
console.log(`saved in ${dir}`);
