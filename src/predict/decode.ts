/**
 * Picture bytes → GrayImage (or RgbaImage, for colour models), in Node, with the Skia decoder of
 * `@napi-rs/canvas` (imported lazily, so that importing predict/ in a browser pulls in neither Node nor
 * Skia). It reads PNG, JPEG, WebP, GIF (the first frame), AVIF and BMP, and applies a JPEG's EXIF orientation, so a photo stored sideways comes out upright.
 *
 * Before anything is decoded the header is read here: the declared size is checked against `MAX_PIXELS`
 * (a 30,000 x 30,000 header or a PNG bomb is refused before it can allocate gigabytes), and PNG, JPEG, WebP
 * and GIF files are walked to their end, because Skia decodes a truncated file without complaint and leaves
 * the missing rows transparent. Pictures over `DECODE_SIDE` pixels a side are drawn straight into a smaller
 * canvas by Skia (mipmapped), which is what keeps a 12-megapixel photo under 300 ms.
 */
import { ImageError, formatCount } from '../errors.ts';
import { grayFromRgba, type GrayImage } from './image.ts';
import { toMnist, type MnistDigit, type PreprocessConfig } from './pipeline.ts';

/** Pictures above this many pixels are refused before decoding (a 50 MP RGBA bitmap is already 200 MB). */
export const MAX_PIXELS = 50_000_000;

/** Longer side a decoded picture is drawn at, at most: the pipeline works at 800 px (`workingSide`). */
export const DECODE_SIDE = 800;

type Format = 'PNG' | 'JPEG' | 'WebP' | 'GIF' | 'AVIF' | 'BMP';

/** Names a few formats people try, from their magic bytes, for the error message. */
function sniffOther(b: Uint8Array): string {
  const ascii = (from: number, to: number) => String.fromCharCode(...b.subarray(from, to));
  if (ascii(0, 4) === 'II*\0' || ascii(0, 4) === 'MM\0*') return 'looks like TIFF';
  if (ascii(4, 8) === 'ftyp') return 'looks like HEIC or another ISO media file';
  if (ascii(0, 4) === '%PDF') return 'looks like PDF';
  if (/^\s*</.test(ascii(0, 16))) return 'looks like SVG, HTML or XML text';
  const hex = [...b.subarray(0, 8)].map((v) => v.toString(16).padStart(2, '0')).join(' ');
  return `starts with bytes ${hex}`;
}

const le16 = (b: Uint8Array, at: number) => b[at] | (b[at + 1] << 8);
const le24 = (b: Uint8Array, at: number) => b[at] | (b[at + 1] << 8) | (b[at + 2] << 16);
const le32 = (b: Uint8Array, at: number) => (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16)) + b[at + 3] * 2 ** 24;

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
 * Checks the format, reads the declared size and walks the file's structure where truncation would go
 * unnoticed by the decoder.
 */
function inspect(b: Uint8Array, name: string): { format: Format; width: number; height: number } {
  const corrupt = (format: Format, what: string) =>
    new ImageError('IMAGE_DECODE', `${name}: corrupt ${format} image (${what}); open it in an image editor and export it again`);
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
  const ascii = (from: number, to: number) => String.fromCharCode(...b.subarray(from, to));

  if (PNG_SIGNATURE.every((v, i) => b[i] === v)) {
    // chunks: length u32, type 4 bytes, data, crc u32; IHDR first, IEND last
    if (b.length < 33 || String.fromCharCode(...b.subarray(12, 16)) !== 'IHDR') throw corrupt('PNG', 'no IHDR header');
    const width = u32(b, 16),
      height = u32(b, 20);
    checkSize('PNG', width, height);
    let at = 8,
      sawData = false;
    for (;;) {
      if (at + 8 > b.length) throw corrupt('PNG', `truncated: ${formatCount(b.length)} bytes end before the IEND chunk`);
      const length = u32(b, at),
        type = String.fromCharCode(...b.subarray(at + 4, at + 8));
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
    let at = 2,
      size: { width: number; height: number } | null = null;
    for (;;) {
      if (at + 4 > b.length) throw corrupt('JPEG', 'truncated before the image data');
      if (b[at] !== 0xff) throw corrupt('JPEG', `no segment marker at byte ${formatCount(at)}`);
      const marker = b[at + 1];
      if (marker === 0xff) {
        at++;
        continue;
      } // fill byte
      if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
        at += 2;
        continue;
      } // no length
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

  if (ascii(0, 4) === 'RIFF' && ascii(8, 12) === 'WEBP') {
    // RIFF size covers the rest of the file; the first chunk is VP8 (lossy), VP8L (lossless) or VP8X (extended)
    if (b.length < 30) throw corrupt('WebP', 'truncated header');
    if (le32(b, 4) + 8 > b.length)
      throw corrupt('WebP', `truncated: the header declares ${formatCount(le32(b, 4) + 8)} bytes, the file has ${formatCount(b.length)}`);
    const chunk = ascii(12, 16);
    let width: number, height: number;
    if (chunk === 'VP8X') [width, height] = [le24(b, 24) + 1, le24(b, 27) + 1];
    else if (chunk === 'VP8L') [width, height] = [(le16(b, 21) & 0x3fff) + 1, (((le16(b, 22) >> 6) | (b[24] << 10)) & 0x3fff) + 1];
    else if (chunk === 'VP8 ') [width, height] = [le16(b, 26) & 0x3fff, le16(b, 28) & 0x3fff];
    else throw corrupt('WebP', `unknown first chunk ${JSON.stringify(chunk)}`);
    checkSize('WebP', width, height);
    return { format: 'WebP', width, height };
  }

  if (ascii(0, 4) === 'GIF8') {
    if (b.length < 13) throw corrupt('GIF', 'truncated header');
    const width = le16(b, 6),
      height = le16(b, 8);
    checkSize('GIF', width, height);
    if (b[b.length - 1] !== 0x3b) throw corrupt('GIF', 'truncated: no trailer byte at the end');
    return { format: 'GIF', width, height };
  }

  if (ascii(4, 8) === 'ftyp' && /^(avif|avis)/.test(ascii(8, 12))) {
    // the size is in an 'ispe' box (ISO/IEC 23008-12): version/flags u32, width u32, height u32
    const at = b.subarray(0, Math.min(b.length, 1 << 16)).findIndex((v, i, a) => v === 0x69 && a[i + 1] === 0x73 && a[i + 2] === 0x70 && a[i + 3] === 0x65);
    if (at < 0 || at + 16 > b.length) throw corrupt('AVIF', 'no image size (ispe) in the header');
    const width = u32(b, at + 8),
      height = u32(b, at + 12);
    checkSize('AVIF', width, height);
    return { format: 'AVIF', width, height };
  }

  if (ascii(0, 2) === 'BM') {
    if (b.length < 26) throw corrupt('BMP', 'truncated header');
    const width = Math.abs(le32(b, 18) | 0),
      height = Math.abs(le32(b, 22) | 0);
    checkSize('BMP', width, height);
    if (le32(b, 2) > b.length) throw corrupt('BMP', 'truncated');
    return { format: 'BMP', width, height };
  }

  throw new ImageError(
    'IMAGE_DECODE',
    `${name}: not a PNG or JPEG image, nor WebP, GIF, AVIF or BMP (${sniffOther(b)}); convert it to PNG or JPEG and try again`,
  );
}

/** Where `decodeImage` spent its time, in milliseconds of wall time (filled in when passed). */
export interface DecodeTiming {
  /** Header checks and Skia's decoding of the whole picture (and its EXIF rotation). */
  decode: number;
  /** Skia drawing it into the working size (mipmapped, area-like), and reading the pixels back. */
  shrink: number;
  /** RGBA → luminance. */
  gray: number;
  /** The picture's own size, after EXIF rotation. */
  width: number;
  height: number;
}

/** A decoded picture: RGBA bytes (not premultiplied), longer side at most `DECODE_SIDE`. */
export interface RgbaImage {
  width: number;
  height: number;
  rgba: Uint8ClampedArray;
}

/**
 * Picture bytes → grayscale, alpha composited over white, EXIF orientation applied (by Skia), longer side
 * at most `DECODE_SIDE`. Errors (`ImageError`): IMAGE_EMPTY, IMAGE_DECODE (unknown format, corrupt,
 * truncated), IMAGE_TOO_LARGE. `name` is only used in messages; `timing`, when given, is filled in.
 */
export async function decodeImage(bytes: Uint8Array, name: string, timing?: DecodeTiming): Promise<GrayImage> {
  const { width: w, height: h, rgba } = await decodeRgba(bytes, name, timing);
  const t2 = performance.now();
  const gray = grayFromRgba(rgba, w, h);
  if (timing) timing.gray = performance.now() - t2;
  return gray;
}

/**
 * Picture bytes → RGBA, with the checks, EXIF orientation, shrinking and errors of `decodeImage`; for
 * colour models (`colourInput` makes their input from it). `timing.gray` stays 0.
 */
export async function decodeRgba(bytes: Uint8Array, name: string, timing?: DecodeTiming): Promise<RgbaImage> {
  const t0 = performance.now();
  if (bytes.length === 0) {
    throw new ImageError('IMAGE_EMPTY', `${name}: the file is empty (0 bytes); save the picture again as PNG or JPEG`);
  }
  const { format } = inspect(bytes, name);
  const { createCanvas, loadImage } = await import('@napi-rs/canvas'); // lazy: keeps predict/ browser-safe
  let image: Awaited<ReturnType<typeof loadImage>>;
  try {
    image = await loadImage(bytes);
  } catch (err) {
    throw new ImageError(
      'IMAGE_DECODE',
      `${name}: the ${format} decoder rejected it (${(err as Error)?.message ?? err}); open it in an image editor and export it again`,
      { cause: err },
    );
  }
  const { width, height } = image; // may be the header's size swapped, after EXIF rotation
  if (width === 0 || height === 0) {
    throw new ImageError('IMAGE_DECODE', `${name}: the ${format} decoder returned an empty ${width}x${height} image`);
  }
  const t1 = performance.now();
  const s = Math.min(1, DECODE_SIDE / Math.max(width, height));
  const w = Math.max(1, Math.round(width * s)),
    h = Math.max(1, Math.round(height * s));
  const ctx = createCanvas(w, h).getContext('2d');
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(image, 0, 0, w, h); // onto a transparent canvas: alpha survives, grayFromRgba puts it over white
  const rgba = ctx.getImageData(0, 0, w, h).data;
  if (timing) Object.assign(timing, { decode: t1 - t0, shrink: performance.now() - t1, gray: 0, width, height });
  return { width: w, height: h, rgba };
}

/** A picture with no ink is refused rather than classified: the network would answer something anyway. */
export function requireInk(digit: MnistDigit, name: string): MnistDigit {
  if (digit.blank) {
    throw new ImageError(
      'IMAGE_NO_INK',
      `${name}: no digit found (the picture is one colour, or the ink is too faint to tell from the paper); ` +
        'photograph a digit written darker than its paper, or draw one',
    );
  }
  return digit;
}

/** Picture bytes → the network's input and how it was found; refuses pictures without ink (IMAGE_NO_INK). */
export async function digitFromBytes(bytes: Uint8Array, name: string, config: Partial<PreprocessConfig> = {}): Promise<MnistDigit> {
  return requireInk(toMnist(await decodeImage(bytes, name), config), name);
}

/** Reads a picture file; errors name the file (FILE_NOT_FOUND, FILE_UNREADABLE). */
export async function readPicture(path: string): Promise<Uint8Array> {
  const { readFile } = await import('node:fs/promises');
  try {
    return await readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException)?.code;
    if (code === 'ENOENT') {
      const hint = `check the path (the current folder is ${process.cwd()})`;
      throw new ImageError('FILE_NOT_FOUND', `${path}: no such file; ${hint}`, { cause: err });
    }
    const why = code === 'EISDIR' ? 'it is a folder' : (code ?? (err as Error)?.message);
    throw new ImageError('FILE_UNREADABLE', `${path}: cannot read it (${why}); pass a readable picture file`, { cause: err });
  }
}

/** Reads, decodes and preprocesses one picture file → 784 floats for the classifier. */
export async function preprocessFile(path: string): Promise<Float32Array> {
  return (await digitFromBytes(await readPicture(path), path)).pixels;
}
