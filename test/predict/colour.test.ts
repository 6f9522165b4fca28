/**
 * Colour pictures as a colour model's input (src/predict/colour.ts): the arithmetic, the decoder's checks
 * (decodeRgba refuses what decodeImage refuses, with the same message: it is the same path), and the page
 * preparing colour pictures with this very function rather than a copy of it.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { createCanvas } from '@napi-rs/canvas';
import { ImageError } from '../../src/errors.ts';
import { colourInput, decodeImage, decodeRgba } from '../../src/predict/preprocess.ts';
import { preprocessPicture } from '../../web/src/views/picture.ts';

/** A random-ish RGBA picture (deterministic), alpha 255 unless `alpha`. */
function rgbaPicture(width: number, height: number, alpha = false): Uint8ClampedArray {
  const rgba = new Uint8ClampedArray(width * height * 4);
  for (let i = 0; i < rgba.length; i++) rgba[i] = (i * 97 + ((i * i) % 251)) % 256;
  if (!alpha) for (let i = 3; i < rgba.length; i += 4) rgba[i] = 255;
  return rgba;
}

describe('colourInput', () => {
  it('undoes a 3x blow-up exactly, keeps the channels apart, puts transparency over white', () => {
    const small = rgbaPicture(4, 2);
    const big = new Uint8ClampedArray(12 * 6 * 4);
    for (let y = 0; y < 6; y++) {
      for (let x = 0; x < 12; x++) {
        const from = 4 * (Math.floor(y / 3) * 4 + Math.floor(x / 3));
        big.set(small.subarray(from, from + 4), 4 * (y * 12 + x));
      }
    }
    const out = colourInput(big, 12, 6, { width: 4, height: 2 });
    assert.equal(out.length, 4 * 2 * 3);
    for (let i = 0; i < 8; i++) for (let c = 0; c < 3; c++) assert.ok(Math.abs(out[3 * i + c] - small[4 * i + c] / 255) < 1e-6, `pixel ${i} channel ${c}`);
    const clear = colourInput(new Uint8ClampedArray([200, 10, 30, 0, 0, 0, 0, 128]), 2, 1, { width: 2, height: 1 });
    assert.deepEqual(Array.from(clear.subarray(0, 3)), [1, 1, 1], 'fully transparent is white paper');
    assert.ok(Math.abs(clear[3] - (1 - 128 / 255)) < 1e-6, 'half transparent black is half grey');
    assert.throws(
      () => colourInput(new Uint8ClampedArray(7), 2, 1, { width: 1, height: 1 }),
      (e) => e instanceof ImageError && e.code === 'IMAGE_SHAPE',
    );
  });
});

describe('decodeRgba', () => {
  const png = () => {
    const c = createCanvas(40, 30);
    const ctx = c.getContext('2d');
    ctx.fillStyle = '#c03020';
    ctx.fillRect(0, 0, 40, 30);
    return new Uint8Array(c.toBuffer('image/png'));
  };

  it('gives the picture in colour, at its size', async () => {
    const { width, height, rgba } = await decodeRgba(png(), 'red.png');
    assert.deepEqual([width, height, rgba.length], [40, 30, 40 * 30 * 4]);
    assert.deepEqual(Array.from(rgba.subarray(0, 4)), [0xc0, 0x30, 0x20, 255]);
  });

  it('refuses what decodeImage refuses, with the same code and message', async () => {
    const cut = png().subarray(0, 60);
    const huge = png();
    new DataView(huge.buffer).setUint32(16, 30_000);
    new DataView(huge.buffer).setUint32(20, 30_000);
    for (const [bytes, name, want] of [
      [cut, 'cut.png', /^IMAGE_DECODE: cut\.png: corrupt PNG image \(truncated/],
      [new Uint8Array(0), 'zero.png', /^IMAGE_EMPTY: zero\.png: the file is empty/],
      [huge, 'huge.png', /^IMAGE_TOO_LARGE: huge\.png: 30,000x30,000 is 900,000,000 pixels/],
      [new TextEncoder().encode('<svg xmlns="http://www.w3.org/2000/svg"/>'), 'drawing.svg', /^IMAGE_DECODE: drawing\.svg: .*looks like SVG/],
    ] as const) {
      const why = async (p: Promise<unknown>) =>
        p.then(
          () => 'accepted',
          (e: ImageError) => `${e.code}: ${e.message}`,
        );
      const rgba = await why(decodeRgba(bytes, name));
      assert.match(rgba, want);
      assert.equal(rgba, await why(decodeImage(bytes, name)));
    }
  });
});

describe('the page', () => {
  it('prepares a colour picture with colourInput: the same numbers, and no resizing of its own', () => {
    const rgba = rgbaPicture(50, 37, true);
    const page = preprocessPicture({ name: 'p.png', width: 50, height: 37, rgba }, { height: 32, width: 32, channels: 3 });
    assert.deepEqual(page.pixels, colourInput(rgba, 50, 37, { height: 32, width: 32 }));
    const source = readFileSync(new URL('../../web/src/views/picture.ts', import.meta.url), 'utf8');
    assert.match(source, /import \{[^}]*\bcolourInput\b[^}]*\} from '\.\.\/\.\.\/\.\.\/src\/predict\/preprocess\.ts'/);
    assert.doesNotMatch(source, /resizeArea|resampleArea/, 'the colour arithmetic lives in src/predict/colour.ts only');
  });
});
