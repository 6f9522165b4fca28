/**
 * Grayscale pictures and the pixel operations the MNIST steps are made of: luminance from RGBA, crop,
 * area-averaging resize, centre of mass, paste into a field. Pure: no Node, no DOM; each function takes and
 * returns a GrayImage (or a number) and allocates anew, so the server and the web page run the same code.
 */
import { ImageError, formatCount } from '../errors.ts';

/** A grayscale picture: luminance in [0,1], row-major, 0 = black, 1 = white. */
export interface GrayImage {
  width: number;
  height: number;
  /** width*height values, row y at [y*width, (y+1)*width). */
  data: Float32Array;
}

/**
 * RGBA bytes (as from canvas `getImageData`: not premultiplied) → luminance. Transparent pixels are
 * composited over white, because a transparent background in a drawing app is the paper.
 */
export function grayFromRgba(rgba: Uint8ClampedArray | Uint8Array, width: number, height: number): GrayImage {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 0 || height < 0) {
    throw new ImageError('IMAGE_SHAPE', `image size must be whole non-negative numbers, got ${width}x${height}`);
  }
  if (rgba.length !== width * height * 4) {
    throw new ImageError(
      'IMAGE_SHAPE',
      `expected ${formatCount(width * height * 4)} RGBA bytes for ${width}x${height}, got ${formatCount(rgba.length)}; ` +
        'pass the `data` of the same getImageData call that gave the width and height',
    );
  }
  const data = new Float32Array(width * height);
  for (let i = 0; i < data.length; i++) {
    const r = rgba[4 * i],
      g = rgba[4 * i + 1],
      b = rgba[4 * i + 2],
      a = rgba[4 * i + 3] / 255;
    const y = (0.299 * r + 0.587 * g + 0.114 * b) / 255; // ITU-R BT.601 luma, as PIL's convert('L')
    data[i] = a * y + (1 - a); // "over" white paper
  }
  return { width, height, data };
}

/** Median of the outermost ring of pixels: the background level, if the digit is not touching every edge. */
export function borderMedian(img: GrayImage): number {
  const { width: w, height: h, data } = img;
  if (w === 0 || h === 0) return NaN;
  const ring: number[] = [];
  for (let x = 0; x < w; x++) ring.push(data[x]); // top row
  if (h > 1) for (let x = 0; x < w; x++) ring.push(data[(h - 1) * w + x]); // bottom row
  for (let y = 1; y < h - 1; y++) {
    ring.push(data[y * w]); // left column
    if (w > 1) ring.push(data[y * w + w - 1]); // right column
  }
  ring.sort((a, b) => a - b);
  const mid = ring.length >> 1;
  return ring.length % 2 === 1 ? ring[mid] : (ring[mid - 1] + ring[mid]) / 2;
}

/** 1 - v: dark ink on light paper → light ink on dark. */
export function invert(img: GrayImage): GrayImage {
  const data = new Float32Array(img.data.length);
  for (let i = 0; i < data.length; i++) data[i] = 1 - img.data[i];
  return { ...img, data };
}

/**
 * Stretches ink (high values) so the background level becomes 0 and the strongest ink 1, then zeroes what
 * is left below `threshold`. Returns null when the strongest ink is within `minContrast` of the background:
 * there is nothing to stretch, and stretching noise would invent a digit.
 */
export function normalizeInk(img: GrayImage, background: number, threshold: number, minContrast: number): GrayImage | null {
  let max = -Infinity;
  for (let i = 0; i < img.data.length; i++) if (img.data[i] > max) max = img.data[i];
  const range = max - background;
  if (!(range >= minContrast)) return null; // also catches NaN (empty image)
  const data = new Float32Array(img.data.length);
  for (let i = 0; i < data.length; i++) {
    const v = (img.data[i] - background) / range;
    data[i] = v < threshold ? 0 : Math.min(v, 1);
  }
  return { ...img, data };
}

/** A rectangle of pixels: columns [x, x+width), rows [y, y+height). */
export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** Smallest rectangle holding every pixel > 0, or null when there is none. */
export function inkBBox(img: GrayImage): Box | null {
  const { width: w, height: h, data } = img;
  let x0 = w,
    y0 = h,
    x1 = -1,
    y1 = -1;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (data[y * w + x] > 0) {
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
        if (y < y0) y0 = y;
        y1 = y;
      }
    }
  }
  return x1 < 0 ? null : { x: x0, y: y0, width: x1 - x0 + 1, height: y1 - y0 + 1 };
}

/** The pixels inside `box` (which must lie within the image). */
export function crop(img: GrayImage, box: Box): GrayImage {
  const data = new Float32Array(box.width * box.height);
  for (let y = 0; y < box.height; y++) {
    const from = (box.y + y) * img.width + box.x;
    data.set(img.data.subarray(from, from + box.width), y * box.width);
  }
  return { width: box.width, height: box.height, data };
}

/** Size that fits `width`x`height` into a `side`x`side` box keeping the aspect ratio: the longer side becomes `side`. */
export function fitInBox(width: number, height: number, side: number): { width: number; height: number } {
  const scale = side / Math.max(width, height);
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) };
}

/**
 * For each output cell of a 1-D resample, the input cells it covers and by what fraction: output cell o
 * spans input [start + o*s, start + (o+1)*s) with s = span/outSize, and each input cell in [0, inSize) is
 * weighted by its overlap / s. Over the whole input the weights sum to 1, so the mean (the "ink") is kept
 * and nothing aliases: every input pixel counts. Input outside [0, inSize) is paper (0).
 */
function areaWeights(start: number, span: number, inSize: number, outSize: number): { index: number[]; weight: number[] }[] {
  const s = span / outSize;
  const cells: { index: number[]; weight: number[] }[] = [];
  for (let o = 0; o < outSize; o++) {
    const lo = start + o * s,
      hi = start + (o + 1) * s;
    const index: number[] = [],
      weight: number[] = [];
    for (let i = Math.max(0, Math.floor(lo)); i < Math.min(Math.ceil(hi), inSize); i++) {
      const overlap = Math.min(hi, i + 1) - Math.max(lo, i);
      if (overlap > 1e-9) {
        index.push(i);
        weight.push(overlap / s);
      }
    }
    cells.push({ index, weight });
  }
  return cells;
}

/**
 * Area-averaging resize (a box filter of exactly the footprint of each output pixel), separable: rows
 * first, then columns. Downscaling 1000 → 20 averages 50x50 pixels per output; it never point-samples.
 */
export function resizeArea(img: GrayImage, width: number, height: number): GrayImage {
  return resampleArea(img, { x: 0, y: 0, width: img.width, height: img.height }, width, height);
}

/**
 * Area-averaging resample of the rectangle `from` (in input pixels, fractional allowed, may reach past the
 * picture: paper there) onto `width`x`height` output pixels. `resizeArea` is the whole picture.
 */
export function resampleArea(img: GrayImage, from: Box, width: number, height: number): GrayImage {
  const { width: W, height: H, data: src } = img;
  const cols = areaWeights(from.x, from.width, W, width);
  const rows = areaWeights(from.y, from.height, H, height);
  const tmp = new Float32Array(width * H); // [H, width]: each row resampled horizontally
  for (let y = 0; y < H; y++) {
    for (let ox = 0; ox < width; ox++) {
      const { index, weight } = cols[ox];
      let sum = 0;
      for (let k = 0; k < index.length; k++) sum += weight[k] * src[y * W + index[k]];
      tmp[y * width + ox] = sum;
    }
  }
  const data = new Float32Array(width * height); // [height, width]
  for (let oy = 0; oy < height; oy++) {
    const { index, weight } = rows[oy];
    for (let k = 0; k < index.length; k++) {
      const w = weight[k],
        row = index[k] * width;
      for (let x = 0; x < width; x++) data[oy * width + x] += w * tmp[row + x];
    }
  }
  return { width, height, data };
}

/** Divides by the maximum so the strongest pixel is 1 (unchanged when all zero). */
export function scaleToMax(img: GrayImage): GrayImage {
  let max = 0;
  for (let i = 0; i < img.data.length; i++) if (img.data[i] > max) max = img.data[i];
  const data = new Float32Array(img.data.length);
  for (let i = 0; i < data.length; i++) data[i] = max > 0 ? Math.min(img.data[i] / max, 1) : 0;
  return { ...img, data };
}

/** Intensity-weighted mean pixel position, in pixel indices (pixel (0,0) is at 0,0), or null when all zero. */
export function centerOfMass(img: GrayImage): { x: number; y: number } | null {
  let mass = 0,
    mx = 0,
    my = 0;
  for (let y = 0; y < img.height; y++) {
    for (let x = 0; x < img.width; x++) {
      const v = img.data[y * img.width + x];
      mass += v;
      mx += x * v;
      my += y * v;
    }
  }
  return mass > 0 ? { x: mx / mass, y: my / mass } : null;
}

/**
 * Where to put the top-left of `img` in a `size`x`size` field so its center of mass `com` lands on the
 * field's center (size/2 in pixel indices: MNIST's test set averages (14.0, 14.0)). Rounded to whole
 * pixels, and clamped so the whole image stays inside the field.
 */
export function centeringOffset(img: GrayImage, com: { x: number; y: number }, size: number): { dx: number; dy: number } {
  const clamp = (v: number, hi: number) => Math.min(Math.max(v, 0), Math.max(hi, 0));
  return {
    dx: clamp(Math.round(size / 2 - com.x), size - img.width),
    dy: clamp(Math.round(size / 2 - com.y), size - img.height),
  };
}

/** Pastes `img` into a black `size`x`size` field with its top-left at (dx, dy); what falls outside is dropped. */
export function shift(img: GrayImage, size: number, dx: number, dy: number): GrayImage {
  const data = new Float32Array(size * size);
  for (let y = 0; y < img.height; y++) {
    const ty = y + dy;
    if (ty < 0 || ty >= size) continue;
    for (let x = 0; x < img.width; x++) {
      const tx = x + dx;
      if (tx >= 0 && tx < size) data[ty * size + tx] = img.data[y * img.width + x];
    }
  }
  return { width: size, height: size, data };
}

/**
 * Deskewing by image moments (deslanting: "the second moments of inertia of the pixels ... shear the image
 * by horizontally shifting the lines so that the principal axis is vertical", LeCun, Bottou, Bengio &
 * Haffner, "Gradient-based learning applied to document recognition", Proc. IEEE 86(11), 1998): with
 * the centre of mass (cx, cy), the skew is α = μ11/μ02, and row y is shifted by −α·(y − cy), linearly
 * interpolated. The picture widens by |α|·height so that nothing is cut off.
 */
export function deskew(img: GrayImage): GrayImage {
  const { width: w, height: h, data } = img;
  const com = centerOfMass(img);
  if (!com) return img;
  let mu11 = 0,
    mu02 = 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const v = data[y * w + x];
      mu11 += (x - com.x) * (y - com.y) * v;
      mu02 += (y - com.y) ** 2 * v;
    }
  }
  const alpha = mu02 > 0 ? mu11 / mu02 : 0;
  const extra = Math.ceil(Math.abs(alpha) * h) + 1;
  const W = w + extra;
  const out = new Float32Array(W * h);
  for (let y = 0; y < h; y++) {
    // destination x' = x − α(y − cy) + offset, so source x = x' + α(y − cy) − offset
    const shiftBy = alpha * (y - com.y) - extra / 2;
    for (let x = 0; x < W; x++) {
      const sx = x + shiftBy,
        x0 = Math.floor(sx),
        f = sx - x0;
      const a = x0 >= 0 && x0 < w ? data[y * w + x0] : 0,
        b = x0 + 1 >= 0 && x0 + 1 < w ? data[y * w + x0 + 1] : 0;
      out[y * W + x] = (1 - f) * a + f * b;
    }
  }
  return { width: W, height: h, data: out };
}
