/**
 * `conv1-weights.png`, `conv2-weights-ch0.png`, ...: a layer's filters as small images on a diverging
 * colour map centered at zero (red positive, blue negative, white zero), every filter on the same scale
 * so that strong and weak filters can be told apart, with a colour bar.
 *
 * A layer with one input channel gets one figure; a layer with several gets one figure per input channel
 * shown (`conv2-weights-ch0.png` holds every conv2 filter's 5x5 slice that reads conv1's map 0).
 */
import type { Canvas } from '@napi-rs/canvas';
import { diverging, raster, symmetricScale } from './color.ts';
import { createFigure, drawColorbar, drawHeader, frame, putPixels, style, text } from './draw.ts';
import { grid, squareColumns, type Rect } from './layout.ts';

/** A convolution kernel as TensorFlow stores it: [size, size, inChannels, outChannels] (HWIO), row-major. */
export interface ConvKernel {
  size: number;
  inChannels: number;
  outChannels: number;
  values: Float32Array;
}

/** Filter `filter`'s weights on input channel `channel`: size*size values, row-major. */
export function filterSlice(k: ConvKernel, channel: number, filter: number): Float32Array {
  const out = new Float32Array(k.size * k.size);
  for (let p = 0; p < out.length; p++) out[p] = k.values[(p * k.inChannels + channel) * k.outChannels + filter];
  return out;
}

/** The scale every figure of a layer shares: the largest |weight| over all its filters and channels. */
export function kernelScale(k: ConvKernel): number {
  return symmetricScale(k.values);
}

/** File name of the figure for `layer` (e.g. "conv2") and input channel `channel`. */
export function filtersFileName(layer: string, k: ConvKernel, channel: number): string {
  return k.inChannels === 1 ? `${layer}-weights.png` : `${layer}-weights-ch${channel}.png`;
}

const LABEL_HEIGHT = 14;

export interface FiltersLayout {
  width: number;
  height: number;
  /** Pixels per weight. */
  pixel: number;
  /** Filter f's image; weight (y, x) covers [x*pixel, (x+1)*pixel) x [y*pixel, (y+1)*pixel) inside it. */
  cells: Rect[];
  colorbar: Rect;
}

export function filtersLayout(filters: number, size: number): FiltersLayout {
  const pixel = Math.max(2, Math.round((filters <= 16 ? 80 : 60) / size)); // a 5x5 filter is 80x80 or 60x60
  const top = style.headerHeight + LABEL_HEIGHT;
  const g = grid(filters, squareColumns(filters), { width: size * pixel, height: size * pixel }, { x: 12, y: 12 + LABEL_HEIGHT }, { x: style.margin, y: top });
  const colorbar = { x: style.margin + g.width + 28, y: top, width: style.colorbarWidth, height: g.height };
  return {
    width: Math.max(style.minWidth, colorbar.x + colorbar.width + style.colorbarLabels + style.margin),
    height: top + g.height + style.margin,
    pixel,
    cells: g.cells,
    colorbar,
  };
}

/** One layer's filters on one input channel; `scale` is the |weight| drawn at full red or blue. */
export function drawFilters(k: ConvKernel, channel: number, layer: string, scale: number = kernelScale(k)): Canvas {
  const layout = filtersLayout(k.outChannels, k.size);
  const { canvas, ctx } = createFigure(layout.width, layout.height);
  const of = k.inChannels > 1 ? `, input channel ${channel} of ${k.inChannels}` : '';
  const all = k.inChannels > 1 ? `all of ${layer} (±${scale.toPrecision(2)}), every channel` : `all ${k.outChannels} filters (±${scale.toPrecision(2)})`;
  drawHeader(
    ctx,
    `${layer} weights: ${k.outChannels} filters of ${k.size}×${k.size}${of}`,
    `Red: positive, blue: negative, white: zero. One scale for ${all}.`,
  );
  const color = (v: number) => diverging(v, scale);
  layout.cells.forEach((r, f) => {
    putPixels(ctx, raster(filterSlice(k, channel, f), k.size, k.size, layout.pixel, color), r.x, r.y, r.width, r.height);
    frame(ctx, r);
    text(ctx, String(f), r.x + r.width / 2, r.y - 4, { size: style.smallSize, color: style.muted, align: 'center' });
  });
  drawColorbar(ctx, layout.colorbar, { min: -scale, max: scale, color, label: 'weight' });
  return canvas;
}
