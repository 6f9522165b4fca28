/**
 * Two `convlab serve` instances behind Debian's nginx, the way the README says to scale out: load through
 * nginx, SIGKILL one instance mid-run, and check that every request still got the correct answer (nginx
 * retried the ones the dead instance could not answer on the other, `proxy_next_upstream`), that nginx's
 * log shows such retries, and that the survivor kept serving. nginx runs in the foreground on loopback
 * with a config this test writes into a temp folder (pid, logs and temp paths inside it).
 *
 * Without an nginx binary the test is skipped with a line saying so; with CI=true it fails instead.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../helpers/cli.ts';
import { fixtureModelDir } from '../helpers/fixture-model.ts';
import { loadMnist } from '../../src/data/mnist.ts';
import type { Prediction } from '../../src/serve/schema.ts';

const bin = fileURLToPath(new URL('../../bin/convlab.js', import.meta.url));
const nginx =
  ['/usr/sbin/nginx', '/usr/bin/nginx', '/usr/local/sbin/nginx', '/usr/local/bin/nginx'].find((p) => existsSync(p)) ??
  (spawnSync('sh', ['-c', 'command -v nginx'], { encoding: 'utf8' }).stdout.trim() || undefined);
const skip = nginx === undefined && process.env.CI !== 'true' ? 'nginx is not installed (apt-get install nginx); skipping the load-balancer test' : false;
if (skip) console.log(`# ${skip}`);

let dir: string;
const children: ChildProcess[] = [];
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'convlab-nginx-'));
});
after(async () => {
  for (const c of children) {
    if (c.exitCode !== null || c.signalCode !== null) continue;
    c.kill('SIGKILL');
    await new Promise((resolve) => c.once('exit', resolve));
  }
  await rm(dir, { recursive: true, force: true });
});

/** Starts `convlab serve` on `port`; resolves once it listens. `output()` is what it printed so far. */
function serve(model: string, port: number, ...extra: string[]): Promise<ChildProcess & { output: () => string }> {
  let out = '';
  const child = Object.assign(
    spawn(process.execPath, [bin, 'serve', '--model', model, '--port', String(port), '--no-page', '--workers', '1', ...extra], {
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
    { output: () => out },
  );
  children.push(child);
  child.stderr!.on('data', (d) => (out += d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`convlab serve did not start in 60 s:\n${out}`)), 60_000);
    child.stdout!.on('data', (d) => {
      out += d;
      if (out.includes('convlab serving ')) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.once('exit', (code) => reject(new Error(`convlab serve exited with ${code}:\n${out}`)));
  });
}

function nginxConfig(listen: number, upstreams: number[], extra = ''): string {
  // As root the master would switch its workers to `nobody`, who cannot read this private folder.
  const user = process.getuid?.() === 0 ? `user ${userInfo().username};\n` : '';
  return `${user}daemon off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log info;
events { worker_connections 256; }
http {
  log_format upstreams '$status $upstream_addr $upstream_status';
  access_log ${dir}/access.log upstreams;
  client_body_temp_path ${dir}/tmp/body;
  proxy_temp_path ${dir}/tmp/proxy;
  fastcgi_temp_path ${dir}/tmp/fastcgi;
  uwsgi_temp_path ${dir}/tmp/uwsgi;
  scgi_temp_path ${dir}/tmp/scgi;
  upstream convlab {
${upstreams.map((p) => `    server 127.0.0.1:${p} max_fails=1 fail_timeout=30s;`).join('\n')}
    keepalive 16;
  }
  server {
    listen 127.0.0.1:${listen};
    location / {
      proxy_pass http://convlab;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      # predict is a pure function of its body, so a POST may be retried too (non_idempotent)
      proxy_next_upstream error timeout http_502 http_503 non_idempotent;
      proxy_next_upstream_tries 2;
      proxy_connect_timeout 2s;
      proxy_read_timeout 20s;
${extra}
    }
  }
}
`;
}

/** Runs nginx with `dir/name` in the foreground; resolves once it proxies /healthz on `port`. */
async function startNginx(name: string, port: number): Promise<ChildProcess> {
  const proxy = spawn(nginx!, ['-p', dir, '-c', join(dir, name)], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(proxy);
  let proxyOut = '';
  proxy.stderr!.on('data', (d) => (proxyOut += d));
  for (let i = 0; ; i++) {
    const ok = await fetch(`http://127.0.0.1:${port}/healthz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return proxy;
    assert.ok(i < 100 && proxy.exitCode === null, `nginx did not start:\n${proxyOut}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('two instances behind nginx: one SIGKILLed mid-run, every request answered correctly, the survivor serving', { skip, timeout: 180_000 }, async () => {
  assert.ok(nginx, 'CI=true and no nginx: install it (apt-get install nginx)');
  const model = await fixtureModelDir();
  const mnist = await loadMnist();
  const digits = Array.from({ length: 8 }, (_, k) => Array.from(mnist.test.images.slice(k * 784, (k + 1) * 784)));

  const [pa, pb, pn] = [await freePort(), await freePort(), await freePort()];
  const [a, b] = await Promise.all([serve(model, pa), serve(model, pb)]);
  await mkdir(join(dir, 'tmp'));
  await writeFile(join(dir, 'nginx.conf'), nginxConfig(pn, [pa, pb]));
  const proxy = await startNginx('nginx.conf', pn);
  const base = `http://127.0.0.1:${pn}`;

  // the answer each digit must get, straight from an instance
  const expected: Prediction[] = [];
  for (const pixels of digits) {
    const r = await fetch(`http://127.0.0.1:${pb}/api/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ pixels }),
    });
    expected.push((await r.json()) as Prediction);
  }

  // load: 6 clients in a loop for 8 s; instance a is SIGKILLed after 3 s
  const seconds = 8;
  const results: { status: number; correct: boolean; t: number; nginx5xx: boolean; error?: string }[] = [];
  const t0 = performance.now();
  let killedAt = Infinity;
  const killer = setTimeout(() => {
    a.kill('SIGKILL');
    killedAt = performance.now() - t0;
  }, 3000);
  await Promise.all(
    Array.from({ length: 6 }, async (_, c) => {
      for (let i = 0; performance.now() - t0 < seconds * 1000; i++) {
        const k = (c + i) % digits.length;
        const t = performance.now() - t0;
        try {
          const r = await fetch(`${base}/api/predict`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ pixels: digits[k] }),
          });
          const text = await r.text();
          let correct = false;
          if (r.status === 200) {
            const p = JSON.parse(text) as Prediction;
            correct = p.class === expected[k].class && p.probabilities.every((v, j) => Math.abs(v - expected[k].probabilities[j]) < 1e-5);
          }
          results.push({ status: r.status, correct, t, nginx5xx: r.status >= 500 && /nginx/.test(r.headers.get('server') ?? '') });
        } catch (err) {
          results.push({ status: 0, correct: false, t, nginx5xx: false, error: String((err as Error)?.cause ?? err) });
        }
      }
    }),
  );
  clearTimeout(killer);
  assert.ok(Number.isFinite(killedAt), 'instance a was killed during the run');

  const after = results.filter((r) => r.t > killedAt);
  const bad = results.filter((r) => !(r.correct || r.nginx5xx));
  const fiveXX = results.filter((r) => r.nginx5xx).length;
  console.log(
    `# through nginx: ${results.length} requests, ${results.filter((r) => r.correct).length} correct, ${fiveXX} clean nginx 5xx, ${bad.length} other; ${after.length} after the kill at ${(killedAt / 1000).toFixed(1)} s`,
  );
  assert.deepEqual(bad.slice(0, 5), [], 'every request got a correct answer or a clean 5xx from nginx');
  assert.ok(fiveXX <= results.length * 0.01, `${fiveXX} 5xx answers: nginx should have retried nearly all on the survivor`);
  assert.ok(after.filter((r) => r.correct).length > 20, 'the survivor kept serving after the kill');
  assert.ok(results.filter((r) => r.t < killedAt && r.correct).length > 20, 'both served before the kill');

  // nginx's log: some request went to the dead instance first and was answered by the other
  const log = (await readFile(join(dir, 'access.log'), 'utf8')).trim().split('\n');
  const retried = log.filter((l) => /^200 127\.0\.0\.1:\d+, 127\.0\.0\.1:\d+ /.test(l));
  console.log(`# nginx retried ${retried.length} request(s) on the other instance, e.g. "${retried[0] ?? ''}"`);
  assert.ok(retried.length >= 1, `no retried request in nginx's log:\n${log.slice(-5).join('\n')}`);
  const served = new Set(log.map((l) => l.split(' ')[1]));
  assert.ok(served.has(`127.0.0.1:${pa}`) && served.has(`127.0.0.1:${pb}`), 'both instances served');

  // the survivor, directly: still healthy and answering
  assert.equal((await fetch(`http://127.0.0.1:${pb}/readyz`)).status, 200);
  proxy.kill('SIGQUIT');
  b.kill('SIGTERM');
  const code = await new Promise((resolve) => b.once('exit', resolve));
  assert.equal(code, 0, 'the survivor drains and exits 0 on SIGTERM');
  await new Promise((resolve) => (proxy.exitCode === null ? proxy.once('exit', resolve) : resolve(null)));
});

/** POST /api/predict from the local address `from` (127.0.0.2, ...: every 127/8 address is this machine). */
function predictFrom(port: number, from: string, headers: Record<string, string> = {}): Promise<number> {
  const body = JSON.stringify({ pixels: new Array(784).fill(0) });
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        localAddress: from,
        method: 'POST',
        path: '/api/predict',
        headers: { 'content-type': 'application/json', ...headers },
        agent: false,
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

test('behind nginx with --trust-proxy: the rate limit counts each client nginx saw, and a spoofed X-Forwarded-For changes nothing', {
  skip,
  timeout: 120_000,
}, async () => {
  assert.ok(nginx, 'CI=true and no nginx: install it (apt-get install nginx)');
  const model = await fixtureModelDir();
  const [pi, pn] = [await freePort(), await freePort()];
  // nginx connects to the instance from 127.0.0.1; clients come from 127.0.0.2 and 127.0.0.3
  const instance = await serve(model, pi, '--trust-proxy', '127.0.0.1', '--rate-limit', '3/min');
  await mkdir(join(dir, 'tmp'), { recursive: true });
  await writeFile(join(dir, 'trust.conf'), nginxConfig(pn, [pi], '      proxy_set_header X-Forwarded-For $remote_addr;'));
  const proxy = await startNginx('trust.conf', pn);

  const a = [];
  for (let i = 0; i < 4; i++) a.push(await predictFrom(pn, '127.0.0.2', i === 3 ? { 'x-forwarded-for': '198.51.100.7' } : {}));
  assert.deepEqual(a, [200, 200, 200, 429], 'client A: 3 a minute; its own X-Forwarded-For does not reset the count');
  assert.equal(await predictFrom(pn, '127.0.0.3'), 200, 'client B behind the same proxy has its own count');
  // straight to the instance, not through the trusted proxy: the header is not believed
  assert.equal(await predictFrom(pi, '127.0.0.2', { 'x-forwarded-for': '198.51.100.8' }), 429, 'a direct client is keyed on its own address');
  proxy.kill('SIGQUIT');
  instance.kill('SIGTERM');
  assert.equal(await new Promise((resolve) => instance.once('exit', resolve)), 0);
  const lines = instance.output().split('\n');
  assert.ok(
    lines.some((l) => / 127\.0\.0\.3 POST \/api\/predict 200 /.test(l)),
    `the log names the client:\n${lines.slice(-8).join('\n')}`,
  );
  assert.ok(!lines.some((l) => /198\.51\.100\./.test(l)), 'a spoofed address never reaches the log');
  await new Promise((resolve) => (proxy.exitCode === null ? proxy.once('exit', resolve) : resolve(null)));
});
