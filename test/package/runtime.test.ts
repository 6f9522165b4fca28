/**
 * The runtime promises: which Node convlab supports (and what an older one prints), the shim that lets
 * @tensorflow/tfjs-node 4.22 load on Node 24+, a library import that does no work, and a README that
 * documents every flag each command's --help lists.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { fixtureModelDir } from '../helpers/fixture-model.ts';
import { shimNodeUtil } from '../../src/backend.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const bin = fileURLToPath(new URL('../../bin/convlab.js', import.meta.url));
const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { engines: { node: string }; version: string };

const cli = (node: string, ...args: string[]) => {
  const r = spawnSync(node, [bin, ...args], { encoding: 'utf8', env: { ...process.env, CONVLAB_DEBUG: '' }, timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};

/** An installed Node older than 24 (OLD_NODE, else Debian's /usr/bin/node when it is older), or none. */
function oldNode(): string | undefined {
  for (const candidate of [process.env.OLD_NODE, '/usr/bin/node']) {
    if (!candidate || !existsSync(candidate)) continue;
    const v = spawnSync(candidate, ['-p', 'process.versions.node'], { encoding: 'utf8' }).stdout.trim();
    if (Number(v.split('.')[0]) < 24) return candidate;
  }
  return undefined;
}
const old = oldNode();

test('engines and the running Node agree: >=24, and this Node is supported', () => {
  assert.equal(pkg.engines.node, '>=24');
  assert.ok(Number(process.versions.node.split('.')[0]) >= 24, `the suite runs on Node ${process.versions.node}`);
  const r = cli(process.execPath, '--version');
  assert.equal(r.code, 0);
  assert.equal(r.stdout.trim(), pkg.version);
  assert.equal(r.stderr, '', 'no warning on a supported Node');
});

test('on an older Node: one line on stderr (not supported, what to install), then it carries on', {
  skip: old ? false : 'no Node older than 24 installed (set OLD_NODE=/path/to/node to run this)',
}, async () => {
  const version = cli(old!, '--version');
  assert.equal(version.code, 0);
  assert.equal(version.stdout.trim(), pkg.version);
  const lines = version.stderr.trim().split('\n');
  assert.equal(lines.length, 1, version.stderr);
  assert.match(lines[0], /^convlab: Node 2?\d\.\d+\.\d+ is not supported; install Node 24 or newer/);
  // A real command still works, with the same single line and no stack trace.
  const model = await fixtureModelDir();
  const e = cli(old!, 'evaluate', '--model', model, '--split', 'validation');
  assert.equal(e.code, 0, e.stderr);
  assert.match(e.stdout, /Accuracy on validation set: \d/);
  assert.equal(e.stderr.trim().split('\n').length, 1, e.stderr);
});

test('tfjs-node shim: adds util.isNullOrUndefined (removed in Node 23) and keeps what exists', () => {
  const fake: Record<string, unknown> = { isArray: () => 'kept' };
  assert.deepEqual(shimNodeUtil(fake), ['isNullOrUndefined']);
  const isNullOrUndefined = fake.isNullOrUndefined as (v: unknown) => boolean;
  assert.deepEqual([null, undefined, 0, '', false, Number.NaN, {}].map(isNullOrUndefined), [true, true, false, false, false, false, false]);
  assert.equal((fake.isArray as () => string)(), 'kept');
  assert.deepEqual(shimNodeUtil({}), ['isNullOrUndefined', 'isArray']);
  assert.deepEqual(shimNodeUtil(fake), [], 'idempotent');

  // On the real module, in a fresh process, the way tfjs-node 4.22's compiled CommonJS calls it.
  const probe = `
    const { shimNodeUtil } = await import(${JSON.stringify(new URL('../../src/backend.ts', import.meta.url).href)});
    const { createRequire } = await import('node:module');
    const util_1 = createRequire(import.meta.url)('util');
    const before = typeof util_1.isNullOrUndefined;
    shimNodeUtil(util_1);
    console.log(before, (0, util_1.isNullOrUndefined)(undefined), (0, util_1.isNullOrUndefined)(0), (0, util_1.isArray)([1]));`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', probe], { encoding: 'utf8', cwd: root });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'undefined true false true', 'on Node 24+ the function is missing before the shim and works after');
});

test('importing the library does no work: no backend, no data, no threads, no output', () => {
  const probe = `
    // Stdio handles (PipeWrap, TTYWrap) appear when any module touches process.stdout: not work.
    const open = () => process.getActiveResourcesInfo().filter((r) => !/^(PipeWrap|TTYWrap)$/.test(r));
    const before = open().length;
    const lib = await import('convlab');
    const tf = await import('@tensorflow/tfjs');
    const keys = ['train', 'trainRun', 'evaluate', 'loadModel', 'saveModel', 'loadParams', 'predict', 'predictPictures', 'preprocess', 'visualize', 'createServer', 'presets', 'forward', 'initParams', 'useBackend'];
    const missing = keys.filter((k) => lib[k] === undefined);
    await new Promise((resolve) => setTimeout(resolve, 100)); // let one-shot callbacks (setImmediate) run: only lasting handles count
    console.log(JSON.stringify({ missing, backend: tf.engine().backendName ?? null, registry: Object.keys(tf.engine().registry).length, resources: open().length - before }));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', probe], { encoding: 'utf8', cwd: root });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, '');
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 1, `import printed something: ${r.stdout}`);
  const seen = JSON.parse(lines[0]) as { missing: string[]; backend: string | null; registry: number; resources: number };
  assert.deepEqual(seen.missing, []);
  assert.equal(seen.backend, null, 'a backend was initialised at import');
  assert.equal(seen.registry, 0, 'a backend instance was created at import');
  assert.ok(seen.resources <= 0, `import left ${seen.resources} handles (timers, threads, files) open`);
});

// ---------------------------------------------------------------------------------------------------
// The README documents every flag of every command.
// ---------------------------------------------------------------------------------------------------

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

function flagsOf(text: string): Set<string> {
  return new Set([...text.matchAll(/(?<![\w-])--[a-z][a-z0-9-]*/g)].map((m) => m[0]));
}

/** The README section (heading to the next heading of the same or a higher level) whose code block has the `convlab CMD` synopsis. */
function sectionOf(command: string): string | undefined {
  const lines = readme.split('\n');
  const synopsis = lines.findIndex((l) => new RegExp(`^convlab ${command}( |$)`).test(l));
  if (synopsis < 0) return undefined;
  let start = synopsis;
  while (start > 0 && !/^#{1,6} /.test(lines[start])) start--;
  const level = /^(#+)/.exec(lines[start])![1].length;
  let end = synopsis + 1;
  while (end < lines.length && !(/^(#+) /.test(lines[end]) && /^(#+)/.exec(lines[end])![1].length <= level)) end++;
  return lines.slice(start, end).join('\n');
}

/** The synopsis block: the fenced lines from `convlab CMD` to the closing fence. */
function synopsisOf(section: string, command: string): string {
  const from = section.indexOf(`\nconvlab ${command}`);
  return section.slice(from, section.indexOf('```', from));
}

const commands = cli(process.execPath, '--help')
  .stdout.split('\n')
  .map((l) => /^ {2}([a-z][a-z-]*)\b/.exec(l)?.[1])
  .filter((c): c is string => !!c && c !== 'help');

test('the README documents every command', () => {
  assert.ok(commands.length >= 6, `commands from --help: ${commands.join(', ')}`);
  for (const c of commands) assert.ok(sectionOf(c), `README.md has no section with a \`convlab ${c} …\` synopsis`);
});

for (const command of commands) {
  test(`README: every flag of \`convlab ${command} --help\` is documented in its section, and its synopsis names no flag that does not exist`, () => {
    const help = cli(process.execPath, command, '--help');
    assert.equal(help.code, 0);
    const flags = [...flagsOf(help.stdout)].filter((f) => f !== '--help');
    const section = sectionOf(command);
    assert.ok(section, `no README section for ${command}`);
    const documented = flagsOf(section);
    const missing = flags.filter((f) => !documented.has(f));
    assert.deepEqual(missing, [], `convlab ${command}: flags in --help but not in its README section`);
    const stale = [...flagsOf(synopsisOf(section, command))].filter((f) => !flags.includes(f));
    assert.deepEqual(stale, [], `convlab ${command}: the README synopsis names flags --help does not know`);
  });
}
