/** Test helpers that draw MNIST digits the way a user's photo or drawing would look. */
import { type Canvas, createCanvas, ImageData } from '@napi-rs/canvas';

/** Draws a 28x28 digit dark-on-white, `scale` times larger (smoothed), top-left at (x, y) of a w x h canvas. */
export function renderOnPaper(digit: Float32Array, opts: { scale: number; w: number; h: number; x: number; y: number }): Canvas {
  const small = createCanvas(28, 28);
  const rgba = new Uint8ClampedArray(784 * 4);
  for (let i = 0; i < 784; i++) {
    rgba.fill(Math.round(255 * (1 - digit[i])), 4 * i, 4 * i + 3);
    rgba[4 * i + 3] = 255;
  }
  small.getContext('2d').putImageData(new ImageData(rgba, 28, 28), 0, 0);
  const big = createCanvas(opts.w, opts.h);
  const ctx = big.getContext('2d');
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, opts.w, opts.h);
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(small, opts.x, opts.y, 28 * opts.scale, 28 * opts.scale);
  return big;
}
