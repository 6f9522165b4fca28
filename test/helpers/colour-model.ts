/**
 * A small colour (32x32x3) model for the tests: trained here on generated CIFAR-10-format data (coloured
 * bars, datasets.ts) and saved as `convlab train` saves one, with a metrics.json. About 400 steps on wasm.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createCanvas } from '@napi-rs/canvas';
import { colourBars, writeCifarDataset } from './datasets.ts';
import { Rng } from '../../src/data/batches.ts';
import { loadDataset } from '../../src/data/datasets.ts';
import { parseRunConfig, resolveRunConfig } from '../../src/model/validate.ts';
import { initParams, type Params } from '../../src/model/cnn.ts';
import type { NetworkConfig } from '../../src/model/config.ts';
import { saveModel } from '../../src/model/checkpoint.ts';
import { evaluate, train } from '../../src/train/loop.ts';

export interface ColourModel {
  net: NetworkConfig;
  params: Params;
  /** The saved model (model.json, weights.bin, metrics.json). */
  modelDir: string;
  /** A few of the generated test images: 32x32x3 in [0,1]. */
  pictures: Float32Array[];
  accuracy: number;
  testCount: number;
}

/** Trains and saves the model under `root` (the data set in root/colour-bars, the model in root/model). */
export async function trainColourModel(root: string): Promise<ColourModel> {
  const cifar = join(root, 'colour-bars');
  await writeCifarDataset(cifar, colourBars(600, 11), colourBars(200, 12));
  const data = await loadDataset({ kind: 'cifar10', dir: cifar });
  const draft = parseRunConfig(
    {
      network: {
        conv: [
          { filters: 6, size: 5 },
          { filters: 12, size: 5 },
        ],
        dense: [{ units: 24 }, {}],
      },
      train: { batchSize: 32, iterations: 400, optimizer: { type: 'adam', learningRate: 0.003 }, logEvery: 50, validateEvery: 0 },
    },
    'rgb page test',
  );
  const run = resolveRunConfig(draft, { ...data.train, classes: data.classes, name: data.name }, 'rgb page test');
  const net = run.network;
  const params = initParams(net, new Rng(1));
  await train(run, params, data);
  const tested = evaluate(net, params, data.test);
  const modelDir = join(root, 'model');
  await mkdir(modelDir);
  await saveModel(modelDir, net, params, { train: run.train, dataset: data.name });
  await writeFile(
    join(modelDir, 'metrics.json'),
    JSON.stringify({ dataset: data.name, testAccuracy: tested.accuracy, confusionMatrix: tested.confusion, iterations: run.train.iterations }),
  );
  const size = 32 * 32 * 3;
  const pictures = [0, 1, 2, 3].map((i) => data.test.images.slice(i * size, (i + 1) * size));
  return { net, params, modelDir, pictures, accuracy: tested.accuracy, testCount: data.test.count };
}

/** A 32x32 RGB image as a PNG of `scale`× its size (each pixel a scale×scale block: area averaging undoes it exactly). */
export function pngOf(pixels: Float32Array, scale: number): Buffer {
  const canvas = createCanvas(32 * scale, 32 * scale);
  const ctx = canvas.getContext('2d');
  const image = ctx.createImageData(32 * scale, 32 * scale);
  for (let y = 0; y < 32 * scale; y++) {
    for (let x = 0; x < 32 * scale; x++) {
      const src = (Math.floor(y / scale) * 32 + Math.floor(x / scale)) * 3;
      const dst = 4 * (y * 32 * scale + x);
      for (let c = 0; c < 3; c++) image.data[dst + c] = Math.round(255 * pixels[src + c]);
      image.data[dst + 3] = 255;
    }
  }
  ctx.putImageData(image, 0, 0);
  return canvas.encodeSync('png');
}
