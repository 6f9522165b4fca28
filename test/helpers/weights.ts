/**
 * Comparing two trainings that should agree "within float tolerance". Max-pool and ReLU make training
 * chaotic at the last bit: a one-ulp difference in an update can flip which element of a window is the
 * maximum, after which that weight's Adam steps go the other way (each ±learning rate). So a weight or two
 * may differ by a few steps while the rest agree to float precision. The comparison that means something
 * is the distance between the two runs relative to how far training moved the weights: a real error (a
 * gradient weighted wrongly, a missed slice) moves it to tens of percent; float noise leaves it under 1%.
 */
import assert from 'node:assert/strict';

/** ‖a − b‖ / ‖a − start‖. */
export function relativeDistance(a: Float32Array, b: Float32Array, start: Float32Array): number {
  let d = 0;
  let moved = 0;
  for (let i = 0; i < a.length; i++) {
    d += (a[i] - b[i]) ** 2;
    moved += (a[i] - start[i]) ** 2;
  }
  return Math.sqrt(d / moved);
}

export function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

export interface Trained {
  weights: Float32Array;
  losses: number[];
}

/** `other` trained like `reference` from `start`, up to float noise (see above). */
export function assertSameTraining(reference: Trained, other: Trained, start: Float32Array, what: string): void {
  // Sanity: training moved the weights far beyond float noise.
  assert.ok(maxAbsDiff(reference.weights, start) > 1e-3, 'training did not move the weights');
  const r = relativeDistance(reference.weights, other.weights, start);
  assert.ok(r < 0.03, `${what}: ${(100 * r).toFixed(2)}% of the distance training moved the weights apart`);
  other.losses.forEach((l, i) => assert.ok(Math.abs(l - reference.losses[i]) < 2e-3, `${what}: loss ${i}: ${l} vs ${reference.losses[i]}`));
}
