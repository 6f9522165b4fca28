import { mkdir, rename, writeFile } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { useBackend, type BackendName } from '../backend.ts';
import { loadParams } from '../model/load.ts';
import { disposeParams, predictProbabilities } from '../model/cnn.ts';
import { decodeImage, readPicture, requireInk, toMnist, type DecodeTiming, type GrayImage, type MnistDigit } from '../predict/preprocess.ts';
import { predictColour } from './predict-colour.ts';
import { ConvlabError, ImageError, UsageError } from '../errors.ts';

export interface Prediction {
  file: string;
  class: number;
  probabilities: number[];
  /** What a person should know before trusting the answer: several digits, low confidence, ink cut off. */
  warnings: string[];
  /** The values the network received (with --preprocessed): 784 for a digit model, height×width×3 for a colour one. */
  preprocessed?: number[];
}

/** Below this top probability the answer is flagged as a guess. */
export const LOW_CONFIDENCE = 0.6;

export interface PredictFlags {
  model: string;
  json?: boolean;
  preprocessed?: boolean;
  show?: string;
  /** Print where each picture's time went (read, decode, shrink, steps, classify) on stderr. */
  timing?: boolean;
  backend: BackendName;
}

export async function predictCommand(files: string[], flags: PredictFlags): Promise<void> {
  if (flags.preprocessed && !flags.json) throw new UsageError('PREDICT_FLAGS', '--preprocessed adds a field to the JSON output; use it with --json');
  await useBackend(flags.backend);
  const model = await loadParams(flags.model);
  try {
    const { height, width, channels } = model.net.input;
    if (channels === 3) return await predictColour(files, flags, model.net, model.params);
    if (height !== 28 || width !== 28 || channels !== 1) {
      throw new UsageError(
        'MODEL_INPUT_SHAPE',
        `${flags.model} takes ${height}x${width}x${channels} images, but predict prepares pictures as 28x28 grayscale digits or as colour (x3) images; use convlab evaluate for this model`,
      );
    }
    if (flags.show) await mkdir(flags.show, { recursive: true });
    let failed = 0;
    for (const file of files) {
      let gray: GrayImage, digit: MnistDigit;
      const t0 = performance.now(),
        cpu0 = process.cpuUsage();
      const decoding = { decode: 0, shrink: 0, gray: 0, width: 0, height: 0 } satisfies DecodeTiming;
      let t1 = t0,
        t2 = t0;
      try {
        const bytes = await readPicture(file);
        t1 = performance.now();
        gray = await decodeImage(bytes, file, decoding);
        t2 = performance.now();
        digit = requireInk(toMnist(gray), file);
      } catch (err) {
        // One bad picture should not hide the answers for the others: report it and go on.
        if (!(err instanceof ConvlabError) || files.length === 1) throw err;
        console.error(`convlab: ${err.message}`);
        failed += 1;
        continue;
      }
      const t3 = performance.now();
      const probs = tf.tidy(() => predictProbabilities(model.net, model.params, tf.tensor4d(digit.pixels, [1, height, width, channels])));
      const probabilities = Array.from(await probs.data());
      probs.dispose();
      if (flags.timing) {
        const t4 = performance.now(),
          cpu = process.cpuUsage(cpu0);
        const ms = (v: number) => `${v.toFixed(0)} ms`;
        console.error(
          `convlab: timing: ${file}: read ${ms(t1 - t0)}, decode ${ms(decoding.decode)} (${decoding.width}x${decoding.height}), ` +
            `shrink ${ms(decoding.shrink + decoding.gray)} (to ${gray.width}x${gray.height}), steps ${ms(t3 - t2)} ` +
            `(${Object.entries(digit.diagnostics.ms)
              .map(([k, v]) => `${k} ${v.toFixed(0)}`)
              .join(', ')}), classify ${ms(t4 - t3)}; ` +
            `preprocessing ${ms(t3 - t1)}, total ${ms(t4 - t0)} (CPU ${ms((cpu.user + cpu.system) / 1000)})`,
        );
      }
      const cls = probabilities.indexOf(Math.max(...probabilities));
      const warnings = [...digit.warnings];
      if (probabilities[cls] < LOW_CONFIDENCE) {
        warnings.push(`low confidence (${(100 * probabilities[cls]).toFixed(0)}%): this may not be a digit, or not one the network can read; see --show`);
      }
      if (flags.show) await writeShow(flags.show, file, gray, digit);
      const p: Prediction = { file, class: cls, probabilities, warnings };
      if (flags.preprocessed) p.preprocessed = Array.from(digit.pixels, (v) => Math.round(v * 1e4) / 1e4);
      if (flags.json) console.log(JSON.stringify(p));
      else {
        console.log(`${file}: ${cls}  (${top3(probabilities)})`);
        for (const w of warnings) console.error(`convlab: warning: ${file}: ${w}`);
      }
    }
    if (failed > 0) throw new ImageError('IMAGES_FAILED', `${failed} of ${files.length} files could not be classified (see above)`);
  } finally {
    disposeParams(model.params);
  }
}

/** DIR/<name>.show.png: the picture (up to 280 px tall) beside the 28x28 input drawn 10x, nearest neighbour. */
async function writeShow(dir: string, file: string, gray: GrayImage, digit: MnistDigit): Promise<void> {
  const { createCanvas, ImageData } = await import('@napi-rs/canvas');
  const side = 280,
    gap = 12;
  const s = Math.min(side / gray.height, side / gray.width, 1e9);
  const ow = Math.max(1, Math.round(gray.width * s)),
    oh = Math.max(1, Math.round(gray.height * s));
  const canvas = createCanvas(ow + gap + side, Math.max(oh, side));
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#777';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  const toRgba = (data: Float32Array | number[], n: number) => {
    const rgba = new Uint8ClampedArray(n * 4);
    for (let i = 0; i < n; i++) {
      rgba.fill(Math.round(255 * Math.min(1, Math.max(0, data[i]))), 4 * i, 4 * i + 3);
      rgba[4 * i + 3] = 255;
    }
    return rgba;
  };
  const put = (data: Float32Array, w: number, h: number) => {
    const c = createCanvas(w, h);
    c.getContext('2d').putImageData(new ImageData(toRgba(data, w * h), w, h), 0, 0);
    return c;
  };
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(put(gray.data, gray.width, gray.height), 0, 0, ow, oh);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(put(digit.pixels, 28, 28), ow + gap, 0, side, side);
  const out = join(dir, `${basename(file, extname(file))}.show.png`);
  await writeFile(`${out}.tmp`, canvas.toBuffer('image/png'));
  await rename(`${out}.tmp`, out); // atomic: a reader never sees half a file
}

export function top3(p: number[]): string {
  return p
    .map((v, i) => [i, v] as const)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 3)
    .map(([i, v]) => `${i}: ${(v * 100).toFixed(1)}%`)
    .join(', ');
}
