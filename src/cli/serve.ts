import { readFileSync } from 'node:fs';
import { isIP, type AddressInfo } from 'node:net';
import type { BackendName } from '../backend.ts';
import { UsageError } from '../errors.ts';
import { buildServer } from '../serve/server.ts';
import { ensureWebBuild } from '../serve/web-build.ts';
import { defaultWorkerCount } from '../train/parallel.ts';

export interface ServeFlags {
  model: string;
  port: number;
  host: string;
  /** False with --no-page: the API only. */
  page: boolean;
  rebuild?: boolean;
  backend: BackendName;
  /** Inference worker threads (default: defaultServeWorkers(); 0: the main thread). */
  workers?: number;
  /** ms a predict request waits for others to share its forward pass. */
  batchWindow: number;
  /** Images in a pass that make it start without waiting for the window. */
  maxBatch: number;
  tokenFile?: string;
  /** False with --no-auth. */
  auth: boolean;
  cors?: string[];
  /** `N/min`: requests per minute per client. */
  rateLimit?: string;
  /** Proxies whose X-Forwarded-For is believed: addresses/CIDRs (comma-separated) or a hop count. */
  trustProxy?: string;
  /** Seconds to let in-flight requests finish after SIGTERM. */
  drainTimeout: number;
}

/** The default --batch-window and --max-batch: see the README's "convlab serve" section for the measurements behind them. */
export const DEFAULT_BATCH_WINDOW_MS = 2;
export const DEFAULT_MAX_BATCH = 64;

/**
 * The default --workers: one per core but one, which is left to the main thread (HTTP, parsing,
 * validation, replies); at least one. On 2 cores that is 1 worker: in every loadtest pair on the shared
 * 2-core machine, 1 worker served more requests, at less CPU per request, than 2 (README, Throughput).
 */
export function defaultServeWorkers(cores = defaultWorkerCount()): number {
  return Math.max(1, cores - 1);
}

/** True for addresses only this machine can reach. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  return h.startsWith('::ffff:127.');
}

/** `--rate-limit 600/min` (or `600`) → 600. */
export function parseRateLimit(value: string): number {
  const m = /^(\d+)(?:\s*\/\s*min(?:ute)?)?$/i.exec(value.trim());
  const n = m ? Number(m[1]) : NaN;
  if (!Number.isSafeInteger(n) || n < 1)
    throw new UsageError('BAD_RATE_LIMIT', `--rate-limit must look like 600/min (requests per minute per client), got ${JSON.stringify(value)}`);
  return n;
}

const PROXY_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal']);

/**
 * `--trust-proxy 10.0.0.5,10.1.0.0/16` (addresses, CIDR ranges, or loopback/linklocal/uniquelocal) → the
 * list Fastify's trustProxy takes. Only connections from those proxies have their X-Forwarded-For read;
 * anyone else's is ignored, so a client cannot pick its own address. A hop count is refused (Fastify 5
 * ignores one too): counting hops cannot tell a proxy from a client that sends the header itself.
 */
export function parseTrustProxy(value: string): string[] {
  const v = value.trim();
  if (/^\d+$/.test(v)) {
    throw new UsageError(
      'BAD_TRUST_PROXY',
      `--trust-proxy ${v}: a hop count cannot tell a proxy from a client that sends X-Forwarded-For itself; list the proxies' addresses (10.0.0.5,10.1.0.0/16 or loopback)`,
    );
  }
  const entries = v.split(',').map((e) => e.trim());
  const bad = entries.find((e) => !PROXY_NAMES.has(e) && !isAddressOrRange(e));
  if (bad === undefined) return entries;
  throw new UsageError(
    'BAD_TRUST_PROXY',
    bad === ''
      ? `--trust-proxy must list the proxies' addresses, comma-separated (127.0.0.1,10.0.0.0/8, or loopback), got ${JSON.stringify(value)}`
      : `--trust-proxy: ${JSON.stringify(bad)} is not an IP address, a CIDR range (10.0.0.0/8) or loopback/linklocal/uniquelocal`,
  );
}

function isAddressOrRange(entry: string): boolean {
  const [address, prefix, ...rest] = entry.split('/');
  const family = isIP(address);
  if (family === 0 || rest.length > 0) return false;
  if (prefix === undefined) return true;
  return /^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128);
}

function readToken(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(
      'BAD_TOKEN_FILE',
      `--token-file ${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? err}); write the token into that file first`,
    );
  }
  const token = text.trim();
  if (token.length < 16 || /\s/.test(token)) {
    throw new UsageError(
      'BAD_TOKEN_FILE',
      `--token-file ${file}: expected one token of at least 16 characters without spaces (e.g. \`openssl rand -hex 32 > ${file}\`)`,
    );
  }
  return token;
}

/**
 * Lines for stdout, written together once per turn of the event loop: under load that is one write for
 * many request lines instead of one (synchronous, on a pipe) each. `flush` writes what is pending now.
 */
export function lineWriter(write: (text: string) => void): { log: (line: string) => void; flush: () => void } {
  let pending: string[] = [];
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    if (pending.length === 0) return;
    const text = `${pending.join('\n')}\n`;
    pending = [];
    write(text);
  };
  return {
    log: (line) => {
      pending.push(line);
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    },
    flush,
  };
}

/** `convlab serve`: build the page if needed, load the model, listen, and run until SIGINT or SIGTERM. */
export async function serveCommand(flags: ServeFlags): Promise<void> {
  const out = lineWriter((text) => process.stdout.write(text));
  try {
    await serve(flags, out.log);
  } finally {
    out.flush();
  }
}

async function serve(flags: ServeFlags, log: (line: string) => void): Promise<void> {
  if (flags.tokenFile !== undefined && !flags.auth) throw new UsageError('BAD_FLAGS', 'pass either --token-file or --no-auth, not both');
  if (!isLoopback(flags.host) && flags.tokenFile === undefined && flags.auth) {
    throw new UsageError(
      'AUTH_REQUIRED',
      `--host ${flags.host} is reachable from other machines: pass --token-file FILE (clients send Authorization: Bearer TOKEN) or --no-auth if a proxy in front authenticates`,
    );
  }
  const token = flags.tokenFile === undefined ? undefined : readToken(flags.tokenFile);
  const rateLimit = flags.rateLimit === undefined ? undefined : parseRateLimit(flags.rateLimit);
  const trustProxy = flags.trustProxy === undefined ? undefined : parseTrustProxy(flags.trustProxy);
  const workers = flags.workers ?? defaultServeWorkers();
  const webDir = flags.page ? (await ensureWebBuild({ force: flags.rebuild, log })).dir : undefined;
  const app = await buildServer({
    modelDir: flags.model,
    webDir,
    log,
    backend: flags.backend,
    workers,
    batchWindowMs: flags.batchWindow,
    maxBatch: flags.maxBatch,
    token,
    cors: flags.cors,
    rateLimit,
    trustProxy,
  });
  try {
    await app.listen({ port: flags.port, host: flags.host });
  } catch (err) {
    await app.close();
    const code = (err as NodeJS.ErrnoException)?.code;
    if (code === 'EADDRINUSE') {
      throw new UsageError(
        'PORT_IN_USE',
        `port ${flags.port} on ${flags.host} is in use: stop the other server or pass --port with another number (0 = any free port)`,
      );
    }
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') {
      throw new UsageError('BAD_HOST', `cannot listen on ${flags.host}: no such local address; use 127.0.0.1, or 0.0.0.0 for every interface`);
    }
    throw err;
  }
  const { port } = app.server.address() as AddressInfo;
  const host = flags.host.includes(':') ? `[${flags.host}]` : flags.host;
  const how = `${workers > 0 ? `${workers} worker${workers > 1 ? 's' : ''}` : 'the main thread'}, batch window ${flags.batchWindow} ms, max batch ${flags.maxBatch}${token ? ', token required' : ''}`;
  log(
    `convlab serving ${flags.model} on ${flags.backend} (${how}) at http://${host}:${port}/${flags.page ? '' : ' (API only)'} — API described at /api/openapi.json; Ctrl+C stops`,
  );

  const signal = await new Promise<string>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  // Drain: /readyz turns 503 so a load balancer stops sending; close() stops accepting and waits for the
  // requests in flight; past the bound, whatever is left is cut off.
  log(`${signal}: draining (at most ${flags.drainTimeout} s)…`);
  app.drain();
  const bound = setTimeout(() => {
    log(`still busy after ${flags.drainTimeout} s: closing the remaining connections`);
    app.server.closeAllConnections();
  }, flags.drainTimeout * 1000);
  bound.unref();
  app.server.closeIdleConnections();
  await app.close();
  clearTimeout(bound);
  log('stopped');
}
