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
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { freePort, serve } from '../helpers/cli.ts';
import { fixtureModelDir } from '../helpers/fixture-model.ts';
import { loadMnist } from '../../src/data/mnist.ts';
import type { Prediction } from '../../src/serve/schema.ts';

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

/** Starts `convlab serve` on a port of its own choosing; resolves with the process and its port once it listens. */
async function serveOn(model: string): Promise<{ child: ChildProcess; port: number }> {
  const { child, url } = await serve(['--model', model, '--port', '0', '--no-page', '--workers', '1']);
  children.push(child);
  return { child, port: Number(new URL(url).port) };
}

function nginxConfig(listen: number, upstreams: number[]): string {
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
    }
  }
}
`;
}

test('two instances behind nginx: one SIGKILLed mid-run, every request answered correctly, the survivor serving', { skip, timeout: 180_000 }, async () => {
  assert.ok(nginx, 'CI=true and no nginx: install it (apt-get install nginx)');
  const model = await fixtureModelDir();
  const mnist = await loadMnist();
  const digits = Array.from({ length: 8 }, (_, k) => Array.from(mnist.test.images.slice(k * 784, (k + 1) * 784)));

  const [{ child: a, port: pa }, { child: b, port: pb }] = await Promise.all([serveOn(model), serveOn(model)]);
  const pn = await freePort();
  await mkdir(join(dir, 'tmp'));
  await writeFile(join(dir, 'nginx.conf'), nginxConfig(pn, [pa, pb]));
  const proxy = spawn(nginx, ['-p', dir, '-c', join(dir, 'nginx.conf')], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(proxy);
  let proxyOut = '';
  proxy.stderr.on('data', (d) => (proxyOut += d));
  const base = `http://127.0.0.1:${pn}`;
  for (let i = 0; ; i++) {
    const ok = await fetch(`${base}/healthz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    assert.ok(i < 100 && proxy.exitCode === null, `nginx did not start:\n${proxyOut}`);
    await new Promise((r) => setTimeout(r, 100));
  }

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
