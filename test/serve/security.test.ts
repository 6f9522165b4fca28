/**
 * Safe off loopback: the bearer token (and its constant-time compare), CORS, the rate limit, security
 * headers with the page's CSP, error bodies without file paths or stacks, the static route refusing every
 * way out of the page's folder, and timeouts against a client that sends one byte a second.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import { join } from 'node:path';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { fixtureModelDir } from '../helpers/fixture-model.ts';
import { buildServer } from '../../src/serve/server.ts';
import { sameToken, securityHeadersMiddleware } from '../../src/serve/security.ts';
import { withoutPaths } from '../../src/serve/errors.ts';
import { parseTrustProxy } from '../../src/cli/serve.ts';

const TOKEN = 'a-test-token-0123456789abcdef';
const pixels = JSON.stringify({ pixels: Array.from({ length: 784 }, () => 0) });
const predict = (headers: Record<string, string> = {}): InjectOptions => ({
  method: 'POST',
  url: '/api/predict',
  payload: pixels,
  headers: { 'content-type': 'application/json', ...headers },
});

let modelDir: string;
let dir: string;
const apps: FastifyInstance[] = [];
before(async () => {
  modelDir = await fixtureModelDir();
  dir = await mkdtemp(join(tmpdir(), 'convlab-security-'));
});
after(async () => {
  await Promise.all(apps.map((a) => a.close()));
  await rm(dir, { recursive: true, force: true });
});
async function server(options: Partial<Parameters<typeof buildServer>[0]> = {}): Promise<FastifyInstance> {
  const app = await buildServer({ modelDir, ...options });
  apps.push(app);
  return app;
}

describe('bearer token', () => {
  test('sameToken: equal only for the same string, whatever the lengths', () => {
    assert.equal(sameToken(TOKEN, TOKEN), true);
    assert.equal(sameToken(TOKEN.slice(0, -1), TOKEN), false);
    assert.equal(sameToken(`${TOKEN}x`, TOKEN), false);
    assert.equal(sameToken('', TOKEN), false);
  });

  test('the API and the model files need it; the probes and the page do not', async () => {
    const app = await server({ token: TOKEN });
    const none = await app.inject(predict());
    assert.equal(none.statusCode, 401);
    assert.equal(none.json().error.code, 'UNAUTHORIZED');
    assert.match(none.json().error.message, /Authorization: Bearer/);
    assert.match(String(none.headers['www-authenticate']), /^Bearer/);
    const wrong = await app.inject(predict({ authorization: `Bearer ${TOKEN}x` }));
    assert.equal(wrong.statusCode, 401);
    assert.match(wrong.json().error.message, /wrong/);
    assert.equal((await app.inject(predict({ authorization: `Basic ${TOKEN}` }))).statusCode, 401);
    assert.equal((await app.inject(predict({ authorization: `Bearer ${TOKEN}` }))).statusCode, 200);
    assert.equal((await app.inject(predict({ authorization: `bearer  ${TOKEN}` }))).statusCode, 200, 'the scheme is case-insensitive');
    for (const url of ['/api/model', '/model/weights.bin', '/model/model.json', '/api/openapi.json', '/api/mnist-subset?count=1']) {
      assert.equal((await app.inject({ method: 'GET', url })).statusCode, 401, url);
    }
    for (const url of ['/healthz', '/readyz']) assert.equal((await app.inject({ method: 'GET', url })).statusCode, 200, url);
    assert.equal((await app.inject({ method: 'GET', url: '/' })).json().error.code, 'PAGE_NOT_BUILT', 'the page is open (not built here)');
  });

  test('without a token, everything is open', async () => {
    const app = await server();
    assert.equal((await app.inject(predict())).statusCode, 200);
  });
});

describe('CORS', () => {
  test('none by default: no access-control headers for any origin', async () => {
    const app = await server();
    const r = await app.inject({ ...predict({ origin: 'https://elsewhere.example' }) });
    assert.equal(r.headers['access-control-allow-origin'], undefined);
  });

  test('--cors ORIGIN: that origin may call (preflight and request), others may not', async () => {
    const app = await server({ cors: ['https://phone.example', 'https://tablet.example'] });
    const preflight = await app.inject({
      method: 'OPTIONS',
      url: '/api/predict',
      headers: { origin: 'https://phone.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,authorization' },
    });
    assert.equal(preflight.statusCode, 204);
    assert.equal(preflight.headers['access-control-allow-origin'], 'https://phone.example');
    assert.match(String(preflight.headers['access-control-allow-headers']), /authorization/);
    const r = await app.inject(predict({ origin: 'https://tablet.example' }));
    assert.equal(r.headers['access-control-allow-origin'], 'https://tablet.example');
    const other = await app.inject(predict({ origin: 'https://evil.example' }));
    assert.equal(other.headers['access-control-allow-origin'], undefined);
  });
});

test('rate limit: the request over N a minute gets 429 RATE_LIMITED with retry-after; the probes are not counted', async () => {
  const app = await server({ rateLimit: 5 });
  for (let i = 0; i < 5; i++) assert.equal((await app.inject(predict())).statusCode, 200, `request ${i + 1}`);
  const over = await app.inject(predict());
  assert.equal(over.statusCode, 429);
  assert.equal(over.json().error.code, 'RATE_LIMITED');
  assert.match(over.json().error.message, /5 requests a minute/);
  assert.ok(Number(over.headers['retry-after']) > 0, 'retry-after');
  for (let i = 0; i < 10; i++) assert.equal((await app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);
  const other = await app.inject({ ...predict(), remoteAddress: '10.0.0.7' });
  assert.equal(other.statusCode, 200, 'per client address');
});

describe('trust proxy: the client address behind a proxy', () => {
  const from = (remoteAddress: string, forwardedFor?: string): InjectOptions => ({
    ...predict(forwardedFor === undefined ? {} : { 'x-forwarded-for': forwardedFor }),
    remoteAddress,
  });
  const statuses = async (app: FastifyInstance, requests: InjectOptions[]) => {
    const out: number[] = [];
    for (const r of requests) out.push((await app.inject(r)).statusCode);
    return out;
  };

  test('off by default: X-Forwarded-For is ignored, the rate limit counts the connection', async () => {
    const app = await server({ rateLimit: 2 });
    const got = await statuses(app, [from('10.0.0.9', '203.0.113.1'), from('10.0.0.9', '203.0.113.2'), from('10.0.0.9', '203.0.113.3')]);
    assert.deepEqual(got, [200, 200, 429]);
  });

  test('from a trusted proxy, each forwarded client has its own count; from anyone else, the header changes nothing', async () => {
    const lines: string[] = [];
    const app = await server({ rateLimit: 2, trustProxy: ['127.0.0.1'], log: (l) => lines.push(l) });
    // two clients behind the proxy: counted apart
    assert.deepEqual(
      await statuses(app, [from('127.0.0.1', '203.0.113.1'), from('127.0.0.1', '203.0.113.1'), from('127.0.0.1', '203.0.113.1')]),
      [200, 200, 429],
    );
    assert.deepEqual(await statuses(app, [from('127.0.0.1', '203.0.113.2')]), [200]);
    // a client behind the proxy that sends its own X-Forwarded-For (the proxy appends the real address): the real one counts
    assert.deepEqual(await statuses(app, [from('127.0.0.1', '198.51.100.7, 203.0.113.1')]), [429]);
    // an untrusted client that spoofs the header: keyed on its own address, whatever it claims
    const spoofed = await statuses(app, [from('10.0.0.9', '203.0.113.50'), from('10.0.0.9', '203.0.113.51'), from('10.0.0.9', '203.0.113.2')]);
    assert.deepEqual(spoofed, [200, 200, 429]);
    // the log names the client, as the rate limit sees it
    assert.ok(
      lines.some((l) => / 203\.0\.113\.1 POST \/api\/predict 429 /.test(l)),
      lines.join('\n'),
    );
    assert.ok(
      lines.some((l) => / 10\.0\.0\.9 POST \/api\/predict 200 /.test(l)),
      lines.join('\n'),
    );
    assert.ok(!lines.some((l) => / 203\.0\.113\.5\d /.test(l)), 'a spoofed address never reaches the log');
  });

  test('parseTrustProxy: addresses, CIDR ranges and names; a hop count or anything else is one line', () => {
    assert.deepEqual(parseTrustProxy('127.0.0.1'), ['127.0.0.1']);
    assert.deepEqual(parseTrustProxy('10.0.0.0/8, ::1,fd00::/8,loopback'), ['10.0.0.0/8', '::1', 'fd00::/8', 'loopback']);
    assert.throws(() => parseTrustProxy('1'), /hop count cannot tell/);
    for (const bad of ['', 'true', '0', '2', '10.0.0.0/33', '10.0.0.1/', 'nginx', '10.0.0.1,,10.0.0.2', '300.1.1.1'])
      assert.throws(
        () => parseTrustProxy(bad),
        (err: Error & { code?: string }) => err.code === 'BAD_TRUST_PROXY' && !err.message.includes('\n'),
        bad,
      );
  });
});

test('security headers and a CSP without inline script, on the page and the API', async () => {
  const app = await server();
  for (const url of ['/', '/api/model']) {
    const r = await app.inject({ method: 'GET', url });
    const csp = String(r.headers['content-security-policy']);
    assert.match(csp, /default-src 'self'/);
    assert.match(csp, /script-src 'self' 'wasm-unsafe-eval'(;|$)/);
    assert.doesNotMatch(csp, /unsafe-inline/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.equal(r.headers['x-content-type-options'], 'nosniff');
    assert.ok(r.headers['x-frame-options']);
    assert.ok(r.headers['referrer-policy']);
  }
});

test("every answer, good or bad, carries exactly the headers helmet's middleware sets on a real response", async () => {
  // the reference: helmet itself on a Node response (the server copies the headers it captured once)
  const res = new ServerResponse(new IncomingMessage(new Socket()));
  securityHeadersMiddleware()(res.req, res, () => {});
  const expected = Object.entries(res.getHeaders()).map(([name, value]) => [name, String(value)]);
  assert.ok(expected.length >= 10, JSON.stringify(expected));
  const app = await server();
  const answers = await Promise.all([
    app.inject(predict()),
    app.inject({ ...predict(), payload: '{"pixels": [1, 2]}' }), // 400
    app.inject({ method: 'GET', url: '/api/no-such-route' }), // 404
    app.inject({ method: 'GET', url: '/api/model' }),
    app.inject({ method: 'GET', url: '/' }),
  ]);
  for (const r of answers) {
    for (const [name, value] of expected) assert.equal(r.headers[name], value, `${r.statusCode} ${name}`);
  }
  assert.deepEqual(
    answers.map((r) => r.statusCode),
    [200, 400, 404, 200, 503],
  );
});

describe('error bodies carry no file path and no stack', () => {
  test('withoutPaths: machine paths become <path>, route paths stay', () => {
    const msg = `ENOENT: no such file or directory, open '${join(tmpdir(), 'x', 'y.idx')}'; see /api/openapi.json or /home/someone/a.txt`;
    const out = withoutPaths(msg);
    assert.ok(!out.includes(tmpdir()), out);
    assert.ok(!out.includes('/home/'), out);
    assert.match(out, /\/api\/openapi\.json/);
  });

  test('a data folder that is missing: the error names no path', async () => {
    const missing = join(dir, 'no-such-mnist-folder');
    const app = await server({ mnistDir: missing });
    const r = await app.inject({ method: 'GET', url: '/api/mnist-subset?count=1' });
    assert.ok(r.statusCode >= 400, r.body);
    assert.ok(!r.body.includes(dir) && !r.body.includes(tmpdir()), r.body);
    assert.doesNotMatch(r.body, /\n\s+at /, 'no stack');
  });
});

describe('the static route serves only the page folder', () => {
  let app: FastifyInstance;
  let secret: string;
  before(async () => {
    const web = join(dir, 'web');
    await mkdir(join(web, 'assets'), { recursive: true });
    await writeFile(join(web, 'index.html'), '<!doctype html><script type="module" src="/assets/app.js"></script>');
    await writeFile(join(web, 'assets', 'app.js'), 'console.log(1)');
    await writeFile(join(web, '.env'), 'SECRET=dotfile');
    secret = join(dir, 'secret.txt');
    await writeFile(secret, 'TOP-SECRET');
    await symlink(secret, join(web, 'leak.txt'));
    await symlink(dir, join(web, 'assets', 'up'));
    app = await server({ webDir: web });
  });

  test('the page and its assets are served', async () => {
    const page = await app.inject({ method: 'GET', url: '/' });
    const script = await app.inject({ method: 'GET', url: '/assets/app.js' });
    assert.equal(page.statusCode, 200);
    assert.equal(script.body, 'console.log(1)');
    for (const r of [page, script]) {
      assert.match(String(r.headers['content-security-policy']), /script-src 'self' 'wasm-unsafe-eval'/);
      assert.equal(r.headers['x-content-type-options'], 'nosniff');
    }
  });

  const attempts = [
    '/../secret.txt',
    '/%2e%2e/secret.txt',
    '/%2E%2E/secret.txt',
    '/%2e%2e%2fsecret.txt',
    '/assets/..%2f..%2fsecret.txt',
    '/assets/%2e%2e/%2e%2e/secret.txt',
    '/..%5csecret.txt',
    '/....//secret.txt',
    '/leak.txt',
    '/assets/up/secret.txt',
    '/.env',
    '/index.html%00.js',
    '/%00',
    '/assets/app.js%00',
  ];
  for (const url of attempts) {
    test(`GET ${url}: refused, with a JSON error and no path`, async () => {
      const r = await app.inject({ method: 'GET', url });
      assert.ok(!r.body.includes('TOP-SECRET') && !r.body.includes('SECRET=dotfile'), `leaked: ${r.body}`);
      assert.ok(r.statusCode >= 400 && r.statusCode < 500, `${r.statusCode}`);
      assert.ok(!r.body.includes(dir), r.body);
    });
  }

  test('absolute paths: the secret file, /etc/passwd', async () => {
    for (const url of [`/${secret}`, `/${encodeURIComponent(secret)}`, '//etc/passwd', '/%2fetc%2fpasswd']) {
      const r = await app.inject({ method: 'GET', url });
      assert.ok(!r.body.includes('TOP-SECRET') && !r.body.includes('root:'), `${url}: ${r.body}`);
      assert.ok(r.statusCode >= 400 && r.statusCode < 500, `${url}: ${r.statusCode}`);
    }
  });

  test('raw request lines (no client normalising the path)', async () => {
    await app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = app.server.address() as AddressInfo;
    for (const path of ['/../secret.txt', '/assets/../../secret.txt', '/assets/up/secret.txt', `/${secret}`]) {
      const response = await raw(port, `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      assert.ok(!response.includes('TOP-SECRET'), `${path}: ${response}`);
      assert.match(response, /^HTTP\/1\.1 4\d\d/, path);
    }
  });
});

function raw(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(text)); // the server closes (Connection: close)
    let out = '';
    socket.on('data', (d) => (out += d));
    socket.on('end', () => resolve(out));
    socket.on('error', reject);
  });
}

describe('timeouts against a client that sends one byte a second', () => {
  let port: number;
  before(async () => {
    const app = await server({ timeouts: { headersMs: 1500, requestMs: 3000, keepAliveMs: 1000 } });
    await app.listen({ port: 0, host: '127.0.0.1' });
    port = (app.server.address() as AddressInfo).port;
  });

  /** Sends `text` one byte a second; resolves with what the server answered and when it hung up. */
  function trickle(text: string, fastPrefix = 0): Promise<{ answer: string; seconds: number; sent: number }> {
    return new Promise((resolve) => {
      const t0 = performance.now();
      const socket = connect(port, '127.0.0.1');
      let answer = '';
      let sent = 0;
      let timer: NodeJS.Timeout | undefined;
      socket.on('connect', () => {
        socket.write(text.slice(0, fastPrefix));
        sent = fastPrefix;
        timer = setInterval(() => {
          if (sent < text.length && !socket.destroyed) socket.write(text[sent++]);
        }, 1000);
      });
      socket.on('data', (d) => (answer += d));
      const done = () => {
        clearInterval(timer);
        resolve({ answer, seconds: (performance.now() - t0) / 1000, sent });
      };
      socket.on('close', done);
      socket.on('error', () => {});
    });
  }

  test('headers, a byte a second: 408 REQUEST_TIMEOUT and closed, within the headers timeout', async () => {
    const r = await trickle('POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\r\n');
    assert.match(r.answer, /^HTTP\/1\.1 408/);
    assert.match(r.answer, /"REQUEST_TIMEOUT"/);
    assert.ok(r.seconds >= 1.4 && r.seconds < 4, `closed after ${r.seconds.toFixed(1)} s`);
  });

  test('a body, a byte a second: closed within the request timeout', async () => {
    const head = `POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${pixels.length}\r\n\r\n`;
    const r = await trickle(head + pixels, head.length);
    assert.match(r.answer, /^HTTP\/1\.1 408/);
    assert.ok(r.seconds >= 2.9 && r.seconds < 6, `closed after ${r.seconds.toFixed(1)} s`);
    assert.ok(r.sent < head.length + 10, 'cut off long before the body was in');
  });

  test('an idle keep-alive connection is closed after the keep-alive timeout', async () => {
    const t0 = performance.now();
    const answer = await new Promise<string>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'));
      let out = '';
      socket.on('data', (d) => (out += d));
      socket.on('close', () => resolve(out));
    });
    const seconds = (performance.now() - t0) / 1000;
    assert.match(answer, /^HTTP\/1\.1 200/);
    assert.ok(seconds >= 0.9 && seconds < 3, `closed after ${seconds.toFixed(1)} s`);
  });
});
