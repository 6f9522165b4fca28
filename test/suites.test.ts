/**
 * The split into `npm test` (fast) and `npm run test:slow` cannot lose a file: every test file is in
 * exactly one of the two, every entry of the slow list is a test file, the npm scripts run the suites
 * through test/run.ts, and CI runs both.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { TestEvent } from 'node:test/reporters';
import fileTimes from './helpers/file-times.ts';
import { SLOW, suiteFiles, testFiles } from './suites.ts';

const root = new URL('..', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, root), 'utf8');

test('every test file is in exactly one of the fast and the slow suite; all is both', () => {
  const all = testFiles();
  const fast = suiteFiles('fast');
  const slow = suiteFiles('slow');
  assert.ok(all.length > 50 && all.includes('test/suites.test.ts'), `found only ${all.length} test files`);
  for (const file of all) {
    const n = Number(fast.includes(file)) + Number(slow.includes(file));
    assert.equal(n, 1, `${file} is in ${n} suites`);
  }
  assert.deepEqual([...fast, ...slow].sort(), all);
  assert.deepEqual(suiteFiles('all'), all);
  assert.deepEqual(slow, Object.keys(SLOW).sort(), 'the slow suite is exactly the list in test/suites.ts');
  assert.ok(fast.length > slow.length, 'most files are in the everyday suite');
});

test('a slow-list entry that names no test file is an error, not a smaller suite', () => {
  const dir = mkdtempSync(join(tmpdir(), 'convlab-suites-'));
  try {
    for (const f of ['test/a/one.test.ts', 'test/b/two.test.ts', 'test/helpers/not-a-test.ts']) {
      mkdirSync(dirname(join(dir, f)), { recursive: true });
      writeFileSync(join(dir, f), '');
    }
    assert.deepEqual(testFiles(dir), ['test/a/one.test.ts', 'test/b/two.test.ts']);
    assert.deepEqual(suiteFiles('slow', dir, { 'test/b/two.test.ts': 'why' }), ['test/b/two.test.ts']);
    assert.deepEqual(suiteFiles('fast', dir, { 'test/b/two.test.ts': 'why' }), ['test/a/one.test.ts']);
    assert.throws(() => suiteFiles('fast', dir, { 'test/b/renamed.test.ts': 'why' }), /test\/b\/renamed\.test\.ts/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('npm test, test:slow and test:all run their suite through test/run.ts, and CI runs both suites on both Nodes', () => {
  const { scripts } = JSON.parse(read('package.json')) as { scripts: Record<string, string> };
  assert.equal(scripts.test, 'tsx test/run.ts fast');
  assert.equal(scripts['test:slow'], 'tsx test/run.ts slow');
  assert.equal(scripts['test:all'], 'tsx test/run.ts all');
  for (const s of ['pretest', 'pretest:slow', 'pretest:all']) assert.equal(scripts[s], 'npm run build', `${s} builds first`);
  const ci = read('.ci/run');
  for (const node of ['NODE24', 'NODE26']) {
    for (const command of ['npm test', 'npm run test:slow']) {
      assert.match(ci, new RegExp(`^on "\\$${node}" ${command}$`, 'm'), `.ci/run does not run \`${command}\` on ${node}`);
    }
  }
});

test("every run ends with each file's time, slowest first, from the files' own events (named as given, relative or not)", async () => {
  const complete = (name: string, file: string, ms: number, nesting = 0) =>
    ({ type: 'test:complete', data: { name, file, nesting, details: { duration_ms: ms, passed: true }, testNumber: 1 } }) as unknown as TestEvent;
  const a = resolve('test/a/one.test.ts');
  const b = resolve('test/b/two.test.ts');
  async function* events() {
    yield complete('a test of one', a, 900); // a file's own top-level test
    yield complete('a subtest', a, 800, 1);
    yield complete('test/a/one.test.ts', a, 1000); // the file, as test/run.ts passes it
    yield complete(b, b, 12_340); // the file, given as an absolute path
  }
  let out = '';
  for await (const chunk of fileTimes(events())) out += chunk;
  assert.equal(out, '\nfile times, slowest first (2 files, 13 s in all):\n    12.3 s  test/b/two.test.ts\n     1.0 s  test/a/one.test.ts\n');
});
