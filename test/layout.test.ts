/**
 * The folder tree is the dependency graph: reads every import in src/ and web/src/ and checks that
 * dependencies point one way —
 *
 *   errors → atomic-write → data, model → kernels, backend → train, eval, predict, explain → viz, export → serve → cli → index
 *
 * (a folder may use its own files and anything to its left; within a level only the listed pairs), that the
 * page uses the library's model/, eval/, predict/, explain/, data/, kernels/ and the training step, and knows the server
 * only through types; and that no file in src/ or web/src/ is over 400 lines.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const MAX_LINES = 400;

/** Levels, lowest first: each unit is a folder of src/ or a file directly in it. */
const LEVELS: string[][] = [
  ['errors.ts'],
  ['atomic-write.ts'],
  ['data', 'model'],
  ['kernels', 'backend.ts'],
  ['train', 'eval', 'predict', 'explain'],
  ['viz', 'export'],
  ['serve'],
  ['cli'],
  ['index.ts'],
];
/** Imports allowed between different units of the same level. */
const SAME_LEVEL = new Set(['data → model', 'model → data', 'backend.ts → kernels', 'train → eval']);
/** What the page may import from src/ (values); serve/ only with `import type`. */
const PAGE_UNITS = new Set(['data', 'model', 'kernels', 'eval', 'predict', 'explain']);
const PAGE_FILES = new Set(['train/step.ts', 'train/flat.ts', 'train/layout.ts', 'train/optimizer.ts', 'train/dropout.ts']);

function files(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) files(path, out);
    else if (/\.(ts|js|wat)$/.test(name)) out.push(path);
  }
  return out;
}

/** Relative imports of a file: [specifier, type-only], from import/export … from, and import('…'). */
function imports(source: string): [string, boolean][] {
  const found: [string, boolean][] = [];
  const text = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  for (const m of text.matchAll(/^\s*(import|export)\s+(type\s+)?[^'";]*?\bfrom\s+'([^']+)'/gm)) found.push([m[3], m[2] !== undefined]);
  for (const m of text.matchAll(/^\s*import\s+'([^']+)'/gm)) found.push([m[1], false]);
  for (const m of text.matchAll(/\bimport\(\s*'([^']+)'\s*\)/g)) found.push([m[1], false]);
  return found.filter(([s]) => s.startsWith('.'));
}

const src = join(root, 'src');
const unitOf = (file: string) => relative(src, file).split(sep)[0];
const levelOf = (unit: string) => LEVELS.findIndex((l) => l.includes(unit));
const generated = (file: string) => /-module\.ts$/.test(file);

test('every unit of src/ has a level (a new folder must be placed in LEVELS)', () => {
  const units = new Set(files(src).map(unitOf));
  const unplaced = [...units].filter((u) => levelOf(u) < 0);
  assert.deepEqual(unplaced, [], `not in LEVELS: ${unplaced.join(', ')}`);
});

test('dependencies in src/ point one way', () => {
  const wrong: string[] = [];
  for (const file of files(src)) {
    const from = unitOf(file);
    for (const [spec] of imports(readFileSync(file, 'utf8'))) {
      const target = resolve(dirname(file), spec);
      if (!target.startsWith(src + sep)) continue;
      const to = unitOf(target);
      if (to === from) continue;
      const ok = levelOf(to) < levelOf(from) || (levelOf(to) === levelOf(from) && SAME_LEVEL.has(`${from} → ${to}`));
      if (!ok) wrong.push(`${relative(root, file)} imports ${relative(root, target)} (${from} → ${to})`);
    }
  }
  assert.deepEqual(wrong, [], `imports against the direction of the layers:\n${wrong.join('\n')}`);
});

test('the page uses the library (model, eval, predict, data, kernels, the training step) and knows the server only through types', () => {
  const wrong: string[] = [];
  for (const file of files(join(root, 'web', 'src'))) {
    for (const [spec, typeOnly] of imports(readFileSync(file, 'utf8'))) {
      const target = resolve(dirname(file), spec);
      if (!target.startsWith(src + sep)) continue;
      const unit = unitOf(target);
      const path = relative(src, target).split(sep).join('/');
      const ok = PAGE_UNITS.has(unit) || PAGE_FILES.has(path) || (unit === 'serve' && typeOnly);
      if (!ok) wrong.push(`${relative(root, file)} imports ${relative(root, target)}${typeOnly ? '' : ' (a value)'}`);
    }
  }
  assert.deepEqual(wrong, [], wrong.join('\n'));
});

test(`no file in src/ or web/src/ is over ${MAX_LINES} lines`, () => {
  const long = [...files(src), ...files(join(root, 'web', 'src'))]
    .filter((f) => !generated(f))
    .map((f) => [relative(root, f), readFileSync(f, 'utf8').split('\n').length - 1] as const)
    .filter(([, n]) => n > MAX_LINES)
    .map(([f, n]) => `${f}: ${n} lines`);
  assert.deepEqual(long, [], `over ${MAX_LINES} lines (split by concern):\n${long.join('\n')}`);
});

test('the import reader sees every kind of import it checks (so the checks above can fail)', () => {
  const sample = [
    "import { a } from './a.ts';",
    "import type { B } from '../b/b.ts';",
    "export { c } from './c.ts';",
    "import {\n  d,\n  e,\n} from '../d.ts';",
    "  const { f } = await import('../f.ts');",
    "// import { g } from './commented.ts';",
    "import * as tf from '@tensorflow/tfjs';",
  ].join('\n');
  assert.deepEqual(imports(sample), [
    ['./a.ts', false],
    ['../b/b.ts', true],
    ['./c.ts', false],
    ['../d.ts', false],
    ['../f.ts', false],
  ]);
});
