/**
 * The data sets `--dataset` names, each loaded into the same three splits:
 *
 *   mnist          (default) the bundled MNIST: validation = training images 0..4,999, train = the other 55,000
 *   idx:DIR        any IDX images + labels pair (Fashion-MNIST, KMNIST, EMNIST, …); see `findIdxFiles`.
 *                  Validation = the first 5,000 images of the training file (the first tenth when the file
 *                  holds fewer than 50,000), as for MNIST; train = the rest; test = the test file.
 *   cifar10:DIR    the CIFAR-10 binary version (see cifar.ts): validation = the last 5,000 of data_batch_5.
 *
 * `name` is the canonical spec with an absolute path; runs record it so that evaluate and visualize load
 * the same data later.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { DataFormatError, UsageError, formatCount } from '../errors.ts';
import { CIFAR_CLASSES, loadCifar10 } from './cifar.ts';
import { loadIdxPair, readIdxPair } from './idx.ts';
import type { ImageSet, LabeledImages } from './images.ts';
import { MNIST_VALIDATION_SIZE, loadMnist, subset } from './mnist.ts';

export type DatasetSpec = { kind: 'mnist' } | { kind: 'idx'; dir: string } | { kind: 'cifar10'; dir: string };

export interface DataSplits {
  /** The loaders keep training and validation images as bytes (see images.ts); both forms are accepted. */
  train: ImageSet;
  validation: ImageSet;
  /** Floats: evaluation, the figures and the server read it directly. */
  test: LabeledImages;
  /** Number of classes: labels are 0 .. classes-1. */
  classes: number;
  /** Human-readable class names, when the data set has them (CIFAR-10). */
  classNames?: string[];
  /** The canonical spec, e.g. `mnist` or `cifar10:/data/cifar-10-batches-bin`. */
  name: string;
}

/** `mnist`, `idx:DIR` or `cifar10:DIR` (DIR made absolute). */
export function parseDatasetSpec(text: string): DatasetSpec {
  if (text === 'mnist') return { kind: 'mnist' };
  const m = /^(idx|cifar10):(.+)$/.exec(text);
  if (m === null) {
    throw new UsageError('DATASET_SPEC', `--dataset ${text}: expected mnist, idx:DIR (IDX image + label files) or cifar10:DIR (the CIFAR-10 binary version)`);
  }
  const dir = resolve(m[2]);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new DataFormatError('FILE_NOT_FOUND', `--dataset ${text}: ${dir} is not a folder — pass the folder that holds the data files`);
  }
  return { kind: m[1] as 'idx' | 'cifar10', dir };
}

export function datasetName(spec: DatasetSpec): string {
  return spec.kind === 'mnist' ? 'mnist' : `${spec.kind}:${spec.dir}`;
}

/** Loads the three splits of a data set. */
export async function loadDataset(spec: DatasetSpec): Promise<DataSplits> {
  const name = datasetName(spec);
  switch (spec.kind) {
    case 'mnist':
      return { ...(await loadMnist()), classes: 10, name };
    case 'idx':
      return loadIdxDataset(spec.dir, name);
    case 'cifar10':
      return { ...loadCifar10(spec.dir), classes: CIFAR_CLASSES.length, classNames: CIFAR_CLASSES, name };
  }
}

// ---------------------------------------------------------------------------------------------------------
// idx:DIR
// ---------------------------------------------------------------------------------------------------------

const IDX_PATTERNS = {
  trainImages: /(^|[-_])train-images[.-]idx[34]-ubyte(\.gz)?$/,
  trainLabels: /(^|[-_])train-labels[.-]idx1-ubyte(\.gz)?$/,
  testImages: /(^|[-_])(t10k|test)-images[.-]idx[34]-ubyte(\.gz)?$/,
  testLabels: /(^|[-_])(t10k|test)-labels[.-]idx1-ubyte(\.gz)?$/,
};

export interface IdxFiles {
  trainImages: string;
  trainLabels: string;
  testImages: string;
  testLabels: string;
}

/**
 * The four files of an IDX data set in `dir`, found by the names their publishers use:
 * `[prefix-]train-images-idx3-ubyte`, `[prefix-]train-labels-idx1-ubyte`, `[prefix-](t10k|test)-images-idx3-ubyte`,
 * `[prefix-](t10k|test)-labels-idx1-ubyte`, each optionally `.gz` (idx4 images, N×H×W×C, are accepted too).
 * Fashion-MNIST and KMNIST use MNIST's names; EMNIST's are `emnist-balanced-train-images-idx3-ubyte` etc.
 */
export function findIdxFiles(dir: string): IdxFiles {
  const names = readdirSync(dir);
  const pick = (key: keyof typeof IDX_PATTERNS, what: string): string => {
    // An uncompressed copy wins over its .gz.
    const found = [
      ...new Set(names.filter((n) => IDX_PATTERNS[key].test(n)).map((n) => (names.includes(n.replace(/\.gz$/, '')) ? n.replace(/\.gz$/, '') : n))),
    ];
    if (found.length === 0) {
      throw new DataFormatError(
        'FILE_NOT_FOUND',
        `${dir}: no ${what} file (expected a name like ${example[key]}, optionally .gz) — put the four IDX files of one data set in this folder`,
      );
    }
    if (found.length > 1) {
      throw new DataFormatError('IDX_AMBIGUOUS', `${dir}: several ${what} files (${found.join(', ')}) — put one data set per folder`);
    }
    return join(dir, found[0]);
  };
  return {
    trainImages: pick('trainImages', 'training images'),
    trainLabels: pick('trainLabels', 'training labels'),
    testImages: pick('testImages', 'test images'),
    testLabels: pick('testLabels', 'test labels'),
  };
}

const example = {
  trainImages: 'train-images-idx3-ubyte',
  trainLabels: 'train-labels-idx1-ubyte',
  testImages: 't10k-images-idx3-ubyte',
  testLabels: 't10k-labels-idx1-ubyte',
};

/** Validation images carved from the start of an IDX training file of `count` images. */
export function idxValidationSize(count: number): number {
  return Math.min(MNIST_VALIDATION_SIZE, Math.floor(count / 10));
}

function loadIdxDataset(dir: string, name: string): DataSplits {
  const f = findIdxFiles(dir);
  const full = readIdxPair(f.trainImages, f.trainLabels);
  const test = loadIdxPair(f.testImages, f.testLabels);
  if (test.height !== full.height || test.width !== full.width || test.channels !== full.channels) {
    throw new DataFormatError(
      'IDX_BAD_SHAPE',
      `${f.testImages}: images are ${test.height}x${test.width}x${test.channels} but the training images are ${full.height}x${full.width}x${full.channels} — the files do not belong together`,
    );
  }
  const held = idxValidationSize(full.count);
  if (held < 1) {
    throw new DataFormatError('IDX_BAD_SHAPE', `${f.trainImages}: has ${formatCount(full.count)} images; need at least 10 to split off a validation set`);
  }
  // Classes: 0 .. the largest training label. A test label beyond it cannot be learned.
  let max = 0;
  for (const l of full.labels) max = Math.max(max, l);
  const bad = test.labels.findIndex((l) => l > max);
  if (bad >= 0) {
    throw new DataFormatError(
      'LABEL_RANGE',
      `${basename(f.testLabels)}: label ${test.labels[bad]} at index ${formatCount(bad)} is out of range: the training labels only go up to ${max} — the files do not belong together`,
    );
  }
  return {
    train: subset(full, held, full.count - held),
    validation: subset(full, 0, held),
    test,
    classes: max + 1,
    name,
  };
}
