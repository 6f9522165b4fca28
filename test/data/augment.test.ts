/** Augmentation: shifts move pixels and fill with zeros, flips mirror, and the same generator repeats them. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/data/batches.ts';
import { augmentBatch, isAugmenting } from '../../src/data/augment.ts';

/** A 4x5x2 image whose channel c at (y, x) holds 100c + 10y + x + 1 (never 0). */
function image(): Float32Array {
  const out = new Float32Array(4 * 5 * 2);
  for (let y = 0; y < 4; y++) for (let x = 0; x < 5; x++) for (let c = 0; c < 2; c++) out[(y * 5 + x) * 2 + c] = 100 * c + 10 * y + x + 1;
  return out;
}
const shape = { height: 4, width: 5, channels: 2 };
const at = (img: Float32Array, y: number, x: number, c: number) => img[(y * 5 + x) * 2 + c];

/** A fake generator that returns the given integers from int(). */
function scripted(ints: number[]): Rng {
  const rng = new Rng(0);
  rng.int = () => ints.shift()!;
  return rng;
}

test('a shift moves every pixel by (dx, dy) and fills the vacated pixels with 0', () => {
  const img = image();
  // shift 2: dx = int(5) - 2, dy = int(5) - 2 → dx = +1, dy = -2
  augmentBatch(img, 1, shape, { shift: 2, flip: false }, scripted([3, 0]));
  const src = image();
  for (let y = 0; y < 4; y++) {
    for (let x = 0; x < 5; x++) {
      for (let c = 0; c < 2; c++) {
        const [sy, sx] = [y + 2, x - 1];
        const want = sy < 4 && sx >= 0 ? at(src, sy, sx, c) : 0;
        assert.equal(at(img, y, x, c), want, `(${y},${x},${c})`);
      }
    }
  }
});

test('a flip mirrors left-right, channels intact; flip then shift composes', () => {
  const img = image();
  augmentBatch(img, 1, shape, { shift: 0, flip: true }, scripted([1]));
  for (let y = 0; y < 4; y++) for (let x = 0; x < 5; x++) for (let c = 0; c < 2; c++) assert.equal(at(img, y, x, c), at(image(), y, 4 - x, c));
  const both = image();
  augmentBatch(both, 1, shape, { shift: 1, flip: true }, scripted([1, 2, 1])); // flip, dx = +1, dy = 0
  for (let y = 0; y < 4; y++) {
    assert.equal(at(both, y, 0, 1), 0);
    for (let x = 1; x < 5; x++) assert.equal(at(both, y, x, 1), at(image(), y, 4 - (x - 1), 1));
  }
});

test('the same seed gives the same batch; a batch of many images gets different shifts; off means untouched', () => {
  const batch = () => {
    const b = new Float32Array(8 * 40);
    for (let n = 0; n < 8; n++) b.set(image(), n * 40);
    return b;
  };
  const a = batch();
  const b = batch();
  augmentBatch(a, 8, shape, { shift: 2, flip: true }, Rng.derive(1, 7, 1));
  augmentBatch(b, 8, shape, { shift: 2, flip: true }, Rng.derive(1, 7, 1));
  assert.deepEqual(a, b);
  const distinct = new Set(Array.from({ length: 8 }, (_, n) => a.subarray(n * 40, (n + 1) * 40).join(',')));
  assert.ok(distinct.size > 3, `only ${distinct.size} different images out of 8`);
  const c = batch();
  augmentBatch(c, 8, shape, { shift: 2, flip: true }, Rng.derive(1, 8, 1));
  assert.notDeepEqual(a, c, 'the next iteration gets other shifts');
  assert.equal(isAugmenting({ shift: 0, flip: false }), false);
  const d = batch();
  augmentBatch(d, 8, shape, { shift: 0, flip: false }, new Rng(1));
  assert.deepEqual(d, batch());
});
