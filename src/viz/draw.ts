/**
 * The Skia side of the figures, shared by all of them: fonts, the figure canvas, headers, text,
 * pixel blocks, frames and colour bars. Everything here draws; the numbers come from color.ts and layout.ts.
 *
 * Text uses DejaVu Sans from the `dejavu-fonts-ttf` package under a private family name, so a figure
 * looks the same on every machine and never falls back to whatever fonts the system has.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { createCanvas, GlobalFonts, ImageData, type Canvas, type SKRSContext2D } from '@napi-rs/canvas';
import { ConvlabError } from '../errors.ts';
import type { Rgb } from './color.ts';
import { formatTick, linearScale, niceTicks, type Rect } from './layout.ts';

/** The family name our font files are registered under; no system font has it. */
export const FONT_FAMILY = 'ConvlabSans';

/** One visual config for every figure: sizes in CSS pixels at 100% zoom. */
export const style = {
  margin: 20,
  /** Title (bold) and subtitle sizes, and the height the two take at the top of a figure. */
  titleSize: 18,
  subtitleSize: 13,
  headerHeight: 76,
  /** Figures are at least this wide, so that a title and a one-line subtitle fit. */
  minWidth: 680,
  textSize: 13,
  smallSize: 11,
  text: '#1a1a1a',
  muted: '#5f6368',
  rule: '#d0d0d0',
  /** Captions of wrong predictions. */
  wrong: '#c62828',
  /** A colour bar: the bar's width, and the room its tick labels take to its right. */
  colorbarWidth: 14,
  colorbarLabels: 52,
} as const;

let fontsRegistered = false;

/** Registers DejaVu Sans regular and bold from node_modules, once per process. */
export function registerFonts(): void {
  if (fontsRegistered) return;
  let dir: string;
  try {
    dir = join(dirname(createRequire(import.meta.url).resolve('dejavu-fonts-ttf/package.json')), 'ttf');
  } catch (err) {
    throw new ConvlabError('FONT_MISSING', 'the dejavu-fonts-ttf package is not installed — run `npm install`', {
      cause: err,
      exitCode: 1,
    });
  }
  for (const file of ['DejaVuSans.ttf', 'DejaVuSans-Bold.ttf']) {
    if (GlobalFonts.registerFromPath(join(dir, file), FONT_FAMILY) === null) {
      throw new ConvlabError('FONT_MISSING', `${join(dir, file)}: cannot load the font — run \`npm ci\` to reinstall it`, {
        exitCode: 1,
      });
    }
  }
  fontsRegistered = true;
}

export function font(size: number, bold = false): string {
  return `${bold ? 'bold ' : ''}${size}px ${FONT_FAMILY}`;
}

export interface Figure {
  canvas: Canvas;
  ctx: SKRSContext2D;
}

/** A white canvas of whole-pixel size, fonts ready. */
export function createFigure(width: number, height: number): Figure {
  registerFonts();
  const canvas = createCanvas(Math.ceil(width), Math.ceil(height));
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  return { canvas, ctx };
}

/**
 * Title and one-line subtitle at the top left, in `style.headerHeight`. Texts are written to fit the
 * figure; should one not, it is drawn smaller rather than cut off at the edge.
 */
export function drawHeader(ctx: SKRSContext2D, title: string, subtitle: string): void {
  const room = ctx.canvas.width - 2 * style.margin;
  const fit = (s: string, size: number, bold: boolean) => Math.min(size, Math.floor((size * room) / Math.max(1, textWidth(ctx, s, size, bold))));
  text(ctx, title, style.margin, style.margin, { size: fit(title, style.titleSize, true), bold: true, baseline: 'top' });
  text(ctx, subtitle, style.margin, style.margin + 30, { size: fit(subtitle, style.subtitleSize, false), color: style.muted, baseline: 'top' });
}

export interface TextOptions {
  size?: number;
  bold?: boolean;
  color?: string;
  align?: CanvasTextAlign;
  baseline?: CanvasTextBaseline;
  /** Radians, about (x, y); -Math.PI / 2 reads bottom to top. */
  rotate?: number;
}

/** A text a figure drew, where and how (a test reads these instead of guessing from pixels). */
export interface DrawnText {
  kind: 'text';
  text: string;
  x: number;
  y: number;
  size: number;
  bold: boolean;
  color: string;
  align: CanvasTextAlign;
  rotate: number;
}

/** A value a figure showed as a coloured cell (a confusion count, a weight), at [row, col] of its grid. */
export interface DrawnCell {
  kind: 'cell';
  row: number;
  col: number;
  value: number;
  rect: Rect;
  color: Rgb;
}

export type DrawnItem = DrawnText | DrawnCell;

const drawn = new WeakMap<object, DrawnItem[]>();

/** Everything `text` and `recordCell` drew on `canvas`, in drawing order. */
export function drawnItems(canvas: Canvas): DrawnItem[] {
  return drawn.get(canvas) ?? [];
}

function record(ctx: SKRSContext2D, item: DrawnItem): void {
  const key = ctx.canvas as object;
  const items = drawn.get(key);
  if (items) items.push(item);
  else drawn.set(key, [item]);
}

/** Notes that `value` was shown as the cell `rect` in `color` (the figure fills it itself). */
export function recordCell(ctx: SKRSContext2D, row: number, col: number, value: number, rect: Rect, color: Rgb): void {
  record(ctx, { kind: 'cell', row, col, value, rect, color });
}

export function text(ctx: SKRSContext2D, s: string, x: number, y: number, o: TextOptions = {}): void {
  record(ctx, {
    kind: 'text',
    text: s,
    x,
    y,
    size: o.size ?? style.textSize,
    bold: o.bold ?? false,
    color: o.color ?? style.text,
    align: o.align ?? 'left',
    rotate: o.rotate ?? 0,
  });
  ctx.save();
  ctx.font = font(o.size ?? style.textSize, o.bold);
  ctx.fillStyle = o.color ?? style.text;
  ctx.textAlign = o.align ?? 'left';
  ctx.textBaseline = o.baseline ?? 'alphabetic';
  ctx.translate(x, y);
  if (o.rotate) ctx.rotate(o.rotate);
  ctx.fillText(s, 0, 0);
  ctx.restore();
}

export function textWidth(ctx: SKRSContext2D, s: string, size: number = style.textSize, bold = false): number {
  ctx.save();
  ctx.font = font(size, bold);
  const w = ctx.measureText(s).width;
  ctx.restore();
  return w;
}

/** Copies RGBA bytes (from `raster`) to the canvas, top left at (x, y), untouched by smoothing. */
export function putPixels(ctx: SKRSContext2D, rgba: Uint8ClampedArray, x: number, y: number, width: number, height: number): void {
  ctx.putImageData(new ImageData(rgba, width, height), Math.round(x), Math.round(y));
}

/** A 1-pixel frame just outside `r`, so it never covers the pixels inside. */
export function frame(ctx: SKRSContext2D, r: Rect, color: string = style.rule, width = 1): void {
  ctx.save();
  ctx.strokeStyle = color;
  ctx.lineWidth = width;
  ctx.strokeRect(r.x - width / 2, r.y - width / 2, r.width + width, r.height + width);
  ctx.restore();
}

export interface ColorbarOptions {
  min: number;
  max: number;
  color: (v: number) => Rgb;
  /** A word or two above the bar, e.g. "weight". */
  label?: string;
  /** Tick values; default: nice ticks over [min, max]. */
  ticks?: number[];
  format?: (v: number) => string;
}

/** A vertical colour bar in `r` (max at the top) with tick labels to its right, within `style.colorbarLabels`. */
export function drawColorbar(ctx: SKRSContext2D, r: Rect, o: ColorbarOptions): void {
  const h = Math.round(r.height);
  const w = Math.round(r.width);
  const rgba = new Uint8ClampedArray(w * h * 4);
  for (let row = 0; row < h; row++) {
    const [cr, cg, cb] = o.color(o.max - (row / Math.max(1, h - 1)) * (o.max - o.min));
    for (let col = 0; col < w; col++) rgba.set([cr, cg, cb, 255], (row * w + col) * 4);
  }
  putPixels(ctx, rgba, r.x, r.y, w, h);
  frame(ctx, { ...r, width: w, height: h }, '#888');
  const nice = niceTicks(o.min, o.max, 5);
  const y = linearScale(o.max, o.min, r.y, r.y + h - 1);
  const format = o.format ?? ((v: number) => formatTick(v, nice.step));
  const ticks = [...(o.ticks ?? nice.ticks)];
  // Label the ends too (the scale's exact extent), unless a tick label is already there.
  const ends: [number, string][] = [];
  for (const end of [o.min, o.max]) {
    if (ticks.every((t) => Math.abs(y(t) - y(end)) > 18)) ends.push([end, o.format ? o.format(end) : formatTick(end, nice.step / 10)]);
  }
  ctx.save();
  ctx.strokeStyle = '#444';
  ctx.lineWidth = 1;
  for (const t of ticks) {
    const ty = Math.round(y(t)) + 0.5;
    ctx.beginPath();
    ctx.moveTo(r.x + w, ty);
    ctx.lineTo(r.x + w + 4, ty);
    ctx.stroke();
    text(ctx, format(t), r.x + w + 7, ty, { size: style.smallSize, baseline: 'middle' });
  }
  for (const [v, label] of ends) {
    const ty = Math.round(y(v)) + 0.5;
    ctx.beginPath();
    ctx.moveTo(r.x + w, ty);
    ctx.lineTo(r.x + w + 4, ty);
    ctx.stroke();
    text(ctx, label, r.x + w + 7, ty, { size: style.smallSize, baseline: 'middle', color: style.muted });
  }
  ctx.restore();
  if (o.label) text(ctx, o.label, r.x, r.y - 14, { size: style.smallSize, color: style.muted });
}

/** PNG bytes of a figure (encoded off the main thread). */
export function encodePng(canvas: Canvas): Promise<Buffer> {
  return canvas.encode('png');
}
