/**
 * `conv1-maps.png`, `conv2-maps.png`: what a conv block outputs (after conv, pool and ReLU) for a few
 * chosen images, one row per image with the input at its left. Map k is filter k's response, so the maps
 * line up with the filters of `conv1-weights.png`. Each row has its own colour scale, from 0 (ReLU's floor)
 * or from the most negative value (tanh).
 */
import type { Canvas } from '@napi-rs/canvas';
import { positiveMax, raster, viridis } from './color.ts';
import { createFigure, drawColorbar, drawHeader, frame, putPixels, style, text } from './draw.ts';
import { IMAGE_SCALE, imageRgba, type ImageShape } from './images.ts';
import { grid, wideColumns, type Rect } from './layout.ts';

/** The shape of one image's output of a conv block: height x width x channels (one channel per filter). */
export interface MapsShape {
  height: number;
  width: number;
  channels: number;
}

/** One chosen image and what the layer made of it. */
export interface MapsRow {
  /** The input as the network saw it, HWC in [0,1]. */
  image: Float32Array;
  /** Lines under the input, e.g. ["test #0", "True: 7, Pred: 7"]. */
  caption: string[];
  /** The block's output for this image, HWC. */
  maps: Float32Array;
}

/** Channel `c` of HWC maps: height*width values, row-major. */
export function mapPlane(maps: Float32Array, shape: MapsShape, c: number): Float32Array {
  const out = new Float32Array(shape.height * shape.width);
  for (let p = 0; p < out.length; p++) out[p] = maps[p * shape.channels + c];
  return out;
}

const LABEL_HEIGHT = 13;
const CAPTION_LINE = 17;
const ROW_GAP = 28;

export interface MapsRowLayout {
  input: Rect;
  /** Map c's image; value (y, x) covers a pixel x pixel block inside it. */
  maps: Rect[];
  colorbar: Rect;
  /** Top and bottom of the whole row. */
  top: number;
  bottom: number;
}

export interface FeatureMapsLayout {
  width: number;
  height: number;
  /** Pixels per map value. */
  pixel: number;
  rows: MapsRowLayout[];
}

export function featureMapsLayout(rows: number, input: ImageShape, maps: MapsShape, captionLines = 2): FeatureMapsLayout {
  const pixel = Math.max(1, Math.round(56 / maps.height)); // 14x14 and 7x7 maps both become 56x56
  const inputTile = { width: input.width * IMAGE_SCALE, height: input.height * IMAGE_SCALE };
  const gridX = style.margin + Math.max(inputTile.width, 120) + 44; // room for the caption and an arrow
  const columns = wideColumns(maps.channels, 12);
  const out: MapsRowLayout[] = [];
  let top = style.headerHeight;
  for (let r = 0; r < rows; r++) {
    const g = grid(
      maps.channels,
      columns,
      { width: maps.width * pixel, height: maps.height * pixel },
      { x: 6, y: 6 + LABEL_HEIGHT },
      { x: gridX, y: top + LABEL_HEIGHT },
    );
    const inputBlock = inputTile.height + 8 + captionLines * CAPTION_LINE;
    const bottom = top + Math.max(inputBlock, LABEL_HEIGHT + g.height);
    out.push({
      input: { x: style.margin, y: top + LABEL_HEIGHT, ...inputTile },
      maps: g.cells,
      colorbar: { x: gridX + g.width + 28, y: top + LABEL_HEIGHT, width: style.colorbarWidth, height: g.height },
      top,
      bottom,
    });
    top = bottom + ROW_GAP;
  }
  const last = out[out.length - 1];
  const right = last ? last.colorbar.x + last.colorbar.width + style.colorbarLabels : 0;
  return {
    width: Math.max(style.minWidth, right + style.margin),
    height: (last ? last.bottom : style.headerHeight) + style.margin,
    pixel,
    rows: out,
  };
}

/**
 * The maps of one layer for every row. `layer` names it ("conv1"); `steps` says what produced the maps
 * ("conv 5×5 → max-pool 2×2 → ReLU").
 */
export function drawFeatureMaps(rows: MapsRow[], input: ImageShape, shape: MapsShape, layer: string, steps: string): Canvas {
  const captionLines = Math.max(1, ...rows.map((r) => r.caption.length));
  const layout = featureMapsLayout(rows.length, input, shape, captionLines);
  const { canvas, ctx } = createFigure(layout.width, layout.height);
  drawHeader(
    ctx,
    `${layer} feature maps: ${shape.channels} maps of ${shape.height}×${shape.width} per image`,
    `After ${steps}. Map k is filter k's output: bright where it found its pattern.`,
  );
  rows.forEach((row, i) => {
    const r = layout.rows[i];
    if (i > 0) {
      ctx.fillStyle = style.rule;
      ctx.fillRect(style.margin, r.top - ROW_GAP / 2, layout.width - 2 * style.margin, 1);
    }
    putPixels(ctx, imageRgba(row.image, input, IMAGE_SCALE), r.input.x, r.input.y, r.input.width, r.input.height);
    frame(ctx, r.input);
    text(ctx, 'input', r.input.x, r.input.y - 4, { size: style.smallSize, color: style.muted });
    row.caption.forEach((line, j) => text(ctx, line, r.input.x, r.input.y + r.input.height + 8 + j * CAPTION_LINE, { baseline: 'top', bold: j === 0 }));
    text(ctx, '→', r.maps[0].x - 22, r.input.y + r.input.height / 2, { size: 20, color: style.muted, align: 'center', baseline: 'middle' });
    // From 0 (ReLU's and sigmoid's floor), or from the most negative value for tanh.
    const max = positiveMax(row.maps);
    let min = 0;
    for (const v of row.maps) if (v < min) min = v;
    const color = (v: number) => viridis((v - min) / (max - min));
    r.maps.forEach((m, c) => {
      putPixels(ctx, raster(mapPlane(row.maps, shape, c), shape.width, shape.height, layout.pixel, color), m.x, m.y, m.width, m.height);
      text(ctx, String(c), m.x + m.width / 2, m.y - 3, { size: 10, color: style.muted, align: 'center' });
    });
    drawColorbar(ctx, r.colorbar, { min, max, color, label: 'activation' });
  });
  return canvas;
}
