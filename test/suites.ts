/**
 * The two suites, decided in one place. `npm test` runs the fast one: every `test/**\/*.test.ts` that is not
 * listed in SLOW. `npm run test:slow` runs the files listed in SLOW, `npm run test:all` both; CI runs both
 * (.ci/run). A new test file is fast until it is listed here, so no file can fall out of both suites, and
 * test/suites.test.ts checks that every entry names a file that exists.
 *
 * The fast suite must still cover the core: the wasm kernels against cpu, gradients against numerical
 * differences, saving and loading a model, a short training run (in this thread and on workers), the API,
 * predict, and the page in a browser. A file goes here when it takes long for what it adds to that, with
 * its time (one run of the whole suite, Node 24, 2 cores shared with other work: load ~6) and what it
 * proves. Every run prints each file's time at the end, slowest first.
 */
import { readdirSync } from 'node:fs';
import { join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Test files of the slow suite, as paths from the repository root, with why each is there. */
export const SLOW: Readonly<Record<string, string>> = {
  'test/e2e/configs.test.ts': '33 s: config + idx data set + SIGKILL/--resume through the CLI, and convlab search end to end (the search unit tests stay fast)',
  'test/e2e/explorer.test.ts': '30 s: the explorer views in Chromium (browser.test.ts keeps the page itself in the fast suite)',
  'test/e2e/explorer-rgb.test.ts': '23 s at load 8: trains a colour model, then the page with it in Chromium',
  'test/e2e/explorer-theme.test.ts': '21 s at load 8: the page in light and dark in Chromium, with a short training in the page',
  'test/e2e/resume.test.ts': '27 s: SIGKILL at a random moment then --resume, Ctrl-C, divergence (resume in process stays fast: atomic-write.test.ts)',
  'test/export/onnx.test.ts': '76 s: ONNX Runtime against convlab on 10,000 images for every config, both layouts (export/cli and export/route stay fast)',
  'test/package/pack.test.ts': '62 s + npm pack and install: the published package as a user gets it',
  'test/predict/corpus.test.ts':
    '46 s of CPU (115 s wall at load 8): accuracy gate on the 600 distorted pictures of the README table through the default model',
  'test/serve/colour.test.ts': '8-19 s: trains the colour model, then pictures through the API and convlab predict (test/predict/colour.test.ts stays fast)',
  'test/serve/fuzz.test.ts': '9 s: 10,000 fuzzed requests (api.test.ts keeps the property tests of every route)',
  'test/serve/nginx.test.ts': '12 s: two instances behind nginx, one SIGKILLed under load',
  'test/train/leaks.test.ts': '21 s: memory over many steps and requests, in this thread and in every worker',
  'test/train/regularisation.test.ts':
    '25 s: an RGB accuracy gate of 600 steps, resume with SGD/RMSProp state on 0 and 2 workers (training, atomic-write and parallel stay fast)',
  'test/viz/cli.test.ts': '27 s: two whole `convlab visualize` runs (viz/run.test.ts draws every figure in process, fast)',
  'test/viz/train-report.test.ts': '12 s: the report at the end of `convlab train` (the report itself stays fast: viz/report, report-structure)',
};

export type Suite = 'fast' | 'slow' | 'all';
export const SUITES: readonly Suite[] = ['fast', 'slow', 'all'];

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Every `*.test.ts` below test/, as sorted paths from the repository root with `/` separators. */
export function testFiles(root = ROOT): string[] {
  const names = readdirSync(join(root, 'test'), { recursive: true, encoding: 'utf8' });
  return names
    .filter((name) => name.endsWith('.test.ts') && !name.split(sep).includes('node_modules'))
    .map((name) => `test/${name.split(sep).join('/')}`)
    .sort();
}

/**
 * The files of `suite`, in file-name order. Throws when a SLOW entry names no test file (a renamed or
 * deleted file must leave the list too, or the slow suite would quietly shrink).
 */
export function suiteFiles(suite: Suite, root = ROOT, slow: Readonly<Record<string, string>> = SLOW): string[] {
  const all = testFiles(root);
  const stale = Object.keys(slow).filter((f) => !all.includes(f));
  if (stale.length) throw new Error(`test/suites.ts lists files that are not test files: ${stale.join(', ')} (rename or remove the entry)`);
  if (suite === 'all') return all;
  return all.filter((f) => Object.hasOwn(slow, f) === (suite === 'slow'));
}
