import * as tf from '@tensorflow/tfjs';
import { useBackend, type BackendName } from '../backend.ts';
import { loadParams } from '../model/load.ts';
import { disposeParams, predictProbabilities } from '../model/cnn.ts';
import { preprocessFile } from '../predict/preprocess.ts';

export interface Prediction {
  file: string;
  class: number;
  probabilities: number[];
}

export async function predictCommand(files: string[], flags: { model: string; json?: boolean; backend: BackendName }): Promise<void> {
  await useBackend(flags.backend);
  const model = await loadParams(flags.model);
  try {
    const { height, width, channels } = model.net.input;
    for (const file of files) {
      const pixels = await preprocessFile(file); // throws a one-line ImageError for a bad file
      const probs = tf.tidy(() => predictProbabilities(model.net, model.params, tf.tensor4d(pixels, [1, height, width, channels])));
      const probabilities = Array.from(await probs.data());
      probs.dispose();
      const cls = probabilities.indexOf(Math.max(...probabilities));
      const p: Prediction = { file, class: cls, probabilities };
      if (flags.json) console.log(JSON.stringify(p));
      else console.log(`${file}: ${cls}  (${top3(probabilities)})`);
    }
  } finally {
    disposeParams(model.params);
  }
}

function top3(p: number[]): string {
  return p
    .map((v, i) => [i, v] as const)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 3)
    .map(([i, v]) => `${i}: ${(v * 100).toFixed(1)}%`)
    .join(', ');
}
