/**
 * Small pixel helpers of the preprocessing steps (pipeline.ts): a 3x3 mean, grey-level dilation and
 * erosion, mask neighbourhoods and hysteresis growth, crops and box scaling. Pure: no Node, no DOM.
 */
import type { Box, GrayImage } from './image.ts';
import type { Mask } from './paper.ts';

/** 3x3 mean (separable), edges replicated: sensor noise σ drops to σ/3 while strokes ≥ 3 px keep their level. */
export function box3(img: GrayImage): GrayImage {
  const { width: w, height: h, data } = img;
  const tmp = new Float32Array(data.length),
    out = new Float32Array(data.length);
  if (w === 0 || h === 0) return { width: w, height: h, data: out };
  for (let y = 0; y < h; y++) {
    const r = y * w;
    if (w === 1) {
      tmp[r] = data[r];
      continue;
    }
    tmp[r] = (2 * data[r] + data[r + 1]) / 3;
    for (let x = 1; x < w - 1; x++) tmp[r + x] = (data[r + x - 1] + data[r + x] + data[r + x + 1]) / 3;
    tmp[r + w - 1] = (data[r + w - 2] + 2 * data[r + w - 1]) / 3;
  }
  for (let y = 0; y < h; y++) {
    const up = y > 0 ? (y - 1) * w : 0,
      mid = y * w,
      down = y < h - 1 ? (y + 1) * w : mid;
    for (let x = 0; x < w; x++) out[mid + x] = (tmp[up + x] + tmp[mid + x] + tmp[down + x]) / 3;
  }
  return { width: w, height: h, data: out };
}

/** Grey-level dilation (max) or erosion (min) over r passes of alternating 3x3 square and cross: an octagon. */
export function greyMorph(img: GrayImage, r: number, grow: boolean): GrayImage {
  const { width: w, height: h } = img;
  let src = img.data;
  for (let pass = 0; pass < r; pass++) {
    const square = pass % 2 === 0,
      out = new Float32Array(src.length);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        let v = src[y * w + x];
        for (let dy = -1; dy <= 1; dy++) {
          for (let dx = -1; dx <= 1; dx++) {
            if ((dx === 0 && dy === 0) || (!square && dx !== 0 && dy !== 0)) continue;
            const yy = y + dy,
              xx = x + dx;
            const u = yy < 0 || yy >= h || xx < 0 || xx >= w ? 0 : src[yy * w + xx];
            v = grow ? (u > v ? u : v) : u < v ? u : v;
          }
        }
        out[y * w + x] = v;
      }
    }
    src = out;
  }
  return { width: w, height: h, data: src };
}

/**
 * Pixels within chessboard distance r of the mask: a two-pass distance transform (Rosenfeld & Pfaltz,
 * "Sequential operations in digital picture processing", 1966), O(pixels) whatever r.
 */
export function within(mask: Mask, r: number): Mask {
  const { width: w, height: h } = mask;
  const d = new Int32Array(w * h);
  const far = w + h;
  for (let i = 0; i < d.length; i++) d[i] = mask.data[i] ? 0 : far;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      let v = d[i];
      if (x > 0) v = Math.min(v, d[i - 1] + 1);
      if (y > 0) {
        v = Math.min(v, d[i - w] + 1);
        if (x > 0) v = Math.min(v, d[i - w - 1] + 1);
        if (x < w - 1) v = Math.min(v, d[i - w + 1] + 1);
      }
      d[i] = v;
    }
  }
  const out = new Uint8Array(w * h);
  for (let y = h - 1; y >= 0; y--) {
    for (let x = w - 1; x >= 0; x--) {
      const i = y * w + x;
      let v = d[i];
      if (x < w - 1) v = Math.min(v, d[i + 1] + 1);
      if (y < h - 1) {
        v = Math.min(v, d[i + w] + 1);
        if (x < w - 1) v = Math.min(v, d[i + w + 1] + 1);
        if (x > 0) v = Math.min(v, d[i + w - 1] + 1);
      }
      d[i] = v;
      out[i] = v <= r ? 1 : 0;
    }
  }
  return { width: w, height: h, data: out };
}

/** `seed` grown over the 8-connected pixels of `img` that are ≥ `low`. */
export function hysteresis(seed: Mask, img: GrayImage, low: number): Mask {
  const { width: w, height: h } = seed;
  const out = new Uint8Array(seed.data);
  const stack = new Int32Array(out.length);
  let top = 0;
  for (let i = 0; i < out.length; i++) if (out[i]) stack[top++] = i;
  while (top > 0) {
    const i = stack[--top],
      x = i % w,
      y = (i - x) / w;
    for (let dy = -1; dy <= 1; dy++) {
      for (let dx = -1; dx <= 1; dx++) {
        const yy = y + dy,
          xx = x + dx;
        if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
        const j = yy * w + xx;
        if (!out[j] && img.data[j] >= low) {
          out[j] = 1;
          stack[top++] = j;
        }
      }
    }
  }
  return { width: w, height: h, data: out };
}

export function crop01(mask: Mask, box: Box): Mask {
  const data = new Uint8Array(box.width * box.height);
  for (let y = 0; y < box.height; y++) {
    const from = (box.y + y) * mask.width + box.x;
    data.set(mask.data.subarray(from, from + box.width), y * box.width);
  }
  return { width: box.width, height: box.height, data };
}

export const scaleBox = (b: Box, s: number): Box => ({
  x: Math.round(b.x * s),
  y: Math.round(b.y * s),
  width: Math.round(b.width * s),
  height: Math.round(b.height * s),
});
