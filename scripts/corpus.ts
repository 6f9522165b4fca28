/**
 * The picture corpus: MNIST test digits as phone photos and scans, one distortion family at a time, and
 * mouse drawings (scripts/corpus/). Written to a folder you name (keep it outside the repository):
 *
 *   npx tsx scripts/corpus.ts write DIR [--per-family 200] [--seed 17]
 *   npx tsx scripts/corpus.ts score --model DIR [--per-family 200] [--seed 17] [--preprocess MODULE]
 *
 * `score` regenerates the corpus in memory and prints the accuracy per family. `--preprocess` names a
 * module exporting decodeImage and toMnist (e.g. an older src/predict/preprocess.ts) to compare with.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../src/backend.ts';
import { loadMnist } from '../src/data/mnist.ts';
import { loadParams } from '../src/model/load.ts';
import { disposeParams, predictProbabilities } from '../src/model/cnn.ts';
import * as current from '../src/predict/preprocess.ts';
import { FAMILIES, picture, type Family, type Picture } from './corpus/families.ts';

export interface Preprocessor {
  decodeImage(bytes: Uint8Array, name: string): Promise<current.GrayImage>;
  toMnist(img: current.GrayImage): { pixels: Float32Array; blank: boolean; inverted?: boolean };
}

/** Every picture of the corpus, family by family. */
export function* corpus(
  perFamily: number,
  seed: number,
  test: { images: Float32Array; labels: Uint8Array },
  families: readonly Family[] = FAMILIES,
): Generator<Picture> {
  for (const f of families) for (let n = 0; n < perFamily; n++) yield picture(f, n, seed, test);
}

export interface Score {
  family: string;
  correct: number;
  total: number;
  /** Pictures called blank (no ink): counted wrong. */
  blank: number;
}

/** Classifies each picture with the model in `modelDir`; a picture that fails to decode counts as wrong. */
export async function score(
  pictures: Iterable<Picture>,
  modelDir: string,
  pre: Preprocessor = current,
  onWrong?: (p: Picture, got: number) => void,
  onDigit?: (p: Picture, digit: ReturnType<Preprocessor['toMnist']>) => void,
): Promise<Score[]> {
  const model = await loadParams(modelDir);
  const byFamily = new Map<string, Score>();
  try {
    for (const p of pictures) {
      const s = byFamily.get(p.family) ?? { family: p.family, correct: 0, total: 0, blank: 0 };
      byFamily.set(p.family, s);
      s.total++;
      let digit: ReturnType<Preprocessor['toMnist']>;
      try {
        digit = pre.toMnist(await pre.decodeImage(p.bytes, p.name));
      } catch {
        onWrong?.(p, -1);
        continue;
      }
      onDigit?.(p, digit);
      if (digit.blank) {
        s.blank++;
        onWrong?.(p, -1);
        continue;
      }
      const probs = predictProbabilities(model.net, model.params, tf.tensor4d(digit.pixels, [1, 28, 28, 1]));
      const values = await probs.data();
      tf.dispose(probs);
      const got = values.indexOf(Math.max(...values));
      if (got === p.label) s.correct++;
      else onWrong?.(p, got);
    }
  } finally {
    disposeParams(model.params);
  }
  return [...byFamily.values()];
}

export function formatScores(scores: Score[]): string {
  const all = scores.reduce((a, s) => ({ correct: a.correct + s.correct, total: a.total + s.total }), { correct: 0, total: 0 });
  const pct = (c: number, t: number) => `${((100 * c) / t).toFixed(1)}%`;
  return [
    ...scores.map((s) => `${s.family.padEnd(16)} ${pct(s.correct, s.total).padStart(6)}  (${s.correct}/${s.total}${s.blank ? `, ${s.blank} blank` : ''})`),
    `${'overall'.padEnd(16)} ${pct(all.correct, all.total).padStart(6)}  (${all.correct}/${all.total})`,
  ].join('\n');
}

async function main(argv: string[]): Promise<void> {
  const [cmd, ...rest] = argv;
  const flag = (name: string, fallback?: string) => {
    const i = rest.indexOf(`--${name}`);
    return i >= 0 ? rest[i + 1] : fallback;
  };
  const perFamily = Number(flag('per-family', '200')),
    seed = Number(flag('seed', '17'));
  const only = flag('families')?.split(',') as Family[] | undefined;
  const test = (await loadMnist()).test;
  if (cmd === 'write') {
    const dir = rest.find((a, i) => !a.startsWith('--') && !(rest[i - 1] ?? '').startsWith('--'));
    if (!dir) throw new Error('usage: corpus.ts write DIR [--per-family N] [--seed S]');
    await mkdir(dir, { recursive: true });
    const labels: Record<string, number> = {};
    for (const p of corpus(perFamily, seed, test, only)) {
      await writeFile(join(dir, p.name), p.bytes);
      labels[p.name] = p.label;
    }
    await writeFile(join(dir, 'labels.json'), `${JSON.stringify(labels, null, 1)}\n`);
    console.log(`wrote ${Object.keys(labels).length} pictures and labels.json to ${dir}`);
  } else if (cmd === 'score') {
    const modelDir = flag('model');
    if (!modelDir) throw new Error('usage: corpus.ts score --model DIR [--per-family N] [--preprocess MODULE]');
    const module = flag('preprocess');
    const pre: Preprocessor = module ? await import(pathToFileURL(resolve(module)).href) : current;
    await useBackend('wasm');
    const wrong: string[] = [];
    const scores = await score(corpus(perFamily, seed, test, only), modelDir, pre, (p, got) => wrong.push(`${p.name} → ${got < 0 ? 'blank' : got}`));
    if (rest.includes('--list-wrong')) console.log(wrong.join('\n'));
    console.log(formatScores(scores));
  } else {
    throw new Error('usage: corpus.ts write DIR | score --model DIR');
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main(process.argv.slice(2)).catch((err) => {
    console.error(`corpus: ${(err as Error).message}`);
    process.exit(2);
  });
}
