/**
 * A colour (32x32x3) model through the API and `convlab predict`: a picture is decoded with the same checks
 * as a digit, resized to the model's input by area averaging (colourInput, as the page does) and classified
 * as the library classifies colourInput of the same picture. JSON pixels are counted against the served
 * model: 3,072 values are an input, 784 are refused with the count the model expects. The model is the
 * small one the page's colour test trains (test/helpers/colour-model.ts).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import * as tf from '@tensorflow/tfjs';
import { pngOf, trainColourModel, type ColourModel } from '../helpers/colour-model.ts';
import { convlab } from '../helpers/cli.ts';
import { fixtureModelDir } from '../helpers/fixture-model.ts';
import { useBackend } from '../../src/backend.ts';
import { disposeParams, predictProbabilities } from '../../src/model/cnn.ts';
import { colourInput, decodeRgba } from '../../src/predict/preprocess.ts';
import { buildServer } from '../../src/serve/server.ts';
import type { ApiErrorBody, Prediction } from '../../src/serve/schema.ts';

let root: string;
let model: ColourModel;
let app: FastifyInstance;

before(async () => {
  await useBackend('wasm');
  root = await mkdtemp(join(tmpdir(), 'convlab-colour-'));
  model = await trainColourModel(root);
  app = await buildServer({ modelDir: model.modelDir });
});

after(async () => {
  await app?.close();
  if (model) disposeParams(model.params);
  if (root) await rm(root, { recursive: true, force: true });
});

/** The library's probabilities for one 32x32x3 input. */
function library(pixels: Float32Array): number[] {
  const probs = tf.tidy(() => predictProbabilities(model.net, model.params, tf.tensor4d(pixels, [1, 32, 32, 3])));
  const p = Array.from(probs.dataSync());
  probs.dispose();
  return p;
}

/** The library's own preparation of a picture: decodeRgba → colourInput. */
async function prepared(png: Buffer): Promise<Float32Array> {
  const picture = await decodeRgba(png, 'test');
  return colourInput(picture.rgba, picture.width, picture.height, { height: 32, width: 32 });
}

const argmax = (p: number[]) => p.indexOf(Math.max(...p));

function assertClose(got: number[], want: number[], what: string): void {
  assert.equal(got.length, want.length, what);
  const worst = Math.max(...got.map((v, i) => Math.abs(v - want[i])));
  assert.ok(worst <= 1e-5, `${what}: probabilities differ from the library's by up to ${worst}`);
}

/** A picture not a whole multiple of 32 (area averaging mixes pixels), with a transparent corner. */
async function oddPicture(k: number): Promise<Buffer> {
  const { createCanvas, loadImage } = await import('@napi-rs/canvas');
  const canvas = createCanvas(77, 61);
  const ctx = canvas.getContext('2d');
  ctx.drawImage(await loadImage(pngOf(model.pictures[k], 1)), 0, 0, 77, 61);
  ctx.clearRect(0, 0, 12, 9);
  return canvas.encodeSync('png');
}

test('a colour picture (base64, multipart, raw image/png) is answered as the library answers colourInput of it', async () => {
  for (const k of [0, 1, 2, 3]) {
    for (const png of [pngOf(model.pictures[k], 3), await oddPicture(k)]) {
      const input = await prepared(png);
      const want = library(input);
      const json = await app.inject({ method: 'POST', url: '/api/predict', payload: { image: png.toString('base64') } });
      assert.equal(json.statusCode, 200, json.body);
      const answer = json.json() as Prediction;
      assertClose(answer.probabilities, want, `picture ${k} as base64`);
      assert.equal(answer.class, argmax(want));

      const boundary = '----colour-test';
      const body = Buffer.concat([
        Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="bars.png"\r\nContent-Type: image/png\r\n\r\n`),
        png,
        Buffer.from(`\r\n--${boundary}--\r\n`),
      ]);
      const form = await app.inject({
        method: 'POST',
        url: '/api/predict',
        payload: body,
        headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
      });
      assert.equal(form.statusCode, 200, form.body);
      assertClose((form.json() as Prediction).probabilities, want, `picture ${k} as multipart`);
      const raw = await app.inject({ method: 'POST', url: '/api/predict', payload: png, headers: { 'content-type': 'image/png' } });
      assert.equal(raw.statusCode, 200, raw.body);
      assertClose((raw.json() as Prediction).probabilities, want, `picture ${k} as image/png`);
    }
    // the 3x picture comes back to the data set's own 32x32 image (each pixel a 3x3 block)
    const worst = Math.max(...(await prepared(pngOf(model.pictures[k], 3))).map((v, i) => Math.abs(v - model.pictures[k][i])));
    assert.ok(worst <= 0.5 / 255, `picture ${k}: colourInput is off the data set's image by ${worst}`);
  }
});

test('JSON pixels are counted against the served model: 3,072 are its input, 784 are refused naming 3,072', async () => {
  const pixels = Array.from(model.pictures[2]);
  const one = await app.inject({ method: 'POST', url: '/api/predict', payload: { pixels } });
  assert.equal(one.statusCode, 200, one.body);
  assertClose((one.json() as Prediction).probabilities, library(model.pictures[2]), 'JSON pixels');
  const batch = await app.inject({
    method: 'POST',
    url: '/api/predict',
    payload: { batch: [{ pixels }, { image: pngOf(model.pictures[1], 2).toString('base64') }] },
  });
  assert.equal(batch.statusCode, 200, batch.body);
  assert.equal((batch.json() as Prediction[]).length, 2);

  for (const [payload, where] of [
    [{ pixels: new Array(784).fill(0) }, 'pixels'],
    [{ batch: [{ pixels }, { pixels: new Array(3071).fill(0) }] }, 'batch[1].pixels'],
  ] as const) {
    const r = await app.inject({ method: 'POST', url: '/api/predict', payload });
    assert.equal(r.statusCode, 400, r.body);
    const { error } = r.json() as ApiErrorBody;
    assert.equal(error.code, 'PIXELS_LENGTH');
    assert.match(error.message, new RegExp(`^"${where.replace(/[[\].]/g, '\\$&')}" has \\d+ values, expected 3072 \\(a 32x32x3 image`));
  }
  const activations = await app.inject({ method: 'POST', url: '/api/activations', payload: { pixels: new Array(784).fill(0) } });
  assert.equal(activations.statusCode, 400, activations.body);
  assert.match((activations.json() as ApiErrorBody).error.message, /expected 3072/);
});

test('convlab predict on a colour model prints the class the library gives; --json --preprocessed is the 32x32x3 input; --show draws it', async () => {
  const files: string[] = [];
  for (const k of [0, 1, 2, 3]) {
    const file = join(root, `bars-${k}.png`);
    await writeFile(file, k % 2 ? await oddPicture(k) : pngOf(model.pictures[k], 3));
    files.push(file);
  }
  const text = convlab('predict', '--model', model.modelDir, ...files);
  assert.equal(text.code, 0, text.stderr);
  const lines = text.stdout.trim().split('\n');
  assert.equal(lines.length, files.length);
  for (const [i, file] of files.entries()) {
    const want = argmax(library(await prepared(await readFile(file))));
    assert.match(lines[i], new RegExp(`^${file.replace(/[.\\]/g, '\\$&')}: ${want}  \\(`), `predict and the library disagree on ${file}`);
  }

  const show = join(root, 'show');
  const json = convlab('predict', '--model', model.modelDir, '--json', '--preprocessed', '--show', show, files[1]);
  assert.equal(json.code, 0, json.stderr);
  const p = JSON.parse(json.stdout) as { class: number; probabilities: number[]; preprocessed: number[] };
  const input = await prepared(await readFile(files[1]));
  assert.equal(p.preprocessed.length, 32 * 32 * 3);
  assert.ok(Math.max(...p.preprocessed.map((v, i) => Math.abs(v - input[i]))) <= 1e-4, 'the printed input is colourInput of the picture');
  assertClose(p.probabilities, library(input), 'predict --json');
  const png = await readFile(join(show, 'bars-1.show.png'));
  assert.deepEqual([...png.subarray(1, 4)].map((b) => String.fromCharCode(b)).join(''), 'PNG');
});

test('each server explains rejected bodies with its own model: a digit server built later does not change the colour one', async () => {
  const digits = await buildServer({ modelDir: await fixtureModelDir() });
  try {
    const count = async (server: FastifyInstance) => {
      const r = await server.inject({ method: 'POST', url: '/api/predict', payload: {} });
      assert.equal(r.statusCode, 400, r.body);
      return (r.json() as ApiErrorBody).error.message;
    };
    assert.match(await count(app), /3072/, 'the colour server names its own input');
    assert.match(await count(digits), /784/, 'the digit server names its own input');
    assert.doesNotMatch(await count(app), /784 /, 'the colour server still names its own input after another was built');
  } finally {
    await digits.close();
  }
});
