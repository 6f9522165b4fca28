/** Test helpers for figures: decode a PNG and read its pixels, and name colours loosely. */
import assert from 'node:assert/strict';
import { createCanvas, loadImage, type Canvas } from '@napi-rs/canvas';

export interface Pixels {
  width: number;
  height: number;
  /** [r, g, b] at (x, y), rounded to whole pixels. */
  at(x: number, y: number): [number, number, number];
}

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** Decodes PNG bytes (checking the signature first) into readable pixels. */
export async function decodePng(bytes: Uint8Array): Promise<Pixels> {
  assert.deepEqual([...bytes.subarray(0, 8)], SIGNATURE, 'not a PNG: wrong signature');
  const image = await loadImage(Buffer.from(bytes));
  const canvas = createCanvas(image.width, image.height);
  canvas.getContext('2d').drawImage(image, 0, 0);
  return pixelsOf(canvas);
}

export function pixelsOf(canvas: Canvas): Pixels {
  const { width, height } = canvas;
  const data = canvas.getContext('2d').getImageData(0, 0, width, height).data;
  return {
    width,
    height,
    at(x, y) {
      const o = (Math.round(y) * width + Math.round(x)) * 4;
      return [data[o], data[o + 1], data[o + 2]];
    },
  };
}

export const isRed = ([r, g, b]: readonly number[]) => r > g + 40 && r > b + 40;
export const isBlue = ([r, g, b]: readonly number[]) => b > r + 40 && b >= g;
export const isWhite = ([r, g, b]: readonly number[]) => r > 235 && g > 235 && b > 235;
export const brightness = ([r, g, b]: readonly number[]) => (r + g + b) / 3;

/** The rightmost column in rows [y0, y1) holding a pixel that is not white, or -1. */
export function rightmostInk(p: Pixels, y0: number, y1: number): number {
  for (let x = p.width - 1; x >= 0; x--) for (let y = y0; y < y1; y++) if (!isWhite(p.at(x, y))) return x;
  return -1;
}
