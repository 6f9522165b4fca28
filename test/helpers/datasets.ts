/**
 * Small data sets the tests write themselves: IDX files cut from MNIST, and a colour data set in the
 * CIFAR-10 binary format whose classes can only be told apart by colour and shape together.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Rng } from '../../src/data/batches.ts';
import { encodeIdx, type LabeledImages } from '../../src/data/idx.ts';
import { imageBytes, type ImageSet } from '../../src/data/images.ts';
import { CIFAR_TEST_FILE, CIFAR_TRAIN_FILES, encodeCifar } from '../../src/data/cifar.ts';
import { subset } from '../../src/data/mnist.ts';

/** Writes `[prefix]train-images-idx3-ubyte` etc. (uint8, as published) for `train` and `test`. */
export async function writeIdxDataset(dir: string, train: ImageSet, test: ImageSet, prefix = ''): Promise<void> {
  await mkdir(dir, { recursive: true });
  const bytes = (d: ImageSet) => Uint8Array.from(imageBytes(d));
  const shape = (d: ImageSet) => (d.channels === 1 ? [d.count, d.height, d.width] : [d.count, d.height, d.width, d.channels]);
  const idx = train.channels === 1 ? 'idx3' : 'idx4';
  await writeFile(join(dir, `${prefix}train-images-${idx}-ubyte`), encodeIdx({ dtype: 'uint8', shape: shape(train), data: bytes(train) }));
  await writeFile(join(dir, `${prefix}train-labels-idx1-ubyte`), encodeIdx({ dtype: 'uint8', shape: [train.count], data: Uint8Array.from(train.labels) }));
  await writeFile(join(dir, `${prefix}t10k-images-${idx}-ubyte`), encodeIdx({ dtype: 'uint8', shape: shape(test), data: bytes(test) }));
  await writeFile(join(dir, `${prefix}t10k-labels-idx1-ubyte`), encodeIdx({ dtype: 'uint8', shape: [test.count], data: Uint8Array.from(test.labels) }));
}

/** Writes data_batch_1..5.bin (train split evenly, in order) and test_batch.bin. */
export async function writeCifarDataset(dir: string, train: LabeledImages, test: LabeledImages): Promise<void> {
  await mkdir(dir, { recursive: true });
  const per = Math.ceil(train.count / 5);
  for (let i = 0; i < 5; i++) {
    const start = Math.min(i * per, train.count);
    await writeFile(join(dir, CIFAR_TRAIN_FILES[i]), encodeCifar(subset(train, start, Math.min(per, train.count - start))));
  }
  await writeFile(join(dir, CIFAR_TEST_FILE), encodeCifar(test));
}

export const COLOUR_CLASSES = 6;

/**
 * 32x32 RGB images of one bar on a noisy background. Class = 2·colour + orientation, colour ∈ {red, green,
 * blue} (each as bright as the others, so a grey-scale copy cannot tell them apart), orientation ∈
 * {horizontal, vertical}. Pixel values are multiples of 1/255, so they survive the CIFAR byte format.
 */
export function colourBars(count: number, seed: number): LabeledImages {
  const rng = new Rng(seed);
  const side = 32;
  const images = new Float32Array(count * side * side * 3);
  const labels = new Uint8Array(count);
  for (let n = 0; n < count; n++) {
    const colour = rng.int(3);
    const vertical = rng.int(2);
    labels[n] = 2 * colour + vertical;
    const base = n * side * side * 3;
    for (let p = 0; p < side * side * 3; p++) images[base + p] = Math.round(255 * 0.3 * rng.next()) / 255;
    const length = 12 + rng.int(9);
    const along = rng.int(side - length + 1);
    const across = rng.int(side - 3);
    const intensity = Math.round(255 * (0.7 + 0.3 * rng.next())) / 255;
    for (let a = along; a < along + length; a++) {
      for (let t = across; t < across + 3; t++) {
        const [y, x] = vertical ? [a, t] : [t, a];
        const at = base + (y * side + x) * 3;
        for (let c = 0; c < 3; c++) images[at + c] = c === colour ? intensity : Math.round(255 * 0.1 * rng.next()) / 255;
      }
    }
  }
  return { images, labels, count, height: side, width: side, channels: 3 };
}
