/**
 * What each figure drew, read from the figure itself (draw.ts keeps a log of every text and value cell it
 * drew on a canvas): titles, `True/Pred` captions, axis names, and every confusion cell's count against the
 * matrix, its colour against the colour scale, and that colour against the PNG's pixels.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { drawnItems, encodePng, style, type DrawnCell, type DrawnText } from '../../src/viz/draw.ts';
import { confusionLayout, drawConfusion } from '../../src/viz/confusion.ts';
import { blues } from '../../src/viz/color.ts';
import { drawErrors, drawSamples, imageGridLayout, type Classified } from '../../src/viz/images.ts';
import { curvesLayout, drawCurves } from '../../src/viz/curves.ts';
import { drawFilters, filtersLayout, type ConvKernel } from '../../src/viz/filters.ts';
import type { Canvas } from '@napi-rs/canvas';
import { decodePng } from './png.ts';

const texts = (c: Canvas) => drawnItems(c).filter((d): d is DrawnText => d.kind === 'text');
const cells = (c: Canvas) => drawnItems(c).filter((d): d is DrawnCell => d.kind === 'cell');
/** The one text item equal to `s` (fails when there is none or more than one). */
function only(c: Canvas, s: string): DrawnText {
  const found = texts(c).filter((t) => t.text === s);
  assert.equal(
    found.length,
    1,
    `"${s}" drawn ${found.length} times; drawn: ${texts(c)
      .map((t) => t.text)
      .join(' | ')}`,
  );
  return found[0];
}
const inside = (t: DrawnText, r: { x: number; y: number; width: number; height: number }) =>
  t.x >= r.x && t.x <= r.x + r.width && t.y >= r.y && t.y <= r.y + r.height;

test('confusion matrix: every cell holds its count, in the colour of the scale, in the PNG too; True, Predicted and class labels', async () => {
  // Counts that tell cells apart: a big diagonal, one large confusion, zeros, and every other cell distinct.
  const k = 10;
  const matrix = Array.from({ length: k }, (_, i) => Array.from({ length: k }, (_, j) => (i === j ? 900 + i : (i * 7 + j * 3) % 5 === 0 ? 0 : i * k + j)));
  matrix[4][9] = 120;
  const canvas = drawConfusion(matrix, 'test set, 10,000 images');
  const layout = confusionLayout(k);
  const max = 909;
  only(canvas, 'Confusion matrix: test set, 10,000 images');

  const drawnCells = cells(canvas);
  assert.equal(drawnCells.length, k * k);
  const png = await decodePng(await encodePng(canvas));
  for (let i = 0; i < k; i++) {
    for (let j = 0; j < k; j++) {
      const cell = drawnCells.find((c) => c.row === i && c.col === j);
      assert.ok(cell, `cell [${i}][${j}] not drawn`);
      assert.equal(cell.value, matrix[i][j], `cell [${i}][${j}]`);
      assert.deepEqual(cell.rect, layout.cells[i][j]);
      // Colour ∝ √count (the figure's subtitle says so), on the blues scale.
      assert.deepEqual(cell.color, blues(Math.sqrt(matrix[i][j] / max)), `cell [${i}][${j}] colour`);
      // The count, written once, in the middle of its own cell, bold on the diagonal.
      const label = texts(canvas).filter(
        (t) => inside(t, cell.rect) && t.x === cell.rect.x + cell.rect.width / 2 && t.y === cell.rect.y + cell.rect.height / 2,
      );
      assert.deepEqual(
        label.map((t) => t.text),
        [String(matrix[i][j])],
        `cell [${i}][${j}]`,
      );
      assert.equal(label[0].bold, i === j);
      // The PNG's pixel near the cell's corner (away from the number and the white grid lines) is that colour.
      const rgb = png.at(cell.rect.x + 3, cell.rect.y + 3);
      cell.color.forEach((v, ch) => assert.ok(Math.abs(rgb[ch] - v) <= 1.5, `cell [${i}][${j}]: pixel ${rgb} vs ${cell.color}`));
    }
  }
  // Axis names: "True" reads bottom to top left of the rows, "Predicted" under the columns.
  const first = layout.cells[0][0];
  const side = k * first.width;
  const trueLabel = only(canvas, 'True');
  assert.equal(trueLabel.rotate, -Math.PI / 2);
  assert.ok(trueLabel.x < first.x && trueLabel.y > first.y && trueLabel.y < first.y + side);
  const predicted = only(canvas, 'Predicted');
  assert.equal(predicted.rotate, 0);
  assert.ok(predicted.y > first.y + side && predicted.x > first.x && predicted.x < first.x + side);
  // Class labels: one per row to the left, one per column below.
  for (let n = 0; n < k; n++) {
    const labels = texts(canvas).filter((t) => t.text === String(n) && !drawnCells.some((c) => inside(t, c.rect)));
    const row = labels.filter((t) => t.x < first.x && Math.abs(t.y - (layout.cells[n][0].y + first.height / 2)) < 1);
    const col = labels.filter((t) => t.y > first.y + side && Math.abs(t.x - (layout.cells[0][n].x + first.width / 2)) < 1);
    assert.equal(row.length, 1, `row label ${n}`);
    assert.equal(col.length, 1, `column label ${n}`);
  }
});

/** `n` classified images, every third one wrong. */
function classified(n: number): Classified[] {
  return Array.from({ length: n }, (_, i) => ({
    pixels: new Float32Array(784),
    index: 10 + i,
    label: i % 10,
    predicted: i % 3 === 2 ? (i + 1) % 10 : i % 10,
    probability: 0.5 + i / 100,
  }));
}

test('samples and errors: a True/Pred caption under every image (red and bold when wrong), the index and probability, the title', () => {
  const items = classified(12);
  const canvas = drawSamples(items, { height: 28, width: 28, channels: 1 });
  only(canvas, "The first 12 test images and the network's predictions");
  const layout = imageGridLayout(items.length, { height: 28, width: 28, channels: 1 });
  items.forEach((item, i) => {
    const r = layout.images[i];
    const caption = texts(canvas).filter((t) => t.text.startsWith('True:') && t.x === r.x + r.width / 2 && t.y > r.y + r.height && t.y < r.y + r.height + 20);
    assert.deepEqual(
      caption.map((t) => t.text),
      [`True: ${item.label}, Pred: ${item.predicted}`],
      `image ${i}`,
    );
    const wrong = item.label !== item.predicted;
    assert.equal(caption[0].color, wrong ? style.wrong : style.text, `image ${i}`);
    assert.equal(caption[0].bold, wrong, `image ${i}`);
    only(canvas, `#${item.index} · p ${item.probability.toFixed(2)}`);
  });
  assert.equal(texts(canvas).filter((t) => t.text.startsWith('True:')).length, items.length);

  const wrongOnes = items.filter((it) => it.label !== it.predicted);
  const errors = drawErrors(wrongOnes, { height: 28, width: 28, channels: 1 }, 500, 9);
  only(errors, `The first ${wrongOnes.length} misclassified test images`);
  only(errors, `The first ${wrongOnes.length} of 9 mistakes in the first 500 test images; p is the probability the network gave its wrong answer.`);
  assert.deepEqual(
    texts(errors)
      .filter((t) => t.text.startsWith('True:'))
      .map((t) => t.text),
    wrongOnes.map((it) => `True: ${it.label}, Pred: ${it.predicted}`),
  );
  const none = drawErrors([], { height: 28, width: 28, channels: 1 }, 10_000, 0);
  only(none, 'No misclassified test images');
  only(none, 'Every one of the 10,000 test images was classified correctly.');
});

test('learning curves: plot titles, both axis names of each plot, and the legend', () => {
  const history = Array.from({ length: 10 }, (_, i) => ({
    iteration: 100 * (i + 1),
    loss: 2 / (i + 1),
    batchAccuracy: 0.5 + 0.05 * i,
    imagesPerSecond: 1000,
    learningRate: 1e-3,
    ...(i % 5 === 4 ? { validationAccuracy: 0.6 + 0.05 * i } : {}),
  }));
  const canvas = drawCurves(history);
  const [loss, accuracy] = curvesLayout().plots;
  for (const [title, yLabel, r] of [
    ['Loss', 'cross-entropy', loss],
    ['Accuracy', 'accuracy', accuracy],
  ] as const) {
    const t = only(canvas, title);
    assert.ok(t.bold && t.y < r.y && t.x >= r.x && t.x < r.x + r.width, `${title} above its plot`);
    const y = only(canvas, yLabel);
    assert.equal(y.rotate, -Math.PI / 2, `${yLabel} reads bottom to top`);
    assert.ok(y.x < r.x && y.y > r.y && y.y < r.y + r.height, `${yLabel} left of its plot`);
    const x = texts(canvas).filter((d) => d.text === 'iteration' && d.x > r.x && d.x < r.x + r.width && d.y > r.y + r.height);
    assert.equal(x.length, 1, `"iteration" under the ${title} plot`);
  }
  assert.ok(texts(canvas).some((t) => t.text === 'training batches'));
  only(canvas, 'validation set');
});

test('filters: the title names the layer, the count and size, and every filter is numbered above its cell', () => {
  const k: ConvKernel = { size: 5, inChannels: 2, outChannels: 6, values: new Float32Array(5 * 5 * 2 * 6).map((_, i) => Math.sin(i)) };
  const canvas = drawFilters(k, 1, 'conv2');
  only(canvas, 'conv2 weights: 6 filters of 5×5, input channel 1 of 2');
  const layout = filtersLayout(6, 5);
  layout.cells.forEach((r, f) => {
    const n = texts(canvas).filter((t) => t.text === String(f) && t.x === r.x + r.width / 2 && t.y < r.y && t.y > r.y - 10);
    assert.equal(n.length, 1, `filter ${f}'s number`);
  });
  only(canvas, 'weight');
});
