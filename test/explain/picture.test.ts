/**
 * The page's picture preprocessing (web/src/views/picture.ts) without a browser: a digit model gets
 * exactly convlab predict's 28x28, a colour model the picture resized per channel like its data set.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { preprocessPicture, type Picture } from '../../web/src/views/picture.ts';
import { grayFromRgba, toMnist } from '../../src/predict/preprocess.ts';

function picture(width: number, height: number, at: (x: number, y: number) => [number, number, number, number]): Picture {
  const rgba = new Uint8ClampedArray(width * height * 4);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) rgba.set(at(x, y), 4 * (y * width + x));
  return { name: 'p', width, height, rgba };
}

test('a digit model: the same 28x28 as convlab predict; a blank picture says so', () => {
  const p = picture(120, 90, (x, y) => (Math.abs(x - 60) < 6 && y > 15 && y < 75 ? [20, 20, 20, 255] : [240, 235, 230, 255]));
  const got = preprocessPicture(p, { height: 28, width: 28, channels: 1 });
  assert.deepEqual(got.pixels, toMnist(grayFromRgba(p.rgba, p.width, p.height)).pixels);
  assert.match(got.note, /inverted/);
  const blank = preprocessPicture(
    picture(50, 50, () => [200, 200, 200, 255]),
    { height: 28, width: 28, channels: 1 },
  );
  assert.equal(blank.pixels, null);
  assert.match(blank.note, /no ink/);
});

test('a colour model: each channel area-averaged to the input size, transparency over white', () => {
  // left half red, right half blue, bottom row transparent
  const p = picture(64, 64, (x, y) => (y === 63 ? [0, 0, 0, 0] : x < 32 ? [255, 0, 0, 255] : [0, 0, 255, 255]));
  const got = preprocessPicture(p, { height: 32, width: 32, channels: 3 }).pixels!;
  assert.equal(got.length, 32 * 32 * 3);
  const at = (x: number, y: number) => Array.from(got.subarray(3 * (y * 32 + x), 3 * (y * 32 + x) + 3));
  assert.deepEqual(at(3, 3), [1, 0, 0]);
  assert.deepEqual(at(28, 3), [0, 0, 1]);
  // the last output row averages one red row with one transparent (white) row
  assert.deepEqual(
    at(3, 31).map((v) => Math.round(v * 100) / 100),
    [1, 0.5, 0.5],
  );
});
