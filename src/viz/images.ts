/**
 * Grids of test images with what the network made of them: `samples.png` (the first test images) and
 * `errors.png` (the first misclassified ones). Digits are drawn black on white, as the lesson drew them.
 */
import type { Canvas } from '@napi-rs/canvas';
import { ink, raster } from './color.ts';
import { createFigure, drawHeader, frame, putPixels, style, text } from './draw.ts';
import { grid, type Rect } from './layout.ts';

export interface ImageShape {
  height: number;
  width: number;
  /** 1 (gray, 1 = ink) or 3 (RGB). */
  channels: number;
}

/** A test image the network classified. */
export interface Classified {
  /** height*width*channels values in [0,1], HWC. */
  pixels: Float32Array;
  /** Index in the test set. */
  index: number;
  label: number;
  predicted: number;
  /** Softmax probability of the predicted class. */
  probability: number;
}

/** Image pixels are drawn this many times larger: a 28x28 digit is 112x112. */
export const IMAGE_SCALE = 4;
const MAX_COLUMNS = 8;
const CAPTION_HEIGHT = 36;
/** Wide enough for the caption "True: 7, Pred: 7" at 13 px. */
const MIN_CELL_WIDTH = 116;

/** An image's RGBA bytes, `scale` times larger: gray as black ink on white, RGB as is. */
export function imageRgba(pixels: Float32Array, shape: ImageShape, scale: number): Uint8ClampedArray {
  const { width, height, channels } = shape;
  if (channels === 1) return raster(pixels, width, height, scale, ink);
  const index = Float32Array.from({ length: width * height }, (_, i) => i);
  return raster(index, width, height, scale, (i) => [255 * pixels[i * channels], 255 * pixels[i * channels + 1], 255 * pixels[i * channels + 2]]);
}

export interface ImageGridLayout {
  width: number;
  height: number;
  /** Where each image goes (its caption is below it). */
  images: Rect[];
}

/** Figure size and image positions for n images of `shape`. */
export function imageGridLayout(n: number, shape: ImageShape): ImageGridLayout {
  const tile = { width: shape.width * IMAGE_SCALE, height: shape.height * IMAGE_SCALE };
  const cellWidth = Math.max(tile.width, MIN_CELL_WIDTH);
  const g = grid(n, MAX_COLUMNS, { width: cellWidth, height: tile.height + CAPTION_HEIGHT }, { x: 14, y: 14 }, { x: style.margin, y: style.headerHeight });
  const images = g.cells.map((c) => ({ x: c.x + Math.floor((cellWidth - tile.width) / 2), y: c.y, ...tile }));
  const bodyHeight = n === 0 ? 30 : g.height;
  return {
    width: Math.max(style.minWidth, 2 * style.margin + g.width),
    height: style.headerHeight + bodyHeight + style.margin,
    images,
  };
}

/** Images with "True: 7, Pred: 7" under each (red when wrong) and "#index · p 0.98" below that. */
export function drawClassifiedGrid(items: Classified[], shape: ImageShape, title: string, subtitle: string, empty = ''): Canvas {
  const layout = imageGridLayout(items.length, shape);
  const { canvas, ctx } = createFigure(layout.width, layout.height);
  drawHeader(ctx, title, subtitle);
  if (items.length === 0) text(ctx, empty, style.margin, style.headerHeight + 16, { color: style.muted });
  items.forEach((item, i) => {
    const r = layout.images[i];
    const wrong = item.predicted !== item.label;
    putPixels(ctx, imageRgba(item.pixels, shape, IMAGE_SCALE), r.x, r.y, r.width, r.height);
    frame(ctx, r, wrong ? style.wrong : style.rule, wrong ? 2 : 1);
    const cx = r.x + r.width / 2;
    text(ctx, `True: ${item.label}, Pred: ${item.predicted}`, cx, r.y + r.height + 6, {
      align: 'center',
      baseline: 'top',
      color: wrong ? style.wrong : style.text,
      bold: wrong,
    });
    text(ctx, `#${item.index} · p ${item.probability.toFixed(2)}`, cx, r.y + r.height + 22, {
      size: style.smallSize,
      align: 'center',
      baseline: 'top',
      color: style.muted,
    });
  });
  return canvas;
}

/** `samples.png`: the first test images and the network's predictions. */
export function drawSamples(items: Classified[], shape: ImageShape): Canvas {
  return drawClassifiedGrid(
    items,
    shape,
    `The first ${items.length} test images and the network's predictions`,
    'Pred is the most probable class after softmax, p its probability; # is the index in the test set. Red: wrong.',
  );
}

/** `errors.png`: the first misclassified test images. */
export function drawErrors(items: Classified[], shape: ImageShape, scanned: number, found: number): Canvas {
  const n = items.length;
  const subtitle =
    found > n
      ? `The first ${n} of ${found.toLocaleString('en-US')} mistakes in the first ${scanned.toLocaleString('en-US')} test images; p is the probability the network gave its wrong answer.`
      : `${found.toLocaleString('en-US')} mistakes in ${scanned.toLocaleString('en-US')} test images; p is the probability the network gave its wrong answer.`;
  return drawClassifiedGrid(
    items,
    shape,
    n === 0 ? 'No misclassified test images' : `The first ${n} misclassified test images`,
    subtitle,
    `Every one of the ${scanned.toLocaleString('en-US')} test images was classified correctly.`,
  );
}
