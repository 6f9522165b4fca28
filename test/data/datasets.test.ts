/** --dataset: CIFAR-10 binary records, IDX folders (Fashion-MNIST, EMNIST names, .gz), splits and typed errors. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { DataFormatError, UsageError } from '../../src/errors.ts';
import { CIFAR_RECORD_BYTES, encodeCifar, loadCifar10, parseCifar } from '../../src/data/cifar.ts';
import { findIdxFiles, idxValidationSize, loadDataset, parseDatasetSpec } from '../../src/data/datasets.ts';
import { loadMnist, subset } from '../../src/data/mnist.ts';
import { encodeIdx } from '../../src/data/idx.ts';
import { imageFloats } from '../../src/data/images.ts';
import { colourBars, writeCifarDataset, writeIdxDataset } from '../helpers/datasets.ts';

let dir: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'convlab-datasets-'));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function assertCode(err: unknown, code: string, message: RegExp): true {
  assert.ok(err instanceof DataFormatError || err instanceof UsageError, `expected a typed error, got ${String(err)}`);
  assert.equal(err.code, code, err.message);
  assert.match(err.message, message);
  return true;
}

test('CIFAR-10 records: label byte, then R, G and B planes become NHWC pixels in [0,1]', () => {
  const record = new Uint8Array(2 * CIFAR_RECORD_BYTES);
  record[0] = 3;
  record[1 + 0] = 255; // R of pixel (0,0)
  record[1 + 1024 + 1] = 51; // G of pixel (0,1)
  record[1 + 2048 + 32] = 102; // B of pixel (1,0)
  record[CIFAR_RECORD_BYTES] = 9;
  record[CIFAR_RECORD_BYTES + 1 + 2048 + 1023] = 255; // B of the last pixel of the second image
  const d = parseCifar(record, 'x.bin');
  assert.deepEqual([d.count, d.height, d.width, d.channels], [2, 32, 32, 3]);
  assert.deepEqual(Array.from(d.labels), [3, 9]);
  assert.equal(d.images[0], 1); // (0,0) R
  assert.equal(d.images[1 * 3 + 1], Math.fround(51 / 255)); // (0,1) G
  assert.equal(d.images[32 * 3 + 2], Math.fround(102 / 255)); // (1,0) B
  assert.equal(d.images[3072 + 1023 * 3 + 2], 1);
  assert.equal(d.images.filter((v) => v !== 0).length, 4, 'exactly four non-zero values');
  // encodeCifar is its inverse.
  assert.deepEqual(encodeCifar(d), record);
});

test('CIFAR-10 errors: wrong record length (with a CIFAR-100 hint), label out of range, missing files', async () => {
  assert.throws(
    () => parseCifar(new Uint8Array(CIFAR_RECORD_BYTES + 1), 'data_batch_1.bin'),
    (e) => assertCode(e, 'CIFAR_RECORD_LENGTH', /data_batch_1\.bin: 3,074 bytes is not a whole number of 3,073-byte records .*CIFAR-100/),
  );
  assert.throws(
    () => parseCifar(new Uint8Array(100), 'b.bin'),
    (e) => assertCode(e, 'CIFAR_RECORD_LENGTH', /b\.bin: 100 bytes .*binary version/),
  );
  const bad = new Uint8Array(3 * CIFAR_RECORD_BYTES);
  bad[2 * CIFAR_RECORD_BYTES] = 10;
  assert.throws(
    () => parseCifar(bad, 'c.bin'),
    (e) => assertCode(e, 'CIFAR_LABEL_RANGE', /c\.bin: record 2 has label 10, but CIFAR-10 labels are 0 to 9/),
  );

  const partial = join(dir, 'cifar-partial');
  await writeCifarDataset(partial, colourBars(20, 1), colourBars(4, 2));
  await rm(join(partial, 'data_batch_3.bin'));
  await rm(join(partial, 'test_batch.bin'));
  assert.throws(
    () => loadCifar10(partial),
    (e) => assertCode(e, 'FILE_NOT_FOUND', /missing data_batch_3\.bin, test_batch\.bin — download cifar-10-binary\.tar\.gz/),
  );
});

test('CIFAR-10 split: validation is the end of data_batch_5 (at most 5,000, at most half), train the rest, in file order', async () => {
  const root = join(dir, 'cifar-root');
  const train = colourBars(100, 3);
  const test = colourBars(30, 4);
  // The archive extracts to cifar-10-batches-bin/: the parent folder works too.
  await writeCifarDataset(join(root, 'cifar-10-batches-bin'), train, test);
  const spec = parseDatasetSpec(`cifar10:${root}`);
  const d = await loadDataset(spec);
  assert.equal(d.name, `cifar10:${root}`);
  assert.equal(d.classes, 10);
  assert.equal(d.classNames?.[3], 'cat');
  // data_batch_5 holds examples 80..99: its last half (10) is the validation set.
  assert.equal(d.validation.count, 10);
  assert.equal(d.train.count, 90);
  assert.equal(d.test.count, 30);
  assert.deepEqual(Array.from(d.train.labels), Array.from(train.labels.subarray(0, 90)));
  assert.deepEqual(Array.from(d.validation.labels), Array.from(train.labels.subarray(90)));
  assert.deepEqual(imageFloats(d.validation), train.images.subarray(90 * 3072));
  assert.deepEqual(d.test.images, test.images);
});

test('idx:DIR finds the four files by their published names (.gz too), splits like MNIST, counts classes', async () => {
  const mnist = await loadMnist();
  const fashion = join(dir, 'fashion');
  await writeIdxDataset(fashion, subset(mnist.train, 0, 300), subset(mnist.test, 0, 50));
  // Gzip two of them, as downloaded.
  for (const f of ['train-images-idx3-ubyte', 't10k-labels-idx1-ubyte']) {
    await writeFile(join(fashion, `${f}.gz`), gzipSync(await readFile(join(fashion, f))));
    await rm(join(fashion, f));
  }
  const files = findIdxFiles(fashion);
  assert.match(files.trainImages, /train-images-idx3-ubyte\.gz$/);
  const d = await loadDataset(parseDatasetSpec(`idx:${fashion}`));
  // Validation: the first 5,000 images, or the first tenth of a smaller file.
  assert.equal(idxValidationSize(60_000), 5000);
  assert.equal(d.validation.count, 30);
  assert.equal(d.train.count, 270);
  assert.equal(d.test.count, 50);
  assert.equal(d.classes, 10);
  assert.deepEqual(imageFloats(d.validation), imageFloats(mnist.train, 0, 30));
  assert.deepEqual(imageFloats(d.train, 0, 1), imageFloats(mnist.train, 30, 1));

  // EMNIST-style prefixed names work; two data sets in one folder are refused by name.
  const emnist = join(dir, 'emnist');
  await writeIdxDataset(emnist, subset(mnist.train, 0, 40), subset(mnist.test, 0, 10), 'emnist-digits-');
  assert.match(findIdxFiles(emnist).testLabels, /emnist-digits-t10k-labels-idx1-ubyte$/);
  await writeIdxDataset(emnist, subset(mnist.train, 0, 40), subset(mnist.test, 0, 10), 'emnist-letters-');
  assert.throws(
    () => findIdxFiles(emnist),
    (e) => assertCode(e, 'IDX_AMBIGUOUS', /several training images files \(emnist-digits-train-images-idx3-ubyte, emnist-letters-train-images-idx3-ubyte\)/),
  );
});

test('idx:DIR errors: a missing file, a test label the training set never has, a bad spec', async () => {
  const mnist = await loadMnist();
  const missing = join(dir, 'missing');
  await writeIdxDataset(missing, subset(mnist.train, 0, 40), subset(mnist.test, 0, 10));
  await rm(join(missing, 't10k-images-idx3-ubyte'));
  await assert.rejects(loadDataset(parseDatasetSpec(`idx:${missing}`)), (e) =>
    assertCode(e, 'FILE_NOT_FOUND', /no test images file \(expected a name like t10k-images-idx3-ubyte/),
  );

  const range = join(dir, 'range');
  const train = subset(mnist.train, 0, 40);
  // Relabel: training labels only 0..4, and a test label 7.
  await writeIdxDataset(range, { ...train, labels: train.labels.map((l) => l % 5) }, subset(mnist.test, 0, 10));
  const testLabels = new Uint8Array(10).fill(1);
  testLabels[6] = 7;
  await writeFile(join(range, 't10k-labels-idx1-ubyte'), encodeIdx({ dtype: 'uint8', shape: [10], data: testLabels }));
  await assert.rejects(loadDataset(parseDatasetSpec(`idx:${range}`)), (e) =>
    assertCode(e, 'LABEL_RANGE', /label 7 at index 6 is out of range: the training labels only go up to 4/),
  );

  assert.throws(
    () => parseDatasetSpec('cifar100:/x'),
    (e) => assertCode(e, 'DATASET_SPEC', /expected mnist, idx:DIR .* or cifar10:DIR/),
  );
  assert.throws(
    () => parseDatasetSpec(`idx:${join(dir, 'nowhere')}`),
    (e) => assertCode(e, 'FILE_NOT_FOUND', /is not a folder/),
  );
  await mkdir(join(dir, 'empty'));
  await assert.rejects(loadDataset(parseDatasetSpec(`cifar10:${join(dir, 'empty')}`)), (e) => assertCode(e, 'FILE_NOT_FOUND', /missing data_batch_1\.bin/));
});
