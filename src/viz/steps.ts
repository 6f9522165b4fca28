import type { ConvBlockConfig } from '../model/config.ts';

/** What a conv block does to its input, for figure subtitles: `conv 5×5 → 2×2 max-pool → ReLU`. */
export function blockSteps(block: ConvBlockConfig): string {
  const pool = block.pool === 'none' ? [] : [`${block.poolSize}×${block.poolSize} ${block.pool === 'max' ? 'max' : 'average'}-pool`];
  const act = [{ relu: 'ReLU', sigmoid: 'sigmoid', tanh: 'tanh' }[block.activation]];
  const stride = block.stride > 1 ? `, stride ${block.stride}` : '';
  const steps = [`conv ${block.size}×${block.size}${stride}`, ...(block.order === 'activation-then-pool' ? [...act, ...pool] : [...pool, ...act])];
  return steps.join(' → ');
}
