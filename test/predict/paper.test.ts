/** The paper steps one by one: polarity, ruled lines. Small synthetic pictures, no decoding, no model. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { binarize, cellHistograms, isDarkInk, removeLines, type GrayImage, type Mask } from '../../src/predict/preprocess.ts';

function gray(width: number, height: number, fill: (x: number, y: number) => number): GrayImage {
  const data = new Float32Array(width * height);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data[y * width + x] = fill(x, y);
  return { width, height, data };
}
const dark = (img: GrayImage) => isDarkInk(cellHistograms(img, Math.max(8, Math.round(Math.max(img.width, img.height) / 24))));
/** A ring (a "0") of radius r and stroke width s centred at (cx, cy): ink value `ink`, elsewhere `paper`. */
const ring = (w: number, h: number, cx: number, cy: number, r: number, s: number, ink: number, paper: number) =>
  gray(w, h, (x, y) => (Math.abs(Math.hypot(x - cx, y - cy) - r) < s / 2 ? ink : paper));

describe('isDarkInk', () => {
  it('a small dark digit on a big white page (under 1% of the pixels) is dark ink', () => {
    assert.equal(dark(ring(2000, 1500, 300, 1200, 30, 6, 0.1, 0.97)), true);
  });
  it('a marker stroke wider than a cell is still dark ink', () => {
    assert.equal(dark(gray(300, 600, (x, y) => (x >= 200 && x < 240 && y >= 50 && y < 450 ? 0 : 1))), true);
    assert.equal(dark(ring(120, 160, 60, 80, 40, 24, 0.05, 1)), true);
  });
  it('white on black (MNIST, the drawing pad) is light ink, at any size', () => {
    assert.equal(dark(ring(28, 28, 14, 14, 7, 3, 1, 0)), false);
    assert.equal(dark(ring(280, 280, 140, 140, 80, 23, 1, 0)), false);
    assert.equal(dark(ring(1600, 1600, 300, 300, 30, 6, 0.95, 0.05)), false);
  });
  it('dark ink under a shadow and a gradient of light is dark ink', () => {
    const light = (x: number, y: number) => (0.95 - 0.5 * (x / 600)) * (y > 250 ? 0.6 : 1);
    const img = gray(600, 500, (x, y) => light(x, y) * (Math.abs(Math.hypot(x - 300, y - 250) - 80) < 6 ? 0.1 : 1));
    assert.equal(dark(img), true);
  });
});

describe('removeLines', () => {
  /** A mask with a ring ("0", stroke 12 px) and horizontal ruled lines 2 px thick every 60 px, edge to edge. */
  const ruled = (): Mask => {
    const img = gray(400, 300, (x, y) => {
      const inRing = Math.abs(Math.hypot(x - 200, y - 150) - 70) < 6;
      const onLine = y % 60 >= 20 && y % 60 < 22;
      return inRing || onLine ? 1 : 0;
    });
    return binarize(img, 0.5);
  };
  const count = (m: Mask, pick: (x: number, y: number) => boolean) => {
    let n = 0;
    for (let y = 0; y < m.height; y++) for (let x = 0; x < m.width; x++) if (m.data[y * m.width + x] && pick(x, y)) n++;
    return n;
  };
  it('clears dark ruled lines and keeps the strokes that cross them', () => {
    const m = ruled();
    const ringBefore = count(m, (x, y) => Math.abs(Math.hypot(x - 200, y - 150) - 70) < 6);
    const removed = removeLines(m, 8);
    assert.ok(removed > 5 * 380, `removed ${removed} pixels`);
    const lineLeft = count(m, (x, y) => y % 60 >= 20 && y % 60 < 22 && Math.abs(Math.hypot(x - 200, y - 150) - 70) >= 8);
    assert.equal(lineLeft, 0, 'no line pixels left away from the ring');
    const ringAfter = count(m, (x, y) => Math.abs(Math.hypot(x - 200, y - 150) - 70) < 6);
    assert.ok(ringAfter > 0.97 * ringBefore, `the ring keeps ${ringAfter} of ${ringBefore} pixels`);
  });
  it('leaves a wide dark band (the table beyond a page edge) and a digit’s long bar alone', () => {
    const table = binarize(
      gray(400, 300, (x, y) => (y < 40 || Math.abs(Math.hypot(x - 200, y - 170) - 70) < 6 ? 1 : 0)),
      0.5,
    );
    assert.equal(removeLines(table, 8), 0);
    // a "7" in MNIST's 28x28 whose thin bar spans 23 of the 28 columns, but not from edge to edge
    const seven = binarize(
      gray(28, 28, (x, y) => ((y === 6 && x >= 2 && x < 25) || (Math.abs(x - (24 - (y - 7) / 2)) < 1 && y >= 7 && y < 24) ? 1 : 0)),
      0.5,
    );
    assert.equal(removeLines(seven, 3), 0);
  });
});
