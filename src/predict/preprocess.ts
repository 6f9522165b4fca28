/**
 * Make a user's picture of a digit look like an MNIST digit, the way MNIST's creators made theirs:
 * white ink on black, contrast stretched, cropped to the ink, area-averaged into a 20x20 box keeping
 * the aspect ratio, then placed in a 28x28 field so the ink's center of mass sits at the center
 * (LeCun, Cortes & Burges, "The MNIST database of handwritten digits").
 *
 *   bytes ─decodeImage→ GrayImage ─toMnist→ 784 floats in [0,1]
 *
 * The math (everything from `grayFromRgba` to `toMnist`) is pure and uses no Node APIs, so the server and
 * the web page run the same steps. Only `decodeImage` and `preprocessFile` touch Node and the Skia decoder,
 * and they import them lazily so that importing this module in a browser pulls in neither.
 */
import { ImageError, formatCount } from '../errors.ts';

/** A grayscale picture: luminance in [0,1], row-major, 0 = black, 1 = white. */
export interface GrayImage {
  width: number;
  height: number;
  /** width*height values, row y at [y*width, (y+1)*width). */
  data: Float32Array;
}

/** What the classifier sees. */
export interface MnistDigit {
  /** 28*28 values, row-major, white ink (1) on black (0), like an MNIST image divided by 255. */
  pixels: Float32Array;
  /** True when the picture had a light background (dark ink on paper) and was inverted. */
  inverted: boolean;
  /** True when no ink was found; `pixels` is then all zeros. */
  blank: boolean;
}

/** The knobs of `toMnist`. Defaults in `PREPROCESS_DEFAULTS`. */
export interface PreprocessConfig {
  /** Side of the output field. MNIST: 28. */
  size: number;
  /** Side of the box the ink is scaled into (the longer side of the ink becomes this). MNIST: 20. */
  box: number;
  /** Invert when the median of the border pixels is above this (a light background is paper). */
  invertAbove: number;
  /** After stretching the ink to [0,1], values below this are set to 0 (paper texture, JPEG noise). */
  threshold: number;
  /** If the darkest ink differs from the background by less than this (in [0,1]), the picture is blank. */
  minContrast: number;
}

export const PREPROCESS_DEFAULTS: Readonly<PreprocessConfig> = {
  size: 28,
  box: 20,
  invertAbove: 0.5,
  threshold: 0.1,
  minContrast: 0.15,
};

/** Pictures above this many pixels are refused before decoding (a 50 MP RGBA bitmap is already 200 MB). */
export const MAX_PIXELS = 50_000_000;

// ---------------------------------------------------------------------------------------------------
// Pure math: no Node, no DOM. Each step takes and returns a GrayImage (or a number) and allocates anew.
// ---------------------------------------------------------------------------------------------------

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
    const r = rgba[4 * i], g = rgba[4 * i + 1], b = rgba[4 * i + 2], a = rgba[4 * i + 3] / 255;
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
export function normalizeInk(
  img: GrayImage,
  background: number,
  threshold: number,
  minContrast: number,
): GrayImage | null {
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
  let x0 = w, y0 = h, x1 = -1, y1 = -1;
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
 * For each output cell of a 1-D resize, the input cells it covers and by what fraction: output cell o
 * spans input [o*s, (o+1)*s) with s = inSize/outSize, and each input cell is weighted by its overlap / s.
 * Weights sum to 1, so the mean (the "ink") is kept and nothing aliases: every input pixel counts.
 */
function areaWeights(inSize: number, outSize: number): { index: number[]; weight: number[] }[] {
  const s = inSize / outSize;
  const cells: { index: number[]; weight: number[] }[] = [];
  for (let o = 0; o < outSize; o++) {
    const lo = o * s, hi = (o + 1) * s;
    const index: number[] = [], weight: number[] = [];
    for (let i = Math.floor(lo); i < Math.min(Math.ceil(hi), inSize); i++) {
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
  const { width: W, height: H, data: src } = img;
  const cols = areaWeights(W, width);
  const rows = areaWeights(H, height);
  const tmp = new Float32Array(width * H); // [H, width]: each row resized horizontally
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
      const w = weight[k], from = index[k] * width;
      for (let x = 0; x < width; x++) data[oy * width + x] += w * tmp[from + x];
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
  let mass = 0, mx = 0, my = 0;
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

/** Any grayscale picture of one digit → an MNIST-style 28x28 digit. A picture with no ink gives `blank: true`. */
export function toMnist(img: GrayImage, config: Partial<PreprocessConfig> = {}): MnistDigit {
  const cfg = { ...PREPROCESS_DEFAULTS, ...config };
  const blank = (inverted: boolean): MnistDigit => ({ pixels: new Float32Array(cfg.size * cfg.size), inverted, blank: true });
  if (img.width === 0 || img.height === 0) return blank(false);

  // b) ink must be the high values: a light border means dark ink on paper
  const background = borderMedian(img);
  const inverted = background > cfg.invertAbove;
  const ink = inverted ? invert(img) : img;
  // c) background → 0, strongest ink → 1, faint noise → 0
  const clean = normalizeInk(ink, inverted ? 1 - background : background, cfg.threshold, cfg.minContrast);
  if (!clean) return blank(inverted);
  // d) crop to the ink
  const bbox = inkBBox(clean);
  if (!bbox) return blank(inverted);
  // e) area-average into the 20x20 box, longer side = 20; re-stretch, since averaging fades thin strokes
  const fit = fitInBox(bbox.width, bbox.height, cfg.box);
  const boxed = scaleToMax(resizeArea(crop(clean, bbox), fit.width, fit.height)); // [h≤20, w≤20]
  // f) center of mass → field center
  const com = centerOfMass(boxed);
  if (!com) return blank(inverted);
  const { dx, dy } = centeringOffset(boxed, com, cfg.size);
  return { pixels: shift(boxed, cfg.size, dx, dy).data, inverted, blank: false }; // [28, 28] in [0,1]
}

// ---------------------------------------------------------------------------------------------------
// Bytes → GrayImage: format checks done here, so a wrong file gets a message that says what it is.
// ---------------------------------------------------------------------------------------------------

type Format = 'PNG' | 'JPEG';

/** Names a few formats people try, from their magic bytes, for the error message. */
function sniffOther(b: Uint8Array): string {
  const ascii = (from: number, to: number) => String.fromCharCode(...b.subarray(from, to));
  if (ascii(0, 4) === 'GIF8') return 'looks like GIF';
  if (ascii(0, 4) === 'RIFF' && ascii(8, 12) === 'WEBP') return 'looks like WebP';
  if (ascii(0, 2) === 'BM') return 'looks like BMP';
  if (ascii(0, 4) === 'II*\0' || ascii(0, 4) === 'MM\0*') return 'looks like TIFF';
  if (ascii(4, 8) === 'ftyp') {
    return `looks like ${/^(avif|avis)/.test(ascii(8, 12)) ? 'AVIF' : 'HEIC or another ISO media file'}`;
  }
  if (ascii(0, 4) === '%PDF') return 'looks like PDF';
  if (/^\s*</.test(ascii(0, 16))) return 'looks like SVG, HTML or XML text';
  const hex = [...b.subarray(0, 8)].map((v) => v.toString(16).padStart(2, '0')).join(' ');
  return `starts with bytes ${hex}`;
}

function u16(b: Uint8Array, at: number): number {
  return (b[at] << 8) | b[at + 1];
}
function u32(b: Uint8Array, at: number): number {
  return ((b[at] << 24) >>> 0) + ((b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]);
}

let crcTable: Uint32Array | undefined;

/** CRC-32 (ISO 3309, as in PNG and zlib) of b[from, to). */
function crc32(b: Uint8Array, from: number, to: number): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = from; i < to; i++) c = crcTable[(c ^ b[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/**
 * Checks the format, reads the declared size and walks the file's structure. Skia decodes a truncated
 * PNG or JPEG without complaint and leaves the missing rows transparent, so truncation is caught here.
 */
function inspect(b: Uint8Array, name: string): { format: Format; width: number; height: number } {
  const corrupt = (format: Format, what: string) =>
    new ImageError(
      'IMAGE_DECODE',
      `${name}: corrupt ${format} image (${what}); open it in an image editor and export it again`,
    );
  const checkSize = (format: Format, width: number, height: number) => {
    if (width === 0 || height === 0) throw corrupt(format, `declared size ${width}x${height}`);
    if (width * height > MAX_PIXELS) {
      throw new ImageError(
        'IMAGE_TOO_LARGE',
        `${name}: ${formatCount(width)}x${formatCount(height)} is ${formatCount(width * height)} pixels, over the ` +
          `${formatCount(MAX_PIXELS)}-pixel limit; scale it down (a digit needs only a few hundred pixels) and try again`,
      );
    }
  };

  if (PNG_SIGNATURE.every((v, i) => b[i] === v)) {
    // chunks: length u32, type 4 bytes, data, crc u32; IHDR first, IEND last
    if (b.length < 33 || String.fromCharCode(...b.subarray(12, 16)) !== 'IHDR') throw corrupt('PNG', 'no IHDR header');
    const width = u32(b, 16), height = u32(b, 20);
    checkSize('PNG', width, height);
    let at = 8, sawData = false;
    for (;;) {
      if (at + 8 > b.length) throw corrupt('PNG', `truncated: ${formatCount(b.length)} bytes end before the IEND chunk`);
      const length = u32(b, at), type = String.fromCharCode(...b.subarray(at + 4, at + 8));
      if (at + 12 + length > b.length) {
        throw corrupt(
          'PNG',
          `truncated: chunk ${JSON.stringify(type)} at byte ${formatCount(at)} needs ${formatCount(12 + length)} ` +
            `bytes, the file ends after ${formatCount(b.length - at)}`,
        );
      }
      // a CRC mismatch is a damaged file; Skia would decode it to garbage or to nothing without a word
      if (crc32(b, at + 4, at + 8 + length) !== u32(b, at + 8 + length)) {
        throw corrupt('PNG', `chunk ${JSON.stringify(type)} at byte ${formatCount(at)} fails its CRC check`);
      }
      if (type === 'IDAT') sawData = true;
      if (type === 'IEND') break;
      at += 12 + length;
    }
    if (!sawData) throw corrupt('PNG', 'no IDAT pixel data');
    return { format: 'PNG', width, height };
  }

  if (b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) {
    // segments: FF marker [length u16 incl. itself]; the frame header SOFn holds the size; pixels follow SOS
    let at = 2, size: { width: number; height: number } | null = null;
    for (;;) {
      if (at + 4 > b.length) throw corrupt('JPEG', 'truncated before the image data');
      if (b[at] !== 0xff) throw corrupt('JPEG', `no segment marker at byte ${formatCount(at)}`);
      const marker = b[at + 1];
      if (marker === 0xff) { at++; continue; } // fill byte
      if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) { at += 2; continue; } // no length
      if (marker === 0xd9) throw corrupt('JPEG', 'ends before the image data');
      const length = u16(b, at + 2);
      if (at + 2 + length > b.length) throw corrupt('JPEG', 'truncated in a header segment');
      const isSof = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
      if (isSof) {
        size = { height: u16(b, at + 5), width: u16(b, at + 7) };
        checkSize('JPEG', size.width, size.height);
      }
      if (marker === 0xda) break; // start of scan: entropy-coded data follows
      at += 2 + length;
    }
    if (!size) throw corrupt('JPEG', 'no frame header before the image data');
    // EOI cannot occur inside entropy-coded data (0xFF is stuffed as FF 00), so none after SOS = cut short
    let end = b.length - 2;
    while (end > at && !(b[end] === 0xff && b[end + 1] === 0xd9)) end--;
    if (end <= at) throw corrupt('JPEG', 'truncated: no end-of-image marker after the image data');
    return { format: 'JPEG', ...size };
  }

  throw new ImageError(
    'IMAGE_DECODE',
    `${name}: not a PNG or JPEG image (${sniffOther(b)}); convert it to PNG or JPEG and try again`,
  );
}

/**
 * PNG or JPEG bytes → grayscale, alpha composited over white. EXIF orientation is applied by the decoder.
 * Errors (`ImageError`): IMAGE_EMPTY, IMAGE_DECODE (not PNG/JPEG, corrupt, truncated), IMAGE_TOO_LARGE.
 * `name` is only used in messages.
 */
export async function decodeImage(bytes: Uint8Array, name: string): Promise<GrayImage> {
  if (bytes.length === 0) {
    throw new ImageError('IMAGE_EMPTY', `${name}: the file is empty (0 bytes); save the picture again as PNG or JPEG`);
  }
  const { format } = inspect(bytes, name);
  const { createCanvas, loadImage } = await import('@napi-rs/canvas'); // lazy: keeps this module browser-safe
  let image: Awaited<ReturnType<typeof loadImage>>;
  try {
    image = await loadImage(bytes);
  } catch (err) {
    throw new ImageError(
      'IMAGE_DECODE',
      `${name}: the ${format} decoder rejected it (${(err as Error)?.message ?? err}); ` +
        'open it in an image editor and export it again',
      { cause: err },
    );
  }
  const { width, height } = image; // may be the header's size swapped, after EXIF rotation
  if (width === 0 || height === 0) {
    throw new ImageError('IMAGE_DECODE', `${name}: the ${format} decoder returned an empty ${width}x${height} image`);
  }
  const ctx = createCanvas(width, height).getContext('2d');
  ctx.drawImage(image, 0, 0); // onto a transparent canvas: alpha survives, grayFromRgba puts it over white
  return grayFromRgba(ctx.getImageData(0, 0, width, height).data, width, height);
}

/** Reads, decodes and preprocesses one picture file → 784 floats for the classifier. */
export async function preprocessFile(path: string): Promise<Float32Array> {
  const { readFile } = await import('node:fs/promises');
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException)?.code;
    if (code === 'ENOENT') {
      const hint = `check the path (the current folder is ${process.cwd()})`;
      throw new ImageError('FILE_NOT_FOUND', `${path}: no such file; ${hint}`, { cause: err });
    }
    const why = code ?? (err as Error)?.message;
    throw new ImageError('FILE_UNREADABLE', `${path}: cannot read it (${why}); pass a readable PNG or JPEG file`, {
      cause: err,
    });
  }
  return toMnist(await decodeImage(bytes, path)).pixels;
}
