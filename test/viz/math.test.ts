/** The pure parts of the figures: colour maps, rasters, grids, ticks, and the data slicing. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { diverging, interpolate, ink, luminance, positiveMax, raster, symmetricScale, viridis, blues } from '../../src/viz/color.ts';
import { formatTick, grid, linearScale, niceDomain, niceTicks, squareColumns, wideColumns } from '../../src/viz/layout.ts';
import { filterSlice, filtersFileName, type ConvKernel } from '../../src/viz/filters.ts';
import { mapPlane } from '../../src/viz/feature-maps.ts';
import { confusionColor } from '../../src/viz/confusion.ts';
import { curvePlots } from '../../src/viz/curves.ts';
import { isBlue, isRed, isWhite } from './png.ts';

test('interpolate hits its stops and clamps outside [0,1]', () => {
  const stops = [
    [0, 0, 0],
    [100, 200, 50],
  ] as const;
  assert.deepEqual(interpolate(stops, 0), [0, 0, 0]);
  assert.deepEqual(interpolate(stops, 0.5), [50, 100, 25]);
  assert.deepEqual(interpolate(stops, 1), [100, 200, 50]);
  assert.deepEqual(interpolate(stops, 7), [100, 200, 50]);
  assert.deepEqual(interpolate(stops, -1), [0, 0, 0]);
  assert.deepEqual(interpolate(stops, NaN), [0, 0, 0]);
});

test('diverging map: red for positive, blue for negative, white at zero, symmetric and saturating', () => {
  assert.ok(isWhite(diverging(0, 1)), `0 → ${diverging(0, 1)}`);
  for (const v of [0.3, 0.6, 1, 5]) {
    assert.ok(isRed(diverging(v, 1)), `${v} → ${diverging(v, 1)}`);
    assert.ok(isBlue(diverging(-v, 1)), `${-v} → ${diverging(-v, 1)}`);
  }
  // Farther from zero is stronger (darker), on both sides; beyond the scale it saturates.
  assert.ok(luminance(diverging(0.9, 1)) < luminance(diverging(0.3, 1)));
  assert.ok(luminance(diverging(-0.9, 1)) < luminance(diverging(-0.3, 1)));
  assert.deepEqual(diverging(3, 1), diverging(1, 1));
  // The scale is what matters: 0.1 of 0.2 looks like 0.5 of 1.
  assert.deepEqual(diverging(0.1, 0.2), diverging(0.5, 1));
});

test('sequential maps run from light to dark (blues) and dark to bright (viridis, ink)', () => {
  assert.ok(luminance(blues(0)) > 0.95 && luminance(blues(1)) < 0.25);
  assert.ok(luminance(viridis(0)) < luminance(viridis(0.5)) && luminance(viridis(0.5)) < luminance(viridis(1)));
  assert.deepEqual(ink(0), [255, 255, 255]);
  assert.deepEqual(ink(1), [0, 0, 0]);
});

test('scales: symmetricScale is the largest |v|, positiveMax the largest v, both 1 for all zeros', () => {
  assert.equal(symmetricScale([-3, 2, 0.5]), 3);
  assert.equal(symmetricScale(new Float32Array(4)), 1);
  assert.equal(positiveMax([0, 2.5, 1]), 2.5);
  assert.equal(positiveMax([0, 0]), 1);
});

test('raster turns each value into a crisp scale x scale block', () => {
  const rgba = raster([0, 1, 2, 3], 2, 2, 3, (v) => [v * 10, 0, 255 - v]);
  assert.equal(rgba.length, 6 * 6 * 4);
  const at = (x: number, y: number) => [...rgba.subarray((y * 6 + x) * 4, (y * 6 + x) * 4 + 4)];
  assert.deepEqual(at(0, 0), [0, 0, 255, 255]);
  assert.deepEqual(at(2, 2), [0, 0, 255, 255]);
  assert.deepEqual(at(3, 0), [10, 0, 254, 255]);
  assert.deepEqual(at(5, 2), [10, 0, 254, 255]);
  assert.deepEqual(at(0, 3), [20, 0, 253, 255]);
  assert.deepEqual(at(5, 5), [30, 0, 252, 255]);
  assert.throws(() => raster([1, 2, 3], 2, 2, 1, () => [0, 0, 0]), /3 values for 2x2/);
});

test('grid: columns, positions and total size', () => {
  assert.equal(squareColumns(16), 4);
  assert.equal(squareColumns(36), 6);
  assert.equal(squareColumns(10), 4);
  assert.equal(wideColumns(16, 12), 8);
  assert.equal(wideColumns(36, 12), 12);
  assert.equal(wideColumns(5, 12), 5);
  const g = grid(5, 2, { width: 10, height: 20 }, { x: 3, y: 4 }, { x: 100, y: 50 });
  assert.deepEqual(g.cells[0], { x: 100, y: 50, width: 10, height: 20 });
  assert.deepEqual(g.cells[1], { x: 113, y: 50, width: 10, height: 20 });
  assert.deepEqual(g.cells[4], { x: 100, y: 98, width: 10, height: 20 });
  assert.equal(g.width, 23);
  assert.equal(g.height, 3 * 20 + 2 * 4);
});

test('nice ticks are multiples of 1, 2 or 5 times a power of ten, inside the range', () => {
  assert.deepEqual(niceTicks(0, 1).ticks, [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.deepEqual(niceTicks(-0.2, 0.2).ticks, [-0.2, -0.1, 0, 0.1, 0.2]);
  assert.deepEqual(niceTicks(0, 1099).ticks, [0, 500, 1000]);
  assert.deepEqual(niceTicks(0, 300).ticks, [0, 100, 200, 300]);
  assert.deepEqual(niceTicks(5, 5).ticks, [5]);
  assert.deepEqual(niceDomain(46.1, 100), [40, 100]);
  assert.deepEqual(niceDomain(0, 1.79), [0, 2]);
});

test('tick labels: decimals from the step, a true minus sign, thousands separators, no "-0"', () => {
  assert.equal(formatTick(0.1, 0.1), '0.1');
  assert.equal(formatTick(-0.1, 0.1), '\u22120.1');
  assert.equal(formatTick(1000, 500), '1,000');
  assert.equal(formatTick(-1e-9, 0.1), '0.0');
  assert.equal(formatTick(0.25, 0.05), '0.25');
});

test('linearScale maps the domain onto the range, inverted for y axes', () => {
  const y = linearScale(0, 100, 300, 100);
  assert.equal(y(0), 300);
  assert.equal(y(100), 100);
  assert.equal(y(25), 250);
});

test('filterSlice reads one filter on one input channel out of HWIO weights', () => {
  // value = 1000*y + 100*x + 10*channel + filter, so every weight names its own position
  const size = 3,
    inChannels = 2,
    outChannels = 4;
  const values = new Float32Array(size * size * inChannels * outChannels);
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++)
      for (let c = 0; c < inChannels; c++)
        for (let f = 0; f < outChannels; f++) values[((y * size + x) * inChannels + c) * outChannels + f] = 1000 * y + 100 * x + 10 * c + f;
  const k: ConvKernel = { size, inChannels, outChannels, values };
  assert.deepEqual([...filterSlice(k, 1, 3)], [13, 113, 213, 1013, 1113, 1213, 2013, 2113, 2213]);
  assert.equal(filtersFileName('conv2', k, 1), 'conv2-weights-ch1.png');
  assert.equal(filtersFileName('conv1', { ...k, inChannels: 1 }, 0), 'conv1-weights.png');
});

test('mapPlane reads one channel out of HWC maps', () => {
  const maps = Float32Array.from({ length: 2 * 3 * 4 }, (_, i) => i); // h=2, w=3, C=4
  assert.deepEqual([...mapPlane(maps, { height: 2, width: 3, channels: 4 }, 2)], [2, 6, 10, 14, 18, 22]);
});

test('confusion colours darken with the count, and a zero is near-white', () => {
  assert.ok(luminance(confusionColor(0, 1000)) > 0.95);
  assert.ok(luminance(confusionColor(10, 1000)) < luminance(confusionColor(0, 1000)));
  assert.ok(luminance(confusionColor(1000, 1000)) < luminance(confusionColor(100, 1000)));
});

test('curvePlots: loss and batch accuracy at every entry, validation only where measured', () => {
  const history = [
    { iteration: 10, loss: 2, batchAccuracy: 0.3, imagesPerSecond: 1, learningRate: 1e-3 },
    { iteration: 20, loss: 1, batchAccuracy: 0.6, imagesPerSecond: 1, learningRate: 1e-3, validationAccuracy: 0.5 },
    { iteration: 30, loss: 0.5, batchAccuracy: 0.8, imagesPerSecond: 1, learningRate: 1e-3, validationAccuracy: 0.75 },
  ];
  const { loss, accuracy } = curvePlots(history);
  assert.deepEqual(loss.series[0].points, [
    { x: 10, y: 2 },
    { x: 20, y: 1 },
    { x: 30, y: 0.5 },
  ]);
  assert.deepEqual(accuracy.series[1].points, [
    { x: 20, y: 50 },
    { x: 30, y: 75 },
  ]);
  assert.deepEqual(loss.yDomain, [0, 2]);
  assert.deepEqual(accuracy.yDomain, [20, 100]);
});
