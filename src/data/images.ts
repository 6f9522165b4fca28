/**
 * Labelled images in memory, in two forms:
 *
 *   LabeledImages  pixels as floats in [0,1], ready for a tensor (what evaluation, the figures and serving use);
 *   LabeledBytes   the data set's own bytes (pixel = byte / 255), 4x smaller, converted to floats one batch
 *                  at a time. The loaders keep the training and validation splits this way: CIFAR-10's
 *                  50,000 training images are 154 MB as bytes and 614 MB as floats.
 *
 * A byte converts through UNIT_SCALE, the same table the loaders used for floats, so a batch is bit for bit
 * the same whichever form its images were kept in. No Node imports: the page uses this module.
 */

/** Images and their labels, ready for training. */
export interface LabeledImages {
  /** N*H*W*C pixels (NHWC, row-major), scaled from uint8 to [0,1]. */
  images: Float32Array;
  /** N class indices. */
  labels: Uint8Array;
  /** N, the number of examples. */
  count: number;
  height: number;
  width: number;
  channels: number;
}

/** The same, with the pixels kept as bytes: pixel value = byte / 255. */
export interface LabeledBytes {
  /** N*H*W*C bytes (NHWC, row-major). */
  bytes: Uint8Array;
  labels: Uint8Array;
  count: number;
  height: number;
  width: number;
  channels: number;
}

/** Either form; training, validation and the batch sampler take both. */
export type ImageSet = LabeledImages | LabeledBytes;

/** 256 entries: byte value → float in [0,1]. A lookup is exact (v/255 rounded once) and faster than dividing. */
export const UNIT_SCALE = Float32Array.from({ length: 256 }, (_, v) => v / 255);

export function isBytes(set: ImageSet): set is LabeledBytes {
  return 'bytes' in set;
}

/** Values per image: H*W*C. */
export function pixelsPerImage(set: { height: number; width: number; channels: number }): number {
  return set.height * set.width * set.channels;
}

/** Bytes → floats in [0,1] into `out` at `at` (or a fresh array). */
export function bytesToFloats(bytes: Uint8Array, out: Float32Array = new Float32Array(bytes.length), at = 0): Float32Array {
  for (let i = 0; i < bytes.length; i++) out[at + i] = UNIT_SCALE[bytes[i]];
  return out;
}

/**
 * Images `start .. start+count−1` as floats: a view into a float set (no copy), a fresh array for a byte set.
 */
export function imageFloats(set: ImageSet, start = 0, count = set.count - start): Float32Array {
  const size = pixelsPerImage(set);
  if (!isBytes(set)) return set.images.subarray(start * size, (start + count) * size);
  return bytesToFloats(set.bytes.subarray(start * size, (start + count) * size));
}

/** Image `index` of `set` as floats into `out` at `at` (the batch sampler's copy). */
export function copyImageFloats(set: ImageSet, index: number, out: Float32Array, at: number): void {
  const size = pixelsPerImage(set);
  if (isBytes(set)) bytesToFloats(set.bytes.subarray(index * size, (index + 1) * size), out, at);
  else out.set(set.images.subarray(index * size, (index + 1) * size), at);
}

/**
 * Images `start .. start+count−1` as bytes: a view into a byte set, rounded from a float set (exact for
 * images that came from bytes).
 */
export function imageBytes(set: ImageSet, start = 0, count = set.count - start): Uint8Array {
  const size = pixelsPerImage(set);
  if (isBytes(set)) return set.bytes.subarray(start * size, (start + count) * size);
  const floats = set.images.subarray(start * size, (start + count) * size);
  const out = new Uint8Array(floats.length);
  for (let i = 0; i < floats.length; i++) out[i] = Math.round(floats[i] * 255);
  return out;
}

/** The whole set as floats (a byte set is converted: 4x its memory). */
export function toFloats(set: ImageSet): LabeledImages {
  if (!isBytes(set)) return set;
  const { bytes, ...rest } = set;
  return { ...rest, images: bytesToFloats(bytes) };
}

/** Examples `start .. start+count−1`, as views (no copy), in the set's own form. Bounds are the caller's. */
export function sliceSet<T extends ImageSet>(set: T, start: number, count: number): T {
  const size = pixelsPerImage(set);
  const labels = set.labels.subarray(start, start + count);
  if (isBytes(set)) return { ...set, bytes: set.bytes.subarray(start * size, (start + count) * size), labels, count };
  return { ...set, images: (set as LabeledImages).images.subarray(start * size, (start + count) * size), labels, count };
}
