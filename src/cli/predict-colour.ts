/**
 * `convlab predict` for a colour model (height×width×3, e.g. CIFAR-10): each picture decoded with the same
 * checks as for digits (decodeRgba), resized to the model's input by area averaging (colourInput, as the
 * page and the server do), classified. The output lines are those of digit models; --show draws the picture
 * beside the input the network saw.
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { predictProbabilities, type Params } from '../model/cnn.ts';
import type { NetworkConfig } from '../model/config.ts';
import { colourInput, decodeRgba, readPicture, type DecodeTiming, type RgbaImage } from '../predict/preprocess.ts';
import { ConvlabError, ImageError } from '../errors.ts';
import { LOW_CONFIDENCE, top3, type PredictFlags, type Prediction } from './predict.ts';

export async function predictColour(files: string[], flags: PredictFlags, net: NetworkConfig, params: Params): Promise<void> {
  const { height, width } = net.input;
  if (flags.show) await mkdir(flags.show, { recursive: true });
  let failed = 0;
  for (const file of files) {
    let picture: RgbaImage, pixels: Float32Array;
    const t0 = performance.now();
    const decoding = { decode: 0, shrink: 0, gray: 0, width: 0, height: 0 } satisfies DecodeTiming;
    try {
      picture = await decodeRgba(await readPicture(file), file, decoding);
      pixels = colourInput(picture.rgba, picture.width, picture.height, net.input);
    } catch (err) {
      // One bad picture should not hide the answers for the others: report it and go on.
      if (!(err instanceof ConvlabError) || files.length === 1) throw err;
      console.error(`convlab: ${err.message}`);
      failed += 1;
      continue;
    }
    const t1 = performance.now();
    const probs = tf.tidy(() => predictProbabilities(net, params, tf.tensor4d(pixels, [1, height, width, 3])));
    const probabilities = Array.from(await probs.data());
    probs.dispose();
    if (flags.timing) {
      const ms = (v: number) => `${v.toFixed(0)} ms`;
      console.error(
        `convlab: timing: ${file}: decode ${ms(decoding.decode)} (${decoding.width}x${decoding.height}), shrink ${ms(decoding.shrink)}, ` +
          `resize to ${width}x${height} ${ms(t1 - t0 - decoding.decode - decoding.shrink)}, classify ${ms(performance.now() - t1)}`,
      );
    }
    const cls = probabilities.indexOf(Math.max(...probabilities));
    const warnings: string[] = [];
    if (probabilities[cls] < LOW_CONFIDENCE) warnings.push(`low confidence (${(100 * probabilities[cls]).toFixed(0)}%); see --show`);
    if (flags.show) await writeColourShow(flags.show, file, picture, pixels, net.input);
    const p: Prediction = { file, class: cls, probabilities, warnings };
    if (flags.preprocessed) p.preprocessed = Array.from(pixels, (v) => Math.round(v * 1e4) / 1e4);
    if (flags.json) console.log(JSON.stringify(p));
    else {
      console.log(`${file}: ${cls}  (${top3(probabilities)})`);
      for (const w of warnings) console.error(`convlab: warning: ${file}: ${w}`);
    }
  }
  if (failed > 0) throw new ImageError('IMAGES_FAILED', `${failed} of ${files.length} files could not be classified (see above)`);
}

/** DIR/<name>.show.png: the picture (up to 280 px tall) beside the model's input drawn large, nearest neighbour. */
async function writeColourShow(dir: string, file: string, picture: RgbaImage, pixels: Float32Array, input: { height: number; width: number }): Promise<void> {
  const { createCanvas, ImageData } = await import('@napi-rs/canvas');
  const side = 280,
    gap = 12;
  const s = Math.min(side / picture.height, side / picture.width);
  const ow = Math.max(1, Math.round(picture.width * s)),
    oh = Math.max(1, Math.round(picture.height * s));
  const zoom = Math.max(1, Math.floor(side / Math.max(input.height, input.width)));
  const canvas = createCanvas(ow + gap + input.width * zoom, Math.max(oh, input.height * zoom));
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#777';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  const original = createCanvas(picture.width, picture.height);
  original.getContext('2d').putImageData(new ImageData(new Uint8ClampedArray(picture.rgba), picture.width, picture.height), 0, 0);
  const rgba = new Uint8ClampedArray(input.height * input.width * 4);
  for (let i = 0; i < input.height * input.width; i++) {
    for (let c = 0; c < 3; c++) rgba[4 * i + c] = Math.round(255 * pixels[3 * i + c]);
    rgba[4 * i + 3] = 255;
  }
  const seen = createCanvas(input.width, input.height);
  seen.getContext('2d').putImageData(new ImageData(rgba, input.width, input.height), 0, 0);
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(original, 0, 0, ow, oh);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(seen, ow + gap, 0, input.width * zoom, input.height * zoom);
  const out = join(dir, `${basename(file, extname(file))}.show.png`);
  await writeFile(`${out}.tmp`, canvas.toBuffer('image/png'));
  await rename(`${out}.tmp`, out); // atomic: a reader never sees half a file
}
