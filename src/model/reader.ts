/**
 * Reading JSON values with messages that name the field: "net.json: conv block 2 (network.conv[1]).size
 * must be a whole number ≥ 1, got 0", with "did you mean" for misspelt names. Used by the config
 * validator (validate.ts).
 */
import { UsageError } from '../errors.ts';

export class Reader {
  constructor(readonly source: string) {}

  fail(at: string, message: string): UsageError {
    return new UsageError('CONFIG_INVALID', `${this.source}: ${at ? `${at} ` : ''}${message}`);
  }

  object(value: unknown, at: string, keys: readonly string[]): Record<string, unknown> {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw this.fail(at, `must be an object, got ${describe(value)}`);
    for (const key of Object.keys(value)) {
      if (!keys.includes(key)) {
        const near = closest(key, keys);
        throw this.fail(at ? `${at}` : '', `has an unknown field "${key}"${near ? ` (did you mean "${near}"?)` : ''} — known fields: ${keys.join(', ')}`);
      }
    }
    return value as Record<string, unknown>;
  }

  array(value: unknown, at: string): unknown[] {
    if (!Array.isArray(value)) throw this.fail(at, `must be a list, got ${describe(value)}`);
    return value;
  }

  string(value: unknown, at: string): string {
    if (typeof value !== 'string') throw this.fail(at, `must be a string, got ${describe(value)}`);
    return value;
  }

  boolean(value: unknown, at: string): boolean {
    if (typeof value !== 'boolean') throw this.fail(at, `must be true or false, got ${describe(value)}`);
    return value;
  }

  int(value: unknown, at: string, min: number): number {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
      throw this.fail(at, `must be a whole number ≥ ${min}, got ${describe(value)}`);
    }
    return value;
  }

  number(value: unknown, at: string, range: { min?: number; max?: number; exclusiveMin?: boolean; exclusiveMax?: boolean } = {}): number {
    const { min = -Infinity, max = Infinity, exclusiveMin = false, exclusiveMax = false } = range;
    const ok =
      typeof value === 'number' && Number.isFinite(value) && (exclusiveMin ? value > min : value >= min) && (exclusiveMax ? value < max : value <= max);
    if (!ok) {
      const lo = min === -Infinity ? '' : `${exclusiveMin ? '>' : '≥'} ${min}`;
      const hi = max === Infinity ? '' : `${exclusiveMax ? '<' : '≤'} ${max}`;
      throw this.fail(at, `must be a number${lo || hi ? ' ' : ''}${[lo, hi].filter(Boolean).join(' and ')}, got ${describe(value)}`);
    }
    return value as number;
  }

  dropout(value: unknown, at: string): number {
    return this.number(value, at, { min: 0, max: 1, exclusiveMax: true });
  }

  oneOf<T extends string>(value: unknown, at: string, choices: readonly T[]): T {
    if (typeof value !== 'string' || !choices.includes(value as T)) {
      const near = typeof value === 'string' ? closest(value, choices) : undefined;
      throw this.fail(
        at,
        `must be ${choices
          .map((c) => `"${c}"`)
          .join(', ')
          .replace(/, ([^,]*)$/, ' or $1')}, got ${describe(value)}${near ? ` (did you mean "${near}"?)` : ''}`,
      );
    }
    return value as T;
  }
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return 'a list';
  if (value === null) return 'null';
  if (typeof value === 'object') return 'an object';
  return String(value);
}

/** The choice within edit distance 2 of `word` (case-insensitive), for "did you mean". */
function closest(word: string, choices: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const c of choices) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length];
}
