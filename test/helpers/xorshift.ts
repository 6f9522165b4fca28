/**
 * A small deterministic generator (xorshift32) for kernel tests, so every run tests the same shapes and values.
 * Each call to `xorshift(seed)` is its own stream.
 */
export function xorshift(seed: number) {
  let state = seed;
  const next = () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32;
  };
  return {
    next,
    /** An integer in [lo, hi]. */
    int: (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1)),
    /** n values uniform in [−scale, scale). */
    random: (n: number, scale = 1) => Float32Array.from({ length: n }, () => (next() * 2 - 1) * scale),
  };
}
