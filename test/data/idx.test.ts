import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataFormatError } from '../../src/errors.ts';
import { encodeIdx, loadIdxPair, parseIdx, readIdxFile, type IdxTensor } from '../../src/data/idx.ts';
import { loadMnist, mnistDir, subset } from '../../src/data/mnist.ts';
import { imageFloats } from '../../src/data/images.ts';

/** Asserts that `fn` throws a DataFormatError with `code` whose message matches every pattern. */
function throwsData(fn: () => unknown, code: string, ...patterns: RegExp[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof DataFormatError, `expected a DataFormatError, got ${String(err)}`);
    assert.equal(err.code, code);
    for (const p of patterns) assert.match(err.message, p);
    return true;
  });
}

/** A temp dir for one test, removed afterwards. */
function withTempDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'convlab-idx-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// --- round trip -------------------------------------------------------------------------------------

const cases: IdxTensor[] = [
  { dtype: 'uint8', shape: [5], data: Uint8Array.from([0, 1, 127, 128, 255]) },
  { dtype: 'int8', shape: [2, 3], data: Int8Array.from([-128, -1, 0, 1, 64, 127]) },
  { dtype: 'int16', shape: [2, 2, 2], data: Int16Array.from([-32768, -2, -1, 0, 1, 258, 12345, 32767]) },
  { dtype: 'int32', shape: [3], data: Int32Array.from([-2147483648, 0x01020304, 2147483647]) },
  { dtype: 'float32', shape: [1, 2, 2, 1], data: Float32Array.from([-1.5, 0, 3.25, 1e-20]) },
  { dtype: 'float64', shape: [2, 1, 1, 2], data: Float64Array.from([Math.PI, -0, 1e300, -Number.MIN_VALUE]) },
  { dtype: 'uint8', shape: [2, 0, 3], data: new Uint8Array(0) },
];

for (const t of cases) {
  test(`encodeIdx → parseIdx round trip: ${t.dtype} ${t.shape.join('x')}`, () => {
    const bytes = encodeIdx(t);
    const back = parseIdx(bytes, 'round-trip');
    assert.equal(back.dtype, t.dtype);
    assert.deepEqual(back.shape, t.shape);
    assert.equal(back.data.constructor, t.data.constructor);
    assert.deepEqual(Array.from(back.data), Array.from(t.data)); // strict: -0 ≠ 0, so bits survive
  });
}

test('encodeIdx writes the header and big-endian data byte for byte', () => {
  const bytes = encodeIdx({ dtype: 'int16', shape: [2], data: Int16Array.from([0x0102, -2]) });
  assert.deepEqual(Array.from(bytes), [0, 0, 0x0b, 1, 0, 0, 0, 2, 0x01, 0x02, 0xff, 0xfe]);
});

test('parseIdx reads a hand-written big-endian file', () => {
  // float32 [2]: 1.0 = 0x3f800000, -2.0 = 0xc0000000
  const bytes = Uint8Array.from([0, 0, 0x0d, 1, 0, 0, 0, 2, 0x3f, 0x80, 0, 0, 0xc0, 0, 0, 0]);
  const t = parseIdx(bytes, 'hand');
  assert.deepEqual(Array.from(t.data), [1, -2]);
});

test('parseIdx returns uint8 data as a view into the input, not a copy', () => {
  const bytes = encodeIdx({ dtype: 'uint8', shape: [2, 2], data: Uint8Array.from([1, 2, 3, 4]) });
  const t = parseIdx(bytes, 'view');
  assert.equal(t.data.buffer, bytes.buffer);
  assert.equal(t.data.byteOffset, 12);
});

test('parseIdx handles input at an odd byte offset in a larger buffer', () => {
  const inner = encodeIdx({ dtype: 'int32', shape: [2], data: Int32Array.from([7, -7]) });
  const outer = new Uint8Array(inner.length + 3);
  outer.set(inner, 1);
  assert.deepEqual(Array.from(parseIdx(outer.subarray(1, 1 + inner.length), 'offset').data), [7, -7]);
});

// --- errors on bad bytes ----------------------------------------------------------------------------

test('bad magic: IDX_BAD_MAGIC naming the file and the bytes', () => {
  const bytes = Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0, 0, 0, 0]); // a PNG
  throwsData(() => parseIdx(bytes, 'picture.png'), 'IDX_BAD_MAGIC', /^picture\.png: not an IDX file/, /0x89504e47/);
});

test('gzip magic: IDX_BAD_MAGIC that says to gunzip', () => {
  const bytes = Uint8Array.from([0x1f, 0x8b, 0x08, 0x00, 1, 2, 3, 4, 5]);
  throwsData(
    () => parseIdx(bytes, 'train-images-idx3-ubyte'),
    'IDX_BAD_MAGIC',
    /^train-images-idx3-ubyte: not an IDX file \(magic bytes 0x1f8b0800; a gzip file\? decompress it with gunzip first\)$/,
  );
});

test('a non-gzip bad magic does not mention gzip', () => {
  assert.throws(
    () => parseIdx(Uint8Array.from([0, 1, 8, 1, 0, 0, 0, 0]), 'x'),
    (err: unknown) => err instanceof DataFormatError && err.code === 'IDX_BAD_MAGIC' && !/gzip/.test(err.message),
  );
});

test('unsupported type byte: IDX_UNSUPPORTED_TYPE', () => {
  const bytes = Uint8Array.from([0, 0, 0x0a, 1, 0, 0, 0, 0]);
  throwsData(() => parseIdx(bytes, 'odd.idx'), 'IDX_UNSUPPORTED_TYPE', /^odd\.idx: /, /0x0a/);
});

test('truncated header: IDX_TRUNCATED', () => {
  throwsData(() => parseIdx(Uint8Array.from([0, 0]), 'short'), 'IDX_TRUNCATED', /^short: /, /got 2/, /truncated/);
  // the 3 sizes need 12 bytes after the 4-byte prefix; give 2 of them
  const bytes = Uint8Array.from([0, 0, 0x08, 3, 0, 0, 0xea, 0x60, 0, 0]);
  throwsData(() => parseIdx(bytes, 'hdr'), 'IDX_TRUNCATED', /expected 16 bytes of header/, /got 10/);
});

test('truncated data: IDX_TRUNCATED with expected and actual byte counts', () => {
  const header = encodeIdx({ dtype: 'uint8', shape: [60000, 28, 28], data: new Uint8Array(60000 * 28 * 28) });
  const bytes = header.subarray(0, 1024);
  throwsData(
    () => parseIdx(bytes, 'train-images-idx3-ubyte'),
    'IDX_TRUNCATED',
    /^train-images-idx3-ubyte: expected 47,040,016 bytes for 60000x28x28 uint8, got 1,024 — the file is truncated; download it again$/,
  );
});

test('trailing bytes: IDX_TRAILING_BYTES', () => {
  const good = encodeIdx({ dtype: 'int16', shape: [3], data: Int16Array.from([1, 2, 3]) });
  const bytes = new Uint8Array(good.length + 5);
  bytes.set(good);
  throwsData(() => parseIdx(bytes, 'long'), 'IDX_TRAILING_BYTES', /^long: expected 14 bytes for 3 int16, got 19 \(5 extra\)/);
});

test('encodeIdx rejects a shape that does not match the data', () => {
  throwsData(() => encodeIdx({ dtype: 'uint8', shape: [2, 2], data: new Uint8Array(3) }), 'IDX_BAD_SHAPE');
  throwsData(() => encodeIdx({ dtype: 'float32', shape: [2], data: new Float64Array(2) }), 'IDX_BAD_SHAPE');
});

// --- files ------------------------------------------------------------------------------------------

test('readIdxFile: a missing file is FILE_NOT_FOUND naming the path', () => {
  withTempDir((dir) => {
    const path = join(dir, 'nope-idx1-ubyte');
    throwsData(() => readIdxFile(path), 'FILE_NOT_FOUND', new RegExp(path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
  });
});

function writeIdx(dir: string, name: string, t: IdxTensor): string {
  const path = join(dir, name);
  writeFileSync(path, encodeIdx(t));
  return path;
}

test('loadIdxPair scales uint8 to [0,1] and reads N,H,W as one channel', () => {
  withTempDir((dir) => {
    const images = writeIdx(dir, 'img', { dtype: 'uint8', shape: [2, 1, 2], data: Uint8Array.from([0, 255, 51, 102]) });
    const labels = writeIdx(dir, 'lbl', { dtype: 'uint8', shape: [2], data: Uint8Array.from([3, 9]) });
    const d = loadIdxPair(images, labels);
    assert.deepEqual([d.count, d.height, d.width, d.channels], [2, 1, 2, 1]);
    assert.deepEqual(Array.from(d.images), [0, 1, 0.2, 0.4].map(Math.fround));
    assert.deepEqual(Array.from(d.labels), [3, 9]);
  });
});

test('loadIdxPair reads N,H,W,C images', () => {
  withTempDir((dir) => {
    const images = writeIdx(dir, 'img', { dtype: 'uint8', shape: [1, 2, 2, 3], data: new Uint8Array(12).fill(255) });
    const labels = writeIdx(dir, 'lbl', { dtype: 'uint8', shape: [1], data: Uint8Array.from([1]) });
    const d = loadIdxPair(images, labels);
    assert.deepEqual([d.count, d.height, d.width, d.channels], [1, 2, 2, 3]);
    assert.equal(d.images.length, 12);
  });
});

test('loadIdxPair: count mismatch is IDX_COUNT_MISMATCH naming both files and counts', () => {
  withTempDir((dir) => {
    const images = writeIdx(dir, 'imgs-idx3', { dtype: 'uint8', shape: [3, 2, 2], data: new Uint8Array(12) });
    const labels = writeIdx(dir, 'lbls-idx1', { dtype: 'uint8', shape: [2], data: new Uint8Array(2) });
    throwsData(() => loadIdxPair(images, labels), 'IDX_COUNT_MISMATCH', /imgs-idx3 has 3 images/, /lbls-idx1 has 2 labels/);
  });
});

test('loadIdxPair: wrong dimensionality or type is IDX_BAD_SHAPE', () => {
  withTempDir((dir) => {
    const labels = writeIdx(dir, 'lbl', { dtype: 'uint8', shape: [2], data: new Uint8Array(2) });
    const flat = writeIdx(dir, 'flat', { dtype: 'uint8', shape: [2, 4], data: new Uint8Array(8) });
    const floats = writeIdx(dir, 'floats', { dtype: 'float32', shape: [2, 2, 2], data: new Float32Array(8) });
    const labels2d = writeIdx(dir, 'lbl2d', { dtype: 'uint8', shape: [2, 1], data: new Uint8Array(2) });
    const images = writeIdx(dir, 'img', { dtype: 'uint8', shape: [2, 2, 2], data: new Uint8Array(8) });
    throwsData(() => loadIdxPair(flat, labels), 'IDX_BAD_SHAPE', /flat: /, /got 2x4 uint8/);
    throwsData(() => loadIdxPair(floats, labels), 'IDX_BAD_SHAPE', /floats: /, /got 2x2x2 float32/);
    throwsData(() => loadIdxPair(images, labels2d), 'IDX_BAD_SHAPE', /lbl2d: /, /got 2x1 uint8/);
  });
});

// --- MNIST ------------------------------------------------------------------------------------------

test('loadMnist: 55,000 / 5,000 / 10,000, pixels in [0,1], validation = the first training images', async () => {
  const m = await loadMnist();
  assert.equal(m.train.count, 55000);
  assert.equal(m.validation.count, 5000);
  assert.equal(m.test.count, 10000);
  for (const split of [m.train, m.validation, m.test]) {
    assert.deepEqual([split.height, split.width, split.channels], [28, 28, 1]);
    const px = imageFloats(split);
    assert.equal(px.length, split.count * 784);
    assert.equal(split.labels.length, split.count);
    let min = Infinity;
    let max = -Infinity;
    for (let i = 0; i < px.length; i++) {
      if (px[i] < min) min = px[i];
      if (px[i] > max) max = px[i];
    }
    assert.equal(min, 0);
    assert.equal(max, 1);
    assert.ok(split.labels.every((l) => l <= 9));
  }

  // Read the raw file independently: 16-byte header, then 784 bytes per image; labels after 8 bytes.
  const raw = readFileSync(join(mnistDir(), 'train-images-idx3-ubyte'));
  const rawLabels = readFileSync(join(mnistDir(), 'train-labels-idx1-ubyte'));
  const image = (i: number) => Array.from(raw.subarray(16 + i * 784, 16 + (i + 1) * 784), (b) => Math.fround(b / 255));
  assert.deepEqual(Array.from(imageFloats(m.validation, 0, 1)), image(0));
  assert.deepEqual(Array.from(imageFloats(m.train, 0, 1)), image(5000));
  assert.equal(m.validation.labels[0], rawLabels[8]);
  assert.equal(m.train.labels[0], rawLabels[8 + 5000]);
  assert.equal(m.validation.labels[0], 5); // the famous first MNIST digit
  assert.equal(m.train.bytes.buffer, m.validation.bytes.buffer, 'train and validation share one buffer (the file, as bytes)');
});

test('subset takes views and rejects out-of-range requests', () => {
  const d = {
    images: Float32Array.from({ length: 12 }, (_, i) => i),
    labels: Uint8Array.from([0, 1, 2]),
    count: 3,
    height: 2,
    width: 2,
    channels: 1,
  };
  const s = subset(d, 1, 2);
  assert.equal(s.count, 2);
  assert.deepEqual(Array.from(s.images), [4, 5, 6, 7, 8, 9, 10, 11]);
  assert.deepEqual(Array.from(s.labels), [1, 2]);
  assert.equal(s.images.buffer, d.images.buffer);
  assert.throws(() => subset(d, 2, 2), /SUBSET|cannot take 2 examples from index 2/);
});
