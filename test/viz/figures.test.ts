/** Each figure drawn from made-up data whose look we know, then decoded and inspected pixel by pixel. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GlobalFonts } from '@napi-rs/canvas';
import { encodePng, FONT_FAMILY, registerFonts, style } from '../../src/viz/draw.ts';
import { drawFilters, filtersLayout, type ConvKernel } from '../../src/viz/filters.ts';
import { drawConfusion, confusionLayout } from '../../src/viz/confusion.ts';
import { drawErrors, drawSamples, IMAGE_SCALE, imageGridLayout, type Classified } from '../../src/viz/images.ts';
import { drawFeatureMaps, featureMapsLayout } from '../../src/viz/feature-maps.ts';
import { curvesLayout, drawCurves } from '../../src/viz/curves.ts';
import { linearScale, niceDomain } from '../../src/viz/layout.ts';
import { brightness, decodePng, isBlue, isRed, isWhite, pixelsOf, rightmostInk, type Pixels } from './png.ts';

const mnist = { height: 28, width: 28, channels: 1 };

/** A 28x28 "digit": a filled square of ink from (8,8) to (19,19). */
function squareDigit(): Float32Array {
  const px = new Float32Array(784);
  for (let y = 8; y < 20; y++) for (let x = 8; x < 20; x++) px[y * 28 + x] = 1;
  return px;
}

/** The header is never cut off at the right edge. */
function assertHeaderFits(p: Pixels): void {
  const right = rightmostInk(p, 0, style.headerHeight - 8);
  assert.ok(right < p.width - style.margin / 2, `header ink reaches x=${right} of ${p.width}`);
}

test('text uses DejaVu Sans from node_modules, registered under our own family name', () => {
  registerFonts();
  registerFonts(); // idempotent
  assert.ok(GlobalFonts.has(FONT_FAMILY));
  const family = GlobalFonts.families.find((f) => f.family === FONT_FAMILY);
  assert.deepEqual(family?.styles.map((s) => s.weight).sort(), [400, 700]);
});

test('filter grid: red where a weight is positive, blue where negative, white where zero', async () => {
  // 4 filters of 3x3: a checkerboard whose phase depends on the filter, and one zero in the middle of filter 3.
  const k: ConvKernel = { size: 3, inChannels: 1, outChannels: 4, values: new Float32Array(36) };
  const weight = (y: number, x: number, f: number) => (f === 3 && y === 1 && x === 1 ? 0 : (x + y + f) % 2 === 0 ? 0.5 : -0.5);
  for (let y = 0; y < 3; y++) for (let x = 0; x < 3; x++) for (let f = 0; f < 4; f++) k.values[(y * 3 + x) * 4 + f] = weight(y, x, f);
  const canvas = drawFilters(k, 0, 'conv1');
  const layout = filtersLayout(4, 3);
  const p = await decodePng(await encodePng(canvas));
  assert.equal(p.width, layout.width);
  assert.equal(p.height, layout.height);
  for (let f = 0; f < 4; f++) {
    for (let y = 0; y < 3; y++) {
      for (let x = 0; x < 3; x++) {
        const c = layout.cells[f];
        const rgb = p.at(c.x + (x + 0.5) * layout.pixel, c.y + (y + 0.5) * layout.pixel);
        const w = weight(y, x, f);
        const want = w > 0 ? isRed : w < 0 ? isBlue : isWhite;
        assert.ok(want(rgb), `filter ${f} (${y},${x}) weight ${w}: got rgb ${rgb}`);
      }
    }
  }
  // The colour bar runs from red at the top to blue at the bottom.
  const bar = layout.colorbar;
  assert.ok(isRed(p.at(bar.x + bar.width / 2, bar.y + 2)));
  assert.ok(isBlue(p.at(bar.x + bar.width / 2, bar.y + bar.height - 3)));
  assertHeaderFits(p);
});

test('filter figures of one layer share a scale, one figure per input channel', async () => {
  // Channel 0: every weight +1; channel 1: every weight -0.1 (pale blue on the shared scale of 1).
  const k: ConvKernel = { size: 5, inChannels: 2, outChannels: 36, values: new Float32Array(25 * 2 * 36) };
  for (let i = 0; i < k.values.length; i++) k.values[i] = Math.floor(i / 36) % 2 === 0 ? 1 : -0.1;
  const layout = filtersLayout(36, 5);
  const ch0 = pixelsOf(drawFilters(k, 0, 'conv2'));
  const ch1 = pixelsOf(drawFilters(k, 1, 'conv2'));
  assert.equal(ch1.width, layout.width);
  for (const c of [layout.cells[0], layout.cells[35]]) {
    const [x, y] = [c.x + c.width / 2, c.y + c.height / 2];
    assert.ok(isRed(ch0.at(x, y)), `ch0: ${ch0.at(x, y)}`);
    const pale = ch1.at(x, y);
    assert.ok(isBlue(pale) || brightness(pale) > 200, `ch1: ${pale}`);
    assert.ok(pale[2] > pale[0] && brightness(pale) > 180, `-0.1 of ±1 should be pale blue, got ${pale}`);
  }
});

test('confusion heatmap: the darkest cell is where the largest count is, diagonal or not', async () => {
  const diagonal = Array.from({ length: 10 }, (_, i) => Array.from({ length: 10 }, (_, j) => (i === j ? 900 + i : (i * 7 + j) % 13)));
  const offDiagonal = diagonal.map((row) => [...row]);
  offDiagonal[4][9] = 5000;
  const layout = confusionLayout(10);
  // Diagonal counts 900..909 differ by less than a colour step: any diagonal cell may come out darkest.
  for (const [matrix, want] of [
    [diagonal, undefined],
    [offDiagonal, [4, 9]],
  ] as const) {
    const p = await decodePng(await encodePng(drawConfusion(matrix as number[][], 'test')));
    assert.equal(p.width, layout.width);
    assert.equal(p.height, layout.height);
    let darkest = [-1, -1];
    let min = Infinity;
    for (let i = 0; i < 10; i++) {
      for (let j = 0; j < 10; j++) {
        const c = layout.cells[i][j];
        const b = brightness(p.at(c.x + 3, c.y + 3)); // a corner: away from the count written in the middle
        if (b < min) [min, darkest] = [b, [i, j]];
      }
    }
    if (want === undefined) assert.equal(darkest[0], darkest[1], `darkest cell ${darkest} is off the diagonal`);
    else assert.deepEqual(darkest, want);
    // The count is written in the cell: its centre differs from its corner.
    const c = layout.cells[darkest[0]][darkest[1]];
    let inked = 0;
    for (let dx = -8; dx <= 8; dx++) if (brightness(p.at(c.x + c.width / 2 + dx, c.y + c.height / 2)) > min + 60) inked++;
    assert.ok(inked > 0, 'no count written in the darkest cell');
    assertHeaderFits(p);
  }
});

test('samples and errors: digits in black ink on white, a red frame only around wrong answers', async () => {
  const items: Classified[] = Array.from({ length: 10 }, (_, i) => ({
    pixels: squareDigit(),
    index: i,
    label: i % 10,
    predicted: i === 3 ? 5 : i % 10,
    probability: 0.9,
  }));
  const layout = imageGridLayout(10, mnist);
  const p = await decodePng(await encodePng(drawSamples(items, mnist)));
  assert.equal(p.width, layout.width);
  assert.equal(p.height, layout.height);
  items.forEach((item, i) => {
    const r = layout.images[i];
    assert.ok(brightness(p.at(r.x + 14 * IMAGE_SCALE, r.y + 14 * IMAGE_SCALE)) < 20, 'ink should be black');
    assert.ok(isWhite(p.at(r.x + 2 * IMAGE_SCALE, r.y + 2 * IMAGE_SCALE)), 'background should be white');
    const edge = p.at(r.x - 1, r.y + r.height / 2);
    assert.equal(isRed(edge), item.predicted !== item.label, `frame of item ${i}: ${edge}`);
  });
  assertHeaderFits(p);

  const errors = pixelsOf(drawErrors([items[3]], mnist, 500, 1));
  assert.equal(errors.width, imageGridLayout(1, mnist).width);
  const none = pixelsOf(drawErrors([], mnist, 10000, 0));
  assert.equal(none.height, imageGridLayout(0, mnist).height);
});

test('feature maps: the input beside them, and brighter colour for stronger activations', async () => {
  const shape = { height: 14, width: 14, channels: 16 };
  // Map c is constant c/15 — map 15 is the strongest, map 0 is zero everywhere.
  const maps = new Float32Array(14 * 14 * 16);
  for (let i = 0; i < maps.length; i++) maps[i] = (i % 16) / 15;
  const rows = [
    { image: squareDigit(), caption: ['test #0', 'True: 7, Pred: 7'], maps },
    { image: squareDigit(), caption: ['digit.png', 'Pred: 3'], maps },
  ];
  const layout = featureMapsLayout(2, mnist, shape);
  const p = await decodePng(await encodePng(drawFeatureMaps(rows, mnist, shape, 'conv1', 'conv 5×5 → 2×2 max-pool → ReLU')));
  assert.equal(p.width, layout.width);
  assert.equal(p.height, layout.height);
  for (const row of layout.rows) {
    assert.ok(brightness(p.at(row.input.x + 14 * IMAGE_SCALE, row.input.y + 14 * IMAGE_SCALE)) < 20, 'input ink');
    const mid = (c: number) => p.at(row.maps[c].x + row.maps[c].width / 2, row.maps[c].y + row.maps[c].height / 2);
    for (let c = 1; c < 16; c++) assert.ok(brightness(mid(c)) > brightness(mid(c - 1)), `map ${c} should be brighter than map ${c - 1}`);
  }
  assertHeaderFits(p);
});

test('learning curves: the training line in blue on the left, validation dots in orange on the right', async () => {
  const history = Array.from({ length: 10 }, (_, i) => ({
    iteration: 100 * (i + 1),
    loss: 2 / (i + 1),
    batchAccuracy: 0.5 + 0.05 * i,
    imagesPerSecond: 1000,
    learningRate: 1e-3,
    ...(i % 5 === 4 ? { validationAccuracy: 0.6 + 0.05 * i } : {}),
  }));
  const layout = curvesLayout();
  const p = await decodePng(await encodePng(drawCurves(history)));
  assert.equal(p.width, layout.width);
  assert.equal(p.height, layout.height);
  const [loss, acc] = layout.plots;
  const x = linearScale(0, 1000, acc.x, acc.x + acc.width);
  const yAcc = linearScale(niceDomain(50, 100)[0], 100, acc.y + acc.height, acc.y);
  // validation at iteration 500 is 80%: an orange dot there
  const dot = p.at(x(500), yAcc(80));
  assert.ok(dot[0] > 200 && dot[1] > 100 && dot[1] < 160 && dot[2] < 60, `validation dot: ${dot}`);
  // loss at iteration 200 is 1.0: the blue line passes there
  const xl = linearScale(0, 1000, loss.x, loss.x + loss.width);
  const yl = linearScale(0, 2, loss.y + loss.height, loss.y);
  const near = [-1, 0, 1].map((d) => p.at(xl(200), yl(1) + d));
  assert.ok(
    near.some(([r, g, b]) => b > 150 && r < 90),
    `loss line: ${JSON.stringify(near)}`,
  );
  assertHeaderFits(p);
});

test('a header too long for its figure is drawn smaller, not cut off', () => {
  const long = 'an extraordinarily long description of the data set this confusion matrix counts, far too long to fit';
  assertHeaderFits(
    pixelsOf(
      drawConfusion(
        [
          [1, 0],
          [0, 1],
        ],
        long,
      ),
    ),
  );
});
