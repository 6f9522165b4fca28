import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { ModelFormatError } from '../../src/errors.ts';
import { layersModelIOHandler, loadModel, saveModel } from '../../src/model/checkpoint.ts';
import { seedNetwork, weightSpecs, type NetworkConfig } from '../../src/model/config.ts';

/** One conv block, 'valid' padding, no pooling, two dense layers. */
const validNoPool: NetworkConfig = {
  input: { height: 9, width: 7, channels: 3 },
  conv: [{ filters: 4, size: 3, stride: 2, padding: 'valid', pool: 'none', poolSize: 2, activation: 'relu', order: 'pool-then-activation', dropout: 0 }],
  dense: [
    { units: 6, activation: 'relu', dropout: 0 },
    { units: 3, activation: 'linear', dropout: 0 },
  ],
  weightStddev: 0.05,
  biasInit: 0.05,
};

/** No conv blocks and a relu on the last dense layer: the softmax needs its own layer. */
const denseOnly: NetworkConfig = {
  input: { height: 3, width: 4, channels: 2 },
  conv: [],
  dense: [{ units: 5, activation: 'relu', dropout: 0 }],
  weightStddev: 0.05,
  biasInit: 0.05,
};

let tmpRoot: string;
let counter = 0;
async function freshDir(): Promise<string> {
  return path.join(tmpRoot, `m${counter++}`);
}

function randomWeights(net: NetworkConfig, seed: number): Map<string, tf.Tensor> {
  return new Map(weightSpecs(net).map((s, i) => [s.name, tf.randomNormal(s.shape, 0, 0.2, 'float32', seed + i)]));
}

/** convlab's forward pass, written independently of the saved topology. */
function referenceProbs(net: NetworkConfig, w: Map<string, tf.Tensor>, x: tf.Tensor4D): tf.Tensor {
  return tf.tidy(() => {
    let h: tf.Tensor4D = x;
    net.conv.forEach((block, i) => {
      const kernel = w.get(`conv${i + 1}/kernel`) as tf.Tensor4D;
      h = tf.add(tf.conv2d(h, kernel, block.stride, block.padding), w.get(`conv${i + 1}/bias`)!) as tf.Tensor4D;
      if (block.pool === 'max') h = tf.maxPool(h, block.poolSize, block.poolSize, 'same');
      h = tf.relu(h);
    });
    let f: tf.Tensor = tf.reshape(h, [h.shape[0], -1]);
    net.dense.forEach((layer, j) => {
      f = tf.add(tf.matMul(f as tf.Tensor2D, w.get(`fc${j + 1}/kernel`) as tf.Tensor2D), w.get(`fc${j + 1}/bias`)!);
      if (layer.activation === 'relu') f = tf.relu(f);
    });
    return tf.softmax(f);
  });
}

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

async function rejects(fn: () => Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  await assert.rejects(fn, (err: unknown) => {
    assert.ok(err instanceof ModelFormatError, `expected ModelFormatError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (message) assert.match(err.message, message);
    return true;
  });
}

before(async () => {
  await tf.setBackend('cpu');
  tmpRoot = await fs.mkdtemp(path.join(os.tmpdir(), 'convlab-checkpoint-'));
});

after(async () => {
  await fs.rm(tmpRoot, { recursive: true, force: true });
});

for (const [label, net] of [
  ['lesson network', seedNetwork],
  ['valid padding, no pooling', validNoPool],
  ['dense only, relu last', denseOnly],
] as const) {
  describe(`round trip: ${label}`, () => {
    let dir: string;
    let weights: Map<string, tf.Tensor>;
    const metadata = { train: { iterations: 7 }, testAccuracy: 0.5 };

    before(async () => {
      dir = await freshDir();
      weights = randomWeights(net, 11);
      await saveModel(dir, net, weights, metadata);
    });

    test('writes model.json and weights.bin, no temp files', async () => {
      assert.deepEqual((await fs.readdir(dir)).sort(), ['model.json', 'weights.bin']);
      const json = JSON.parse(await fs.readFile(path.join(dir, 'model.json'), 'utf8'));
      assert.equal(json.format, 'layers-model');
      assert.deepEqual(
        json.weightsManifest[0].weights.map((w: { name: string }) => w.name),
        weightSpecs(net).map((s) => s.name),
      );
    });

    test('loadModel returns identical values, config and metadata', async () => {
      const loaded = await loadModel(dir);
      assert.deepEqual(loaded.net, net);
      assert.deepEqual(loaded.metadata, metadata);
      assert.deepEqual(
        [...loaded.weights.keys()],
        weightSpecs(net).map((s) => s.name),
      );
      for (const [name, tensor] of weights) {
        const back = loaded.weights.get(name)!;
        assert.deepEqual(back.shape, tensor.shape, name);
        assert.deepEqual(back.dataSync(), tensor.dataSync(), name);
      }
      tf.dispose([...loaded.weights.values()]);
    });

    test('tf.loadLayersModel predicts softmax of the reference forward pass', async () => {
      const model = await tf.loadLayersModel(layersModelIOHandler(dir));
      const { height, width, channels } = net.input;
      const x = tf.randomNormal([4, height, width, channels], 0, 1, 'float32', 5) as tf.Tensor4D;
      const got = model.predict(x) as tf.Tensor;
      const want = referenceProbs(net, weights, x);
      assert.deepEqual(got.shape, want.shape);
      const diff = maxAbsDiff(got, want);
      assert.ok(diff < 1e-5, `max abs diff ${diff}`);
      // Guard against a vacuous pass: the outputs are real, non-uniform probabilities.
      assert.ok(maxAbsDiff(want, tf.onesLike(want).div(want.shape[1]!)) > 1e-3, 'reference is uniform');
      tf.dispose([x, got, want]);
      model.dispose();
    });
  });
}

describe('loadModel errors', () => {
  const net = validNoPool;
  let dir: string;

  // Each test damages its own fresh copy.
  async function savedCopy(): Promise<string> {
    dir = await freshDir();
    const weights = randomWeights(net, 3);
    await saveModel(dir, net, weights, {});
    tf.dispose([...weights.values()]);
    return dir;
  }
  async function editJson(d: string, edit: (json: any) => void): Promise<void> {
    const file = path.join(d, 'model.json');
    const json = JSON.parse(await fs.readFile(file, 'utf8'));
    edit(json);
    await fs.writeFile(file, JSON.stringify(json));
  }

  test('MODEL_NOT_FOUND for a missing folder', async () => {
    const missing = path.join(tmpRoot, 'nope');
    await rejects(() => loadModel(missing), 'MODEL_NOT_FOUND', /no model\.json — pass the folder that `convlab train` wrote/);
    await rejects(() => tf.loadLayersModel(layersModelIOHandler(missing)), 'MODEL_NOT_FOUND');
  });

  test('MODEL_NOT_FOUND for a folder without model.json', async () => {
    const d = await savedCopy();
    await fs.rm(path.join(d, 'model.json'));
    await rejects(() => loadModel(d), 'MODEL_NOT_FOUND');
  });

  test('MODEL_BAD_JSON', async () => {
    const d = await savedCopy();
    await fs.writeFile(path.join(d, 'model.json'), '{"format": "layers-model",');
    await rejects(() => loadModel(d), 'MODEL_BAD_JSON', /not valid JSON/);
    await fs.writeFile(path.join(d, 'model.json'), '[1, 2]');
    await rejects(() => loadModel(d), 'MODEL_BAD_JSON', /expected a JSON object/);
  });

  test('MODEL_NO_CONFIG without convlab metadata, or with a broken network config', async () => {
    const d = await savedCopy();
    await editJson(d, (json) => delete json.userDefinedMetadata);
    await rejects(() => loadModel(d), 'MODEL_NO_CONFIG', /not written by convlab/);
    // The file is still a valid layers model: tf.loadLayersModel does not need convlab's metadata.
    (await tf.loadLayersModel(layersModelIOHandler(d))).dispose();

    const d2 = await savedCopy();
    await editJson(d2, (json) => (json.userDefinedMetadata.convlab.network.conv[0].size = 0));
    await rejects(() => loadModel(d2), 'MODEL_NO_CONFIG', /conv\[0\]\)\.size must be a whole number ≥ 1, got 0/);
  });

  test('MODEL_NO_WEIGHTS when weights.bin is deleted', async () => {
    const d = await savedCopy();
    await fs.rm(path.join(d, 'weights.bin'));
    await rejects(() => loadModel(d), 'MODEL_NO_WEIGHTS', /weights\.bin: missing/);
    await rejects(() => tf.loadLayersModel(layersModelIOHandler(d)), 'MODEL_NO_WEIGHTS');
  });

  test('MODEL_WEIGHTS_LENGTH when weights.bin is truncated', async () => {
    const d = await savedCopy();
    const file = path.join(d, 'weights.bin');
    const size = (await fs.stat(file)).size;
    const expected = weightSpecs(net).reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0) * 4;
    assert.equal(size, expected);
    await fs.truncate(file, size - 10);
    await rejects(
      () => loadModel(d),
      'MODEL_WEIGHTS_LENGTH',
      new RegExp(`expected ${expected.toLocaleString('en-US')} bytes for the manifest in model\\.json, got ${(size - 10).toLocaleString('en-US')}`),
    );
    await rejects(() => tf.loadLayersModel(layersModelIOHandler(d)), 'MODEL_WEIGHTS_LENGTH');
  });

  test('MODEL_WEIGHT_SHAPE when the manifest disagrees with the network', async () => {
    const d = await savedCopy();
    // Same element count, different shape: the byte length alone would not catch it.
    await editJson(d, (json) => (json.weightsManifest[0].weights[0].shape = [3, 3, 4, 3]));
    await rejects(() => loadModel(d), 'MODEL_WEIGHT_SHAPE', /conv1\/kernel has shape \[3,3,4,3\].*needs \[3,3,3,4\]/);

    const d2 = await savedCopy();
    await editJson(d2, (json) => json.weightsManifest[0].weights.splice(1, 1));
    await rejects(() => loadModel(d2), 'MODEL_WEIGHT_SHAPE', /no conv1\/bias/);

    const d3 = await savedCopy();
    await editJson(d3, (json) => json.weightsManifest[0].weights.push({ name: 'fc9/bias', shape: [1], dtype: 'float32' }));
    await rejects(() => loadModel(d3), 'MODEL_WEIGHT_SHAPE', /fc9\/bias/);
  });

  test('MODEL_BAD_MANIFEST for paths outside the folder or non-float32 weights', async () => {
    const d = await savedCopy();
    await editJson(d, (json) => (json.weightsManifest[0].paths = ['../weights.bin']));
    await rejects(() => loadModel(d), 'MODEL_BAD_MANIFEST', /not a file name in the model folder/);

    const d2 = await savedCopy();
    await editJson(d2, (json) => (json.weightsManifest[0].weights[0].dtype = 'int32'));
    await rejects(() => loadModel(d2), 'MODEL_BAD_MANIFEST', /not float32/);
  });

  test('MODEL_WEIGHTS_NAN for a NaN or infinite weight', async () => {
    for (const bad of [NaN, -Infinity]) {
      const d = await savedCopy();
      const file = path.join(d, 'weights.bin');
      const bytes = await fs.readFile(file);
      // conv1/kernel has 3*3*3*4 = 108 floats; float 110 is conv1/bias[2].
      bytes.writeFloatLE(bad, 110 * 4);
      await fs.writeFile(file, bytes);
      await rejects(() => loadModel(d), 'MODEL_WEIGHTS_NAN', /conv1\/bias holds (NaN|-Infinity) at index 2/);
    }
  });
});

describe('saveModel failures', () => {
  const net = validNoPool;

  test('refuses wrong or missing weights before writing anything', async () => {
    const dir = await freshDir();
    const weights = randomWeights(net, 1);
    const wrong = new Map(weights);
    wrong.set('fc1/kernel', tf.zeros([5, 6]));
    await rejects(() => saveModel(dir, net, wrong, {}), 'MODEL_WEIGHT_SHAPE', /fc1\/kernel has shape \[5,6\]/);
    const missing = new Map(weights);
    missing.delete('fc2/bias');
    await rejects(() => saveModel(dir, net, missing, {}), 'MODEL_WEIGHT_SHAPE', /no tensor for weight fc2\/bias/);
    const nan = new Map(weights);
    nan.set('conv1/bias', tf.tensor1d([0, NaN, 0, 0]));
    await rejects(() => saveModel(dir, net, nan, {}), 'MODEL_WEIGHTS_NAN');
    await assert.rejects(fs.stat(dir), { code: 'ENOENT' });
  });

  test('a failed save keeps the previous model and leaves no temp files', async () => {
    const dir = await freshDir();
    const good = randomWeights(net, 2);
    await saveModel(dir, net, good, { run: 1 });
    const before = await fs.readFile(path.join(dir, 'model.json'), 'utf8');

    const wrong = new Map(good);
    wrong.set('conv1/kernel', tf.zeros([1, 1, 1, 1]));
    await rejects(() => saveModel(dir, net, wrong, { run: 2 }), 'MODEL_WEIGHT_SHAPE');
    assert.equal(await fs.readFile(path.join(dir, 'model.json'), 'utf8'), before);
    assert.deepEqual((await fs.readdir(dir)).sort(), ['model.json', 'weights.bin']);
    const loaded = await loadModel(dir);
    assert.deepEqual(loaded.metadata, { run: 1 });
    tf.dispose([...loaded.weights.values()]);
  });

  test('a failed rename removes its temp file and writes no model.json', async () => {
    const dir = await freshDir();
    // A non-empty directory named model.json makes the final rename fail, after weights.bin is in place.
    await fs.mkdir(path.join(dir, 'model.json', 'occupied'), { recursive: true });
    await assert.rejects(saveModel(dir, net, randomWeights(net, 4), {}));
    const entries = (await fs.readdir(dir)).sort();
    assert.deepEqual(entries, ['model.json', 'weights.bin'], `left behind: ${entries}`);
    assert.ok((await fs.stat(path.join(dir, 'model.json'))).isDirectory(), 'model.json was replaced');
  });
});
