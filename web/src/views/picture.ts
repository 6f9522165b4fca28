/**
 * Your own picture: choose a file (on a phone, `capture` offers the camera), drop one on the page, or
 * paste one. The picture is decoded by the browser and goes through the same preprocessing as
 * `convlab predict` (src/predict/preprocess.ts): grayscale, invert a light background, crop to the ink,
 * fit into 20x20, centre by mass in 28x28. For colour models (CIFAR-10) it is resized to the data set's
 * size by area averaging, each channel alike (`colourInput`, shared with `convlab predict` and the server).
 */
import { colourInput, grayFromRgba, toMnist } from '../../../src/predict/preprocess.ts';

export interface Picture {
  name: string;
  width: number;
  height: number;
  /** RGBA bytes as from getImageData (not premultiplied). */
  rgba: Uint8ClampedArray;
}

/** Larger pictures are scaled down to this many pixels on the long side before preprocessing. */
export const MAX_SIDE = 2048;

/** Decodes a PNG, JPEG, … with the browser's decoder (EXIF orientation applied, as a photo is shown). */
export async function decodePicture(blob: Blob, name: string): Promise<Picture> {
  if (blob.type && !blob.type.startsWith('image/')) throw new Error(`${name}: ${blob.type} is not a picture; choose a PNG or JPEG`);
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(blob, { imageOrientation: 'from-image' });
  } catch {
    throw new Error(`${name}: this browser could not decode it; choose a PNG or JPEG`);
  }
  const scale = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
  const width = Math.max(1, Math.round(bitmap.width * scale)),
    height = Math.max(1, Math.round(bitmap.height * scale));
  const canvas = new OffscreenCanvas(width, height);
  const ctx = canvas.getContext('2d', { willReadFrequently: true })!;
  ctx.drawImage(bitmap, 0, 0, width, height);
  bitmap.close();
  return { name, width, height, rgba: ctx.getImageData(0, 0, width, height).data };
}

export interface Preprocessed {
  /** The network's input, NHWC, values in [0,1]; null when no ink was found. */
  pixels: Float32Array | null;
  /** What was done, in a few words. */
  note: string;
}

/** The picture as the network's input, for a network with this input shape. */
export function preprocessPicture(p: Picture, input: { height: number; width: number; channels: number }): Preprocessed {
  if (input.channels === 1) {
    const digit = toMnist(grayFromRgba(p.rgba, p.width, p.height));
    if (digit.blank) return { pixels: null, note: 'no ink found in the picture: it is one flat shade' };
    return { pixels: digit.pixels, note: `${digit.inverted ? 'light paper: inverted, ' : ''}cropped to the ink, scaled into 20×20, centred by mass in 28×28` };
  }
  // colour: each channel resized alike to the data set's size, as its images were made (src/predict/colour.ts)
  const pixels = colourInput(p.rgba, p.width, p.height, input);
  return { pixels, note: `resized to ${input.width}×${input.height} by area averaging` };
}

/**
 * Wires a file input, drops on `dropZone` and pastes anywhere on the page to `onPicture`. Errors (not a
 * picture, undecodable) go to `onError`.
 */
export function listenForPictures(
  fileInput: HTMLInputElement,
  dropZone: HTMLElement,
  onPicture: (p: Picture) => void,
  onError: (message: string) => void,
): void {
  const take = async (blob: Blob | null | undefined, name: string) => {
    if (!blob) return;
    try {
      onPicture(await decodePicture(blob, name));
    } catch (err) {
      onError((err as Error).message);
    }
  };
  fileInput.addEventListener('change', () => {
    const file = fileInput.files?.[0];
    void take(file, file?.name ?? 'the file');
    fileInput.value = ''; // choosing the same file again is a new choice
  });
  dropZone.addEventListener('dragover', (e) => {
    e.preventDefault();
    dropZone.classList.add('dropping');
  });
  dropZone.addEventListener('dragleave', () => dropZone.classList.remove('dropping'));
  dropZone.addEventListener('drop', (e) => {
    e.preventDefault();
    dropZone.classList.remove('dropping');
    const file = e.dataTransfer?.files?.[0];
    void take(file, file?.name ?? 'the dropped picture');
  });
  document.addEventListener('paste', (e) => {
    const item = [...(e.clipboardData?.items ?? [])].find((i) => i.kind === 'file' && i.type.startsWith('image/'));
    if (!item) return;
    e.preventDefault();
    void take(item.getAsFile(), 'the pasted picture');
  });
}

/** Draws the original picture into `canvas`, fitted into its box keeping the aspect ratio. */
export function showOriginal(canvas: HTMLCanvasElement, p: Picture): void {
  const side = 224;
  const scale = Math.min(side / p.width, side / p.height);
  canvas.width = Math.max(1, Math.round(p.width * scale));
  canvas.height = Math.max(1, Math.round(p.height * scale));
  const source = new OffscreenCanvas(p.width, p.height);
  source.getContext('2d')!.putImageData(new ImageData(new Uint8ClampedArray(p.rgba), p.width, p.height), 0, 0);
  const ctx = canvas.getContext('2d')!;
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(source, 0, 0, canvas.width, canvas.height);
}
