/** A few steps to run every update rule on, and Adam in plain doubles to check them against. */

export const start = [0.3, -0.7, 1.2];
export const gradients = [
  [0.5, -0.1, 0.02],
  [0.4, 0.2, -0.03],
  [-0.3, 0.1, 0.05],
  [0.1, -0.6, 0.0],
];

/** Adam in plain doubles, straight from Algorithm 1 of Kingma & Ba (2015). */
export function adamReference(theta: number[], steps: number[][], lr: number, b1 = 0.9, b2 = 0.999, eps = 1e-8): number[] {
  const m = theta.map(() => 0);
  const v = theta.map(() => 0);
  const out = [...theta];
  steps.forEach((g, k) => {
    const t = k + 1;
    for (let i = 0; i < out.length; i++) {
      m[i] = b1 * m[i] + (1 - b1) * g[i];
      v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
      const mHat = m[i] / (1 - b1 ** t);
      const vHat = v[i] / (1 - b2 ** t);
      out[i] -= (lr * mHat) / (Math.sqrt(vHat) + eps);
    }
  });
  return out;
}
