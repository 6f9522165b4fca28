/**
 * convlab as a user gets it from the registry: `npm pack`, install the tarball into an empty project, and
 * there run the CLI through npx (train, evaluate, predict, serve with the prebuilt page), the library
 * example from an .mjs file, and the TypeScript compiler against the published declarations.
 * Dependencies come from the npm cache when it has them (--prefer-offline).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createCanvas } from '@napi-rs/canvas';

const root = fileURLToPath(new URL('../../', import.meta.url));
// npm and npx run under the Node running this test (their shebang is `env node`).
const env = { ...process.env, PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH}`, CONVLAB_DEBUG: '', npm_config_update_notifier: 'false' };
let work: string;
let project: string;

function run(cmd: string, args: string[], options: SpawnSyncOptions = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env, cwd: project, timeout: 300_000, ...options });
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} exited with ${r.status}:\n${out}`);
  return { stdout: String(r.stdout), stderr: String(r.stderr) };
}

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'convlab-pack-'));
  project = join(work, 'project');
  await mkdir(project);
  // prepack builds dist/ and web/dist into the tarball.
  // Under `npm test` the prepack scripts' output (tsc, vite: lines with brackets) shares stdout with the JSON:
  // the JSON is the array that starts a line.
  const packed = run('npm', ['pack', '--json', '--pack-destination', work], { cwd: root });
  const [{ filename, files }] = JSON.parse(packed.stdout.slice(packed.stdout.search(/^\[\s*\{/m))) as { filename: string; files: { path: string }[] }[];
  const paths = files.map((f) => f.path);
  assert.ok(paths.includes('dist/index.d.ts') && paths.includes('web/dist/index.html'), `the tarball lacks the build: ${paths.join(', ')}`);
  assert.ok(!paths.some((p) => p.startsWith('src/') || p.startsWith('test/') || p.endsWith('.tsbuildinfo')), 'sources, tests or build info published');
  await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'convlab-user', private: true, type: 'module' }));
  run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', join(work, filename), '@types/node@24']);
});

after(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

test('the installed package has no development dependencies and no TypeScript sources', () => {
  for (const dev of ['tsx', 'vite', 'typescript']) assert.ok(!existsSync(join(project, 'node_modules', dev)), `${dev} was installed`);
  assert.ok(!existsSync(join(project, 'node_modules', 'convlab', 'src')));
});

test('npx convlab: train, evaluate, predict', async () => {
  const t = run('npx', ['convlab', 'train', '--iterations', '20', '--no-report', '--out', 'run']);
  assert.match(t.stdout, /Accuracy on test set: \d+\.\d\d% \(\d+ \/ 10000\)/);
  assert.match(t.stdout, /2 worker threads|1 worker thread/, 'trained on worker threads (the compiled worker entry)');
  const e = run('npx', ['convlab', 'evaluate', '--model', 'run']);
  assert.match(e.stdout, /Accuracy on test set/);
  assert.match(e.stdout, /Confusion matrix/);

  const canvas = createCanvas(120, 120); // a dark "1" on light paper
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = 'white';
  ctx.fillRect(0, 0, 120, 120);
  ctx.fillStyle = 'black';
  ctx.fillRect(52, 15, 14, 90);
  await writeFile(join(project, 'one.png'), canvas.toBuffer('image/png'));
  const p = run('npx', ['convlab', 'predict', '--model', 'run', '--json', 'one.png']);
  const answer = JSON.parse(p.stdout.trim()) as { file: string; class: number; probabilities: number[] };
  assert.equal(answer.file, 'one.png');
  assert.equal(answer.probabilities.length, 10);
});

test('npx convlab serve: the prebuilt page and one prediction, without Vite', async () => {
  const child = spawn('npx', ['convlab', 'serve', '--model', 'run', '--port', '0'], { cwd: project, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`serve did not start in 60 s:\n${out}`)), 60_000);
      child.stdout.on('data', () => {
        const m = / at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      });
      child.on('exit', (code) => reject(new Error(`serve exited with ${code}:\n${out}`)));
    });
    assert.doesNotMatch(out, /building the page/);
    const page = await fetch(url);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<html/i);
    const pixels = new Array(784).fill(0);
    for (let r = 4; r < 24; r++) pixels[r * 28 + 14] = 1;
    const res = await fetch(`${url}api/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ pixels }) });
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { probabilities: number[] }).probabilities.length, 10);
  } finally {
    // npx runs convlab as its child: stop the whole process group.
    const exited = new Promise((resolve) => (child.exitCode === null ? child.on('exit', resolve) : resolve(null)));
    if (child.exitCode === null) process.kill(-child.pid!, 'SIGTERM');
    await exited;
  }
});

test('the README library example (examples/library.mjs) runs against the installed package', async () => {
  await copyFile(join(root, 'examples', 'library.mjs'), join(project, 'library.mjs'));
  const r = run(process.execPath, ['library.mjs', 'lib-model']);
  assert.match(r.stdout, /iter 30\/30 \| loss \d/);
  assert.match(r.stdout, /the model says \d/);
  assert.ok(existsSync(join(project, 'lib-model', 'model.json')));
  // The README shows this file verbatim.
  const readme = await readFile(join(root, 'README.md'), 'utf8');
  const source = await readFile(join(root, 'examples', 'library.mjs'), 'utf8');
  assert.ok(readme.includes(source.trim()), 'README.md does not contain examples/library.mjs verbatim: copy it into "Using convlab as a library"');
});

test('a TypeScript file type-checks against the published declarations (and a wrong one does not)', async () => {
  const good = `import { Rng, initParams, presets, predict, type Prediction, type RunConfig, type TrainHooks, type ServerOptions, createServer, visualize, trainRun, evaluate, loadParams, saveModel, loadModel, preprocess, forward, useBackend } from 'convlab';
const run: RunConfig = presets.default;
const hooks: TrainHooks = { onLog: (entry, total) => console.log(entry.loss.toFixed(3), total) };
const params = initParams(run.network, new Rng(run.train.seed));
const answers: Prediction[] = predict({ net: run.network, params }, new Float32Array(784));
const options: ServerOptions = { modelDir: 'run' };
void [hooks, answers, options, createServer, visualize, trainRun, evaluate, loadParams, saveModel, loadModel, preprocess, forward, useBackend];
// @ts-expect-error: a network is not a string (proves the types are not any)
initParams('seed', new Rng(1));
`;
  await writeFile(join(project, 'use.ts'), good);
  await writeFile(
    join(project, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: { strict: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', noEmit: true, skipLibCheck: true, types: ['node'] },
      files: ['use.ts'],
    }),
  );
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  run(process.execPath, [tsc, '-p', 'tsconfig.json']);
  await writeFile(join(project, 'use.ts'), `${good}\nconst wrong: number = presets.default.network;\n`);
  const r = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: project, encoding: 'utf8', env });
  assert.notEqual(r.status, 0);
  assert.match(r.stdout, /use\.ts.*error TS2322/);
});
