/**
 * What makes the server safe to bind off loopback: a bearer token (compared in constant time), a CORS
 * allow-list, a per-client rate limit, security headers (helmet) with a Content-Security-Policy the page works
 * under (no inline script: Vite builds it into files), and explicit timeouts against slow clients.
 *
 * The token guards the API and the model files. The liveness and readiness probes and the page's own files
 * (HTML, scripts, styles, wasm) stay open, so a load balancer can probe and a browser can load the page.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Socket } from 'node:net';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import cors from '@fastify/cors';
import helmet from 'helmet';
import rateLimit from '@fastify/rate-limit';
import { ApiError, type ApiErrorBody } from './schema.ts';

export interface SecurityOptions {
  /** Bearer token every API request must carry (`Authorization: Bearer TOKEN`); undefined: no auth. */
  token?: string;
  /** Origins allowed to call the API from a browser (CORS); none by default. */
  cors?: string[];
  /** Most requests per minute per client address; undefined: no limit. */
  rateLimit?: number;
  /**
   * Proxies whose X-Forwarded-For names the client (Fastify's trustProxy): addresses, CIDR ranges, or
   * loopback/linklocal/uniquelocal. Undefined: the client is the connection's peer; the header is ignored.
   */
  trustProxy?: string[];
}

/** Timeouts, in ms, set on the HTTP server (see serverTimeouts). */
export interface Timeouts {
  /** Until the request's headers are in. */
  headersMs: number;
  /** Until the whole request (headers and body) is in. */
  requestMs: number;
  /** An idle keep-alive connection is closed after this. */
  keepAliveMs: number;
}

export const DEFAULT_TIMEOUTS: Timeouts = { headersMs: 10_000, requestMs: 30_000, keepAliveMs: 5_000 };

/** Fastify's server options for the timeouts. Node checks them every `connectionsCheckingInterval`. */
export function serverTimeouts(t: Timeouts) {
  return {
    requestTimeout: t.requestMs,
    keepAliveTimeout: t.keepAliveMs,
    // no activity at all on a socket for this long: closed (a byte a second is activity: requestTimeout ends that)
    connectionTimeout: Math.max(t.requestMs, t.headersMs) + 1000,
    http: { headersTimeout: t.headersMs, connectionsCheckingInterval: Math.max(100, Math.min(1000, t.headersMs / 4, t.requestMs / 4)) },
    clientErrorHandler,
  };
}

/** A request too slow, or not HTTP: our error body, then close (Fastify's default, with our shape). */
function clientErrorHandler(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, text, body]: [number, string, ApiErrorBody] =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'Request Timeout', { error: { code: 'REQUEST_TIMEOUT', message: 'the request was not received in time; send the whole request at once' } }]
      : [400, 'Bad Request', { error: { code: 'BAD_REQUEST', message: 'the request is not valid HTTP' } }];
  const json = JSON.stringify(body);
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${text}\r\nContent-Length: ${Buffer.byteLength(json)}\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n${json}`,
    );
  }
  socket.destroy();
}

/** Paths that stay open with a token: the probes, and the page's files (everything not under /api or /model). */
function isOpen(request: FastifyRequest): boolean {
  const path = request.url.split('?')[0];
  if (path === '/healthz' || path === '/readyz') return true;
  return request.method === 'GET' && !path.startsWith('/api/') && !path.startsWith('/model/') && path !== '/api';
}

/** Helmet's middleware with the page's Content-Security-Policy (no inline script: Vite builds it into files). */
export function securityHeadersMiddleware() {
  return helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        // the page is Vite's files only; TensorFlow.js compiles its wasm backend, which needs wasm-unsafe-eval
        scriptSrc: ["'self'", "'wasm-unsafe-eval'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", 'data:', 'blob:'],
        connectSrc: ["'self'"],
        workerSrc: ["'self'", 'blob:'],
        objectSrc: ["'none'"],
        baseUri: ["'self'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
      },
    },
    // the API answers other origins only through CORS; the page's files are same-origin
    crossOriginResourcePolicy: { policy: 'same-origin' },
    hsts: false, // plain HTTP: TLS ends at the load balancer, which sets HSTS
  });
}

/** The headers a helmet middleware sets on a response, by lower-case name (it must not depend on the request). */
export function helmetHeaders(middleware: ReturnType<typeof helmet>): Record<string, string> {
  const headers: Record<string, string> = {};
  const res = {
    setHeader: (name: string, value: unknown) => {
      headers[name.toLowerCase()] = String(value);
    },
    removeHeader: (name: string) => {
      delete headers[name.toLowerCase()];
    },
  };
  let done = false;
  middleware({} as never, res as never, (err?: unknown) => {
    if (err !== undefined) throw err;
    done = true;
  });
  if (!done) throw new Error('the security headers middleware did not finish at once');
  return headers;
}

/** Equal in constant time (both sides hashed first, so neither the length nor a prefix leaks). */
export function sameToken(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

export async function registerSecurity(app: FastifyInstance, options: SecurityOptions): Promise<void> {
  // Every response gets the headers helmet's middleware sets. They are the same for every response (no
  // nonces: the CSP is static), so the middleware runs once here and each request only copies them into
  // the reply: Node then writes them with Fastify's own headers in one writeHead, instead of helmet's twelve
  // res.setHeader calls that writeHead merges again (a few µs a request, measured under the load test).
  const headers = helmetHeaders(securityHeadersMiddleware());
  app.addHook('onRequest', (_request, reply, done) => {
    void reply.headers(headers);
    done();
  });
  if (options.cors && options.cors.length > 0) {
    await app.register(cors, { origin: options.cors, methods: ['GET', 'POST'], allowedHeaders: ['content-type', 'authorization'], maxAge: 600 });
  }
  if (options.rateLimit !== undefined) {
    const max = options.rateLimit;
    await app.register(rateLimit, {
      max,
      timeWindow: 60_000,
      allowList: (request) => request.url === '/healthz' || request.url === '/readyz',
      errorResponseBuilder: (_request, context) =>
        new ApiError('RATE_LIMITED', `over the limit of ${max} requests a minute from this client; try again in ${Math.ceil(context.ttl / 1000)} s`),
    });
  }
  const token = options.token;
  if (token !== undefined) {
    app.addHook('onRequest', async (request, reply) => {
      if (isOpen(request) || request.method === 'OPTIONS') return;
      const header = request.headers.authorization ?? '';
      const given = /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1] ?? '';
      if (!sameToken(given, token)) {
        void reply.header('www-authenticate', 'Bearer realm="convlab"');
        throw new ApiError(
          'UNAUTHORIZED',
          header
            ? "the bearer token is wrong; send the one in the server's --token-file"
            : 'this server needs a token: send `Authorization: Bearer TOKEN` (the one in its --token-file)',
        );
      }
    });
  }
}
