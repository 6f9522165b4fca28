/**
 * A step's augmentation and dropout masks are decided per image (src/train/prepare.ts), so any split of the
 * batch between workers prepares exactly the images and masks of the whole batch prepared in one piece.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/data/batches.ts';
import { layerShapes, presets, type AugmentConfig, type NetworkConfig } from '../../src/model/config.ts';
import { prepareSlice, type StepRandomness } from '../../src/train/prepare.ts';
import type { MaskArrays } from '../../src/train/dropout.ts';

const seedNet = presets.seed.network;
/** Dropout 0.25 after conv block 2 and 0.5 after fc1. */
const net: NetworkConfig = {
  ...seedNet,
  conv: [seedNet.conv[0], { ...seedNet.conv[1], dropout: 0.25 }],
  dense: [{ ...seedNet.dense[0], dropout: 0.5 }, seedNet.dense[1]],
};
const size = 28 * 28;
const count = 13;

/** `count` images of random blobs (so that every augmentation moves something). */
function images(): Float32Array {
  const rng = new Rng(5);
  const out = new Float32Array(count * size);
  for (let i = 0; i < out.length; i++) out[i] = rng.next() < 0.3 ? rng.next() : 0;
  return out;
}

/** Images and masks of the whole batch, prepared in slices [0, cuts[0]), [cuts[0], cuts[1]), … */
function prepared(recipe: StepRandomness, cuts: number[]): { images: Float32Array; masks: MaskArrays } {
  const all = images();
  const parts: MaskArrays[] = [];
  const bounds = [0, ...cuts, count];
  for (let s = 0; s + 1 < bounds.length; s++) {
    const [a, b] = [bounds[s], bounds[s + 1]];
    parts.push(prepareSlice(net, all.subarray(a * size, b * size), b - a, a, recipe)!);
  }
  const join = (pick: (m: MaskArrays) => Float32Array | undefined): Float32Array | undefined => {
    if (pick(parts[0]) === undefined) return undefined;
    const out = new Float32Array(parts.reduce((n, m) => n + pick(m)!.length, 0));
    let at = 0;
    for (const m of parts) {
      out.set(pick(m)!, at);
      at += pick(m)!.length;
    }
    return out;
  };
  const masks = {
    conv: net.conv.map((_, i) => join((m) => m.conv[i])),
    dense: net.dense.map((_, j) => join((m) => m.dense[j])),
  };
  return { images: all, masks };
}

const recipes: [string, AugmentConfig][] = [
  ['shifts', { shift: 2, flip: false }],
  ['shifts and flips', { shift: 3, flip: true }],
  ['the default recipe (warp)', presets.default.train.augment],
];

for (const [name, augment] of recipes) {
  test(`${name}: any split of the batch prepares the same images and masks as the whole batch`, () => {
    const recipe = { seed: 7, iteration: 41, augment };
    const whole = prepared(recipe, []);
    assert.ok(
      whole.images.some((v, i) => v !== images()[i]),
      'augmentation changed nothing',
    );
    for (const cuts of [[1], [6], [7], [12], [3, 8], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]]) {
      const split = prepared(recipe, cuts);
      assert.deepEqual(split.images, whole.images, `images, split at ${cuts}`);
      assert.deepEqual(split.masks, whole.masks, `masks, split at ${cuts}`);
    }
    // Another iteration or seed draws other changes.
    assert.notDeepEqual(prepared({ ...recipe, iteration: 42 }, []).images, whole.images);
    assert.notDeepEqual(prepared({ ...recipe, seed: 8 }, []).masks.dense[0], whole.masks.dense[0]);
  });
}

test('per-image masks keep a 1 − p share of the values, each scaled by exactly 1/(1 − p); layers at 0 get no mask', () => {
  const n = 64;
  const masks = prepareSlice(net, new Float32Array(n * size), n, 0, { seed: 3, iteration: 0, augment: { shift: 0, flip: false } })!;
  assert.equal(masks.conv[0], undefined);
  assert.equal(masks.dense[1], undefined);
  const shapes = layerShapes(net);
  for (const [mask, rate, values] of [
    [masks.conv[1]!, 0.25, shapes.conv[1].reduce((a, b) => a * b, 1)],
    [masks.dense[0]!, 0.5, shapes.dense[0][0]],
  ] as const) {
    assert.equal(mask.length, n * values);
    assert.ok(
      mask.every((v) => v === 0 || v === Math.fround(1 / (1 - rate))),
      'values are 0 or 1/(1 − p)',
    );
    const zeros = mask.filter((v) => v === 0).length;
    const sd = Math.sqrt(mask.length * rate * (1 - rate));
    assert.ok(Math.abs(zeros - mask.length * rate) < 5 * sd, `${zeros} zeros of ${mask.length} at rate ${rate}`);
  }
  // Without dropout there are no masks at all.
  assert.equal(prepareSlice(seedNet, new Float32Array(size), 1, 0, { seed: 3, iteration: 0, augment: { shift: 0, flip: false } }), undefined);
});
