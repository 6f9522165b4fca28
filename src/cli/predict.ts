import * as tf from '@tensorflow/tfjs';
import { useBackend, type BackendName } from '../backend.ts';
import { loadParams } from '../model/load.ts';
import { disposeParams, predictProbabilities } from '../model/cnn.ts';
import { preprocessFile } from '../predict/preprocess.ts';
import { ConvlabError, ImageError, UsageError } from '../errors.ts';

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
    if (height !== 28 || width !== 28 || channels !== 1) {
      throw new UsageError('MODEL_INPUT_SHAPE', `${flags.model} takes ${height}x${width}x${channels} images, but predict prepares pictures as 28x28 grayscale digits; use convlab evaluate for this model`);
    }
    let failed = 0;
    for (const file of files) {
      let pixels: Float32Array;
      try {
        pixels = await preprocessFile(file);
      } catch (err) {
        // One bad picture should not hide the answers for the others: report it and go on.
        if (!(err instanceof ConvlabError) || files.length === 1) throw err;
        console.error(`convlab: ${err.message}`);
        failed += 1;
        continue;
      }
      const probs = tf.tidy(() => predictProbabilities(model.net, model.params, tf.tensor4d(pixels, [1, height, width, channels])));
      const probabilities = Array.from(await probs.data());
      probs.dispose();
      const cls = probabilities.indexOf(Math.max(...probabilities));
      const p: Prediction = { file, class: cls, probabilities };
      if (flags.json) console.log(JSON.stringify(p));
      else console.log(`${file}: ${cls}  (${top3(probabilities)})`);
    }
    if (failed > 0) throw new ImageError('IMAGES_FAILED', `${failed} of ${files.length} files could not be classified (see above)`);
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
