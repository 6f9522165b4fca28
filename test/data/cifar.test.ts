/**
 * The CIFAR-10 loader at the sizes and in the states real downloads come in: a data_batch_5 large enough
 * that the 5,000-record validation cap (not "half the file") decides the split, a one-record data_batch_5,
 * a .bin still gzip-compressed, a folder holding only the unextracted archive, and CIFAR-100's records.
 * The reference for the split is the record layout of the published files: validation is the last 5,000
 * records of data_batch_5.bin, train everything before them in file order.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { DataFormatError } from '../../src/errors.ts';
import { CIFAR_RECORD_BYTES, CIFAR_TEST_FILE, CIFAR_TRAIN_FILES, loadCifar10 } from '../../src/data/cifar.ts';

let dir: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'convlab-cifar-'));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** `count` records numbered from `first`: label (first + n) % 10, every pixel byte of record n = (first + n) % 251. */
function records(count: number, first: number): Uint8Array {
  const out = new Uint8Array(count * CIFAR_RECORD_BYTES);
  for (let n = 0; n < count; n++) {
    const at = n * CIFAR_RECORD_BYTES;
    out[at] = (first + n) % 10;
    out.fill((first + n) % 251, at + 1, at + CIFAR_RECORD_BYTES);
  }
  return out;
}

/** A CIFAR-10 folder with `perFile[i]` records in data_batch_{i+1}.bin (numbered on across files) and 3 test records. */
function folder(name: string, perFile: number[]): { path: string; files: Uint8Array[] } {
  const path = join(dir, name);
  mkdirSync(path, { recursive: true });
  let first = 0;
  const files = perFile.map((count, i) => {
    const bytes = records(count, first);
    first += count;
    writeFileSync(join(path, CIFAR_TRAIN_FILES[i]), bytes);
    return bytes;
  });
  writeFileSync(join(path, CIFAR_TEST_FILE), records(3, 1000));
  return { path, files };
}

function assertError(fn: () => unknown, code: string, message: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof DataFormatError, `expected a DataFormatError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.match(err.message, message);
    return true;
  });
}

test('a real-size data_batch_5 (10,010 records): exactly its last 5,000 are the validation set, all else trains, in file order', () => {
  const perFile = [2, 3, 1, 4, 10_010];
  const { path } = folder('real-size', perFile);
  const d = loadCifar10(path);
  const total = perFile.reduce((a, b) => a + b, 0);
  assert.equal(d.validation.count, 5000, 'the cap is 5,000 records, not half of data_batch_5 (5,005)');
  assert.equal(d.train.count, total - 5000);
  assert.equal(d.test.count, 3);
  // Record k (numbered across the files) has label k % 10 and every byte k % 251.
  // training and validation are kept as the file's bytes
  const pixel = (set: typeof d.train, i: number) => set.bytes[i * 3072];
  for (const i of [0, 1, 2, 5, 9, d.train.count - 1]) {
    assert.equal(d.train.labels[i], i % 10, `train ${i}`);
    assert.equal(pixel(d.train, i), i % 251, `train ${i}`);
  }
  for (const i of [0, 1, 4999]) {
    const k = d.train.count + i;
    assert.equal(d.validation.labels[i], k % 10, `validation ${i} is record ${k}`);
    assert.equal(pixel(d.validation, i), k % 251, `validation ${i} is record ${k}`);
  }
  // Every value of a record is the same byte: all three channels and the last pixel were decoded.
  const last = d.validation.bytes.subarray(4999 * 3072, 5000 * 3072);
  assert.ok(last.every((v) => v === last[0]));
});

test('a one-record data_batch_5 cannot give a validation set: one clear error; two records give one each', () => {
  assertError(
    () => loadCifar10(folder('one-record', [2, 2, 2, 2, 1]).path),
    'CIFAR_RECORD_LENGTH',
    /data_batch_5\.bin: has 1 record\(s\); need at least 2 to split off a validation set/,
  );
  const d = loadCifar10(folder('two-records', [2, 2, 2, 2, 2]).path);
  assert.deepEqual([d.train.count, d.validation.count], [9, 1]);
  assert.equal(d.validation.labels[0], 9);
});

test('a .bin file still gzip-compressed, and CIFAR-100 records, are named for what they are', () => {
  const { path } = folder('gzipped', [2, 2, 2, 2, 2]);
  writeFileSync(join(path, 'data_batch_3.bin'), gzipSync(records(2, 4)));
  assertError(
    () => loadCifar10(path),
    'CIFAR_RECORD_LENGTH',
    /data_batch_3\.bin: [\d,]+ bytes is not a whole number of 3,073-byte records .*\(it is gzip-compressed: extract cifar-10-binary\.tar\.gz with `tar xzf`\)/,
  );
  const hundred = folder('cifar-100', [2, 2, 2, 2, 2]).path;
  writeFileSync(join(hundred, 'data_batch_1.bin'), new Uint8Array(4 * (CIFAR_RECORD_BYTES + 1)));
  assertError(() => loadCifar10(hundred), 'CIFAR_RECORD_LENGTH', /data_batch_1\.bin: 12,296 bytes .*is this CIFAR-100, which has two label bytes\?/);
});

test('a folder holding only the downloaded archive says to extract it, with the command', () => {
  const path = join(dir, 'packed');
  mkdirSync(path, { recursive: true });
  writeFileSync(join(path, 'cifar-10-binary.tar.gz'), gzipSync(Buffer.from('not really a tar')));
  const quoted = path.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  assertError(
    () => loadCifar10(path),
    'FILE_NOT_FOUND',
    new RegExp(`missing data_batch_1\\.bin, .*test_batch\\.bin — extract it first: tar xzf ${quoted}/cifar-10-binary\\.tar\\.gz -C ${quoted}$`),
  );
});
