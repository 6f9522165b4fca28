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
  /** Inference worker threads (default: one per core; 0: the main thread). */
  workers?: number;
  /** ms a predict request waits for others to share its forward pass. */
  batchWindow: number;
  tokenFile?: string;
  /** False with --no-auth. */
  auth: boolean;
  cors?: string[];
  /** `N/min`: requests per minute per client. */
  rateLimit?: string;
  /** Seconds to let in-flight requests finish after SIGTERM. */
  drainTimeout: number;
}

/** The default --batch-window: see the README's "convlab serve" section for the measurement behind it. */
export const DEFAULT_BATCH_WINDOW_MS = 0;

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

/** `convlab serve`: build the page if needed, load the model, listen, and run until SIGINT or SIGTERM. */
export async function serveCommand(flags: ServeFlags): Promise<void> {
  const log = (line: string) => console.log(line);
  if (flags.tokenFile !== undefined && !flags.auth) throw new UsageError('BAD_FLAGS', 'pass either --token-file or --no-auth, not both');
  if (!isLoopback(flags.host) && flags.tokenFile === undefined && flags.auth) {
    throw new UsageError(
      'AUTH_REQUIRED',
      `--host ${flags.host} is reachable from other machines: pass --token-file FILE (clients send Authorization: Bearer TOKEN) or --no-auth if a proxy in front authenticates`,
    );
  }
  const token = flags.tokenFile === undefined ? undefined : readToken(flags.tokenFile);
  const rateLimit = flags.rateLimit === undefined ? undefined : parseRateLimit(flags.rateLimit);
  const workers = flags.workers ?? defaultWorkerCount();
  const webDir = flags.page ? (await ensureWebBuild({ force: flags.rebuild, log })).dir : undefined;
  const app = await buildServer({
    modelDir: flags.model,
    webDir,
    log,
    backend: flags.backend,
    workers,
    batchWindowMs: flags.batchWindow,
    token,
    cors: flags.cors,
    rateLimit,
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
  const how = `${workers > 0 ? `${workers} worker${workers > 1 ? 's' : ''}` : 'the main thread'}, batch window ${flags.batchWindow} ms${token ? ', token required' : ''}`;
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
