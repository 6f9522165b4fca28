/**
 * A picture as a colour model's input (CIFAR-10 and other HxWx3 data sets): each RGB channel resized alike
 * to the data set's size by area averaging, as its images were made, transparency composited over white.
 * Pure: no Node, no DOM; the page (web/src/views/picture.ts), `convlab predict` and the server run it.
 *
 *   RGBA bytes ─colourInput→ height×width×3 floats in [0,1], row-major, red, green, blue per pixel
 */
import { ImageError, formatCount } from '../errors.ts';
import { resizeArea, type GrayImage } from './image.ts';

/** The input shape of a colour model (`channels` is 3). */
export interface ColourShape {
  height: number;
  width: number;
}

/** RGBA bytes (not premultiplied, as from getImageData) of a width×height picture → the model's input, NHWC. */
export function colourInput(rgba: Uint8ClampedArray | Uint8Array, width: number, height: number, input: ColourShape): Float32Array {
  if (rgba.length !== width * height * 4) {
    throw new ImageError(
      'IMAGE_SHAPE',
      `expected ${formatCount(width * height * 4)} RGBA bytes for ${width}x${height}, got ${formatCount(rgba.length)}; ` +
        'pass the `data` of the same getImageData call that gave the width and height',
    );
  }
  const channels: GrayImage[] = [0, 1, 2].map((c) => {
    const data = new Float32Array(width * height);
    for (let i = 0; i < data.length; i++) {
      const a = rgba[4 * i + 3] / 255;
      data[i] = (a * rgba[4 * i + c]) / 255 + (1 - a); // transparency over white, as grayFromRgba
    }
    return resizeArea({ width, height, data }, input.width, input.height);
  });
  const pixels = new Float32Array(input.height * input.width * 3);
  for (let i = 0; i < input.height * input.width; i++) for (let c = 0; c < 3; c++) pixels[3 * i + c] = channels[c].data[i];
  return pixels;
}
