/**
 * Every error the server answers is `{"error": {"code", "message"}}` with the status from ERROR_STATUS
 * (schema.ts). Bad input never reaches a 500; only genuine bugs are INTERNAL, and their stack goes to the
 * log, never into the body (nor does a file path: the message of an unexpected error is not echoed).
 */
import { homedir, tmpdir } from 'node:os';
import type { FastifyError, FastifyInstance } from 'fastify';
import { ConvlabError, formatCount } from '../errors.ts';
import { ERROR_STATUS, isErrorCode, type ApiErrorBody } from './schema.ts';

/** Installs the error and not-found handlers. `log` gets the stack of a bug. */
export function registerErrorHandlers(app: FastifyInstance, bodyLimit: number, log: (line: string) => void): void {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    const body = errorBody(err, bodyLimit);
    const status = body.error.code === 'INTERNAL' ? 500 : errorStatus(err, body);
    if (body.error.code === 'INTERNAL') log(`${new Date().toISOString()} ${request.method} ${request.url} failed: ${err.stack ?? err.message}`);
    void reply.code(status).type('application/json').send(body);
  });
  app.setNotFoundHandler((request, reply) => {
    const body: ApiErrorBody = {
      error: { code: 'NOT_FOUND', message: `no route ${request.method} ${request.url.split('?')[0]}; the API is described at /api/openapi.json` },
    };
    void reply.code(404).send(body);
  });
}

/** Fastify's and @fastify/multipart's error codes, mapped to ours. */
const FRAMEWORK_CODES: Record<string, keyof typeof ERROR_STATUS> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'BODY_TOO_LARGE',
  FST_REQ_FILE_TOO_LARGE: 'BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'BAD_REQUEST',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_INVALID_MULTIPART_CONTENT_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'BAD_JSON',
  FST_ERR_CTP_INVALID_JSON_BODY: 'BAD_JSON',
  FST_FILES_LIMIT: 'MULTIPART_TOO_MANY_FILES',
  FST_PARTS_LIMIT: 'BAD_REQUEST',
  FST_FIELDS_LIMIT: 'BAD_REQUEST',
  FST_PROTO_VIOLATION: 'BAD_REQUEST',
};

export function errorBody(err: FastifyError, bodyLimit: number): ApiErrorBody {
  const body = rawErrorBody(err, bodyLimit);
  body.error.message = withoutPaths(body.error.message);
  return body;
}

/** Roots under which a path in a message would tell a client about this machine. */
const ROOTS = [...new Set([process.cwd(), homedir(), tmpdir()])].filter((r) => r.length > 1);
const ABSOLUTE = /(?:[A-Za-z]:\\|\/(?:home|root|tmp|var|usr|opt|etc|srv|mnt|work|private|Users|proc|dev|run|data)\/)[^\s'"`,;()]*/g;

/** A message with every file path of this machine replaced by `<path>` (route paths like /api/x stay). */
export function withoutPaths(message: string): string {
  let out = message;
  for (const root of ROOTS) out = out.split(root).join('<path>');
  return out.replace(ABSOLUTE, '<path>').replace(/<path>[^\s'"`,;()]*/g, '<path>');
}

function rawErrorBody(err: FastifyError, bodyLimit: number): ApiErrorBody {
  if (err instanceof ConvlabError && isErrorCode(err.code)) return { error: { code: err.code, message: err.message } };
  const mapped = FRAMEWORK_CODES[err.code];
  if (mapped === 'BODY_TOO_LARGE') {
    return {
      error: {
        code: mapped,
        message: `the request body is over the limit of ${formatCount(bodyLimit)} bytes; send a smaller image or split the batch`,
      },
    };
  }
  if (mapped === 'UNSUPPORTED_MEDIA_TYPE') {
    return {
      error: { code: mapped, message: `${err.message}; send application/json, multipart/form-data, image/png or image/jpeg` },
    };
  }
  if (mapped === 'MULTIPART_TOO_MANY_FILES') {
    return { error: { code: mapped, message: 'upload one image file per request; for several, send {"batch": [...]} as JSON' } };
  }
  if (mapped !== undefined) return { error: { code: mapped, message: err.message } };
  // Other client errors from the framework (a JSON SyntaxError, a malformed multipart body, ...)
  if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
    return { error: { code: err instanceof SyntaxError ? 'BAD_JSON' : 'BAD_REQUEST', message: err.message } };
  }
  return { error: { code: 'INTERNAL', message: `the server failed (${err.message}); this is a bug in convlab, please report it` } };
}

function errorStatus(err: FastifyError, body: ApiErrorBody): number {
  if (err instanceof ConvlabError || FRAMEWORK_CODES[err.code] !== undefined) return ERROR_STATUS[body.error.code];
  return typeof err.statusCode === 'number' ? err.statusCode : ERROR_STATUS[body.error.code];
}
