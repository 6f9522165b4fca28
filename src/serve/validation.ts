/**
 * Fastify's validator for the route schemas (route-schemas.ts), with messages a person can act on.
 *
 * The schema decides whether a request is accepted. When it rejects one, the route's hand-written check
 * (checks.ts) is asked to explain: it throws the ApiError with the code and message the API has always given
 * (`"pixels[3]" is 200, outside 0..1; divide 0..255 pixel values by 255`). Only if the check finds nothing
 * wrong (the two disagree, which a test looks for) does the answer carry Ajv's own wording.
 *
 * Validation never changes the request: no coercion, no defaults, no removed properties (the handlers read
 * the original values; a query is validated on a coerced copy).
 */
import { Ajv, type ValidateFunction } from 'ajv';
import type { FastifySchemaCompiler } from 'fastify';
import { ApiError } from './schema.ts';
import { DOCS_ONLY, sharedSchemas } from './route-schemas.ts';

/** Explains why `data` is bad by throwing an ApiError (or rejecting with one); returns if it finds nothing. */
export type Explainer = (data: unknown) => void | Promise<void>;

/** `httpPart METHOD url` → its explainer, e.g. `body POST /api/predict`. */
export type Explainers = Record<string, Explainer>;

export function validatorCompiler(explainers: Explainers): FastifySchemaCompiler<unknown> {
  const strict = withShared(new Ajv({ strict: false, allErrors: false, coerceTypes: false, useDefaults: false }));
  const coercing = withShared(new Ajv({ strict: false, allErrors: false, coerceTypes: true, useDefaults: false }));
  return ({ schema, method, url, httpPart }) => {
    const s = schema as Record<string, unknown>;
    if (s[DOCS_ONLY] === true) return () => true;
    const part = httpPart ?? 'body';
    const coerce = part === 'querystring' || part === 'params';
    const check: ValidateFunction = (coerce ? coercing : strict).compile(s);
    const explain = explainers[`${part} ${method} ${url}`];
    return (data: unknown) => {
      if (check(coerce ? coercedCopy(data) : data)) return true;
      const fallback = new ApiError(
        'BAD_REQUEST',
        `${part === 'querystring' ? 'query' : part} ${check.errors?.[0]?.instancePath ?? ''} ${check.errors?.[0]?.message ?? 'is invalid'}`.replace(
          /\s+/g,
          ' ',
        ),
      );
      if (explain === undefined) return { error: fallback };
      try {
        const pending = explain(data);
        if (pending instanceof Promise)
          return pending.then(() => Promise.reject(fallback)) as unknown as ReturnType<ReturnType<FastifySchemaCompiler<unknown>>>;
      } catch (err) {
        return { error: err as Error };
      }
      return { error: fallback };
    };
  };
}

/** A query or params object to validate with coercion: a copy (the handler reads the original), without
 * empty values (`?count=` means the default, as the checks read it). */
function coercedCopy(data: unknown): unknown {
  if (typeof data !== 'object' || data === null) return data;
  return Object.fromEntries(Object.entries(data).filter(([, v]) => v !== ''));
}

function withShared(ajv: Ajv): Ajv {
  for (const schema of sharedSchemas) ajv.addSchema(schema);
  return ajv;
}
