/** The API contract's pure parts: request checks (with properties), the architecture table, and that the route schemas agree with the checks. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Ajv } from 'ajv';
import { ApiError, ERROR_STATUS, LIMITS, PIXEL_COUNT, type ErrorCode } from '../../src/serve/schema.ts';
import { checkBase64, checkPixels, checkPredictRequest, checkSubsetQuery } from '../../src/serve/checks.ts';
import { routeSchemas, sharedSchemas } from '../../src/serve/route-schemas.ts';
import { architecture } from '../../src/model/architecture.ts';
import { presets, weightSpecs, type NetworkConfig } from '../../src/model/config.ts';

function throwsCode(fn: () => unknown, code: ErrorCode): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ApiError, `expected an ApiError, got ${err}`);
    assert.equal(err.code, code, err.message);
    assert.equal(err.status, ERROR_STATUS[code]);
    return true;
  });
}

const pixelValue = fc.double({ min: 0, max: 1, noNaN: true });

describe('checkPixels', () => {
  test('property: 784 numbers in [0,1] are accepted and copied exactly (as float32)', () => {
    fc.assert(
      fc.property(fc.array(pixelValue, { minLength: PIXEL_COUNT, maxLength: PIXEL_COUNT }), (values) => {
        const out = checkPixels(values);
        assert.equal(out.length, PIXEL_COUNT);
        values.forEach((v, i) => assert.equal(out[i], Math.fround(v)));
      }),
      { numRuns: 50, seed: 1 },
    );
  });

  test('property: one value out of range, or not a finite number, is named by its index', () => {
    const bad = fc.oneof(
      fc.double({ min: 1, max: 1e9, minExcluded: true, noNaN: true }).map((v) => ({ v, code: 'PIXELS_RANGE' as const })),
      fc.double({ max: 0, maxExcluded: true, min: -1e9, noNaN: true }).map((v) => ({ v, code: 'PIXELS_RANGE' as const })),
      fc.constantFrom<unknown>(NaN, Infinity, -Infinity, null, '0.5', true, [0.5], {}).map((v) => ({ v, code: 'PIXELS_NOT_NUMBER' as const })),
    );
    fc.assert(
      fc.property(fc.integer({ min: 0, max: PIXEL_COUNT - 1 }), bad, (index, { v, code }) => {
        const values: unknown[] = new Array(PIXEL_COUNT).fill(0.25);
        values[index] = v;
        try {
          checkPixels(values);
          assert.fail('accepted a bad value');
        } catch (err) {
          assert.ok(err instanceof ApiError);
          assert.equal(err.code, code);
          assert.ok(err.message.includes(`pixels[${index}]`), err.message);
        }
      }),
      { numRuns: 200, seed: 2 },
    );
  });

  test('property: any other length is PIXELS_LENGTH', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2000 }).filter((n) => n !== PIXEL_COUNT),
        (n) => {
          throwsCode(() => checkPixels(new Array(n).fill(0)), 'PIXELS_LENGTH');
        },
      ),
      { numRuns: 50, seed: 3 },
    );
  });

  test('0..255 values get a hint to divide by 255', () => {
    assert.throws(() => checkPixels(new Array(PIXEL_COUNT).fill(128)), /divide 0\.\.255 pixel values by 255/);
  });
});

describe('checkBase64', () => {
  test('property: whatever Node encodes (standard or URL-safe, padded or not) is accepted and decodes back', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 200 }), fc.constantFrom('base64', 'base64url'), fc.boolean(), (bytes, enc, strip) => {
        let text = Buffer.from(bytes).toString(enc as BufferEncoding);
        if (strip) text = text.replace(/=+$/, '');
        assert.deepEqual(Buffer.from(checkBase64(text), 'base64'), Buffer.from(bytes));
      }),
      { numRuns: 200, seed: 4 },
    );
  });

  test('a data: URL, and whitespace (line-wrapped base64), are accepted', () => {
    assert.equal(checkBase64('data:image/png;base64,iVBORw0KGgo='), 'iVBORw0KGgo=');
    assert.equal(checkBase64('iVBO\nRw0K\r\nGgo='), 'iVBORw0KGgo=');
  });

  test('bad characters, bad lengths, non-strings and non-base64 data URLs are refused', () => {
    throwsCode(() => checkBase64('abc$'), 'IMAGE_BASE64');
    throwsCode(() => checkBase64('abcde'), 'IMAGE_BASE64'); // 5 ≡ 1 (mod 4) cannot be base64
    throwsCode(() => checkBase64('ab=c'), 'IMAGE_BASE64');
    throwsCode(() => checkBase64('a+b_'), 'IMAGE_BASE64'); // mixes the two alphabets
    throwsCode(() => checkBase64(12), 'IMAGE_BASE64');
    throwsCode(() => checkBase64(null), 'IMAGE_BASE64');
    throwsCode(() => checkBase64('data:image/svg+xml,<svg/>'), 'IMAGE_BASE64');
    throwsCode(() => checkBase64(''), 'IMAGE_EMPTY');
    throwsCode(() => checkBase64('  \n '), 'IMAGE_EMPTY');
  });
});

describe('checkPredictRequest', () => {
  const px = () => new Array(PIXEL_COUNT).fill(0);

  test('single inputs and batches', () => {
    const one = checkPredictRequest({ pixels: px() }, 4);
    assert.equal(one.batch, false);
    assert.ok('pixels' in one.inputs[0]);
    const img = checkPredictRequest({ image: 'AAAA' }, 4);
    assert.deepEqual(img.inputs, [{ base64: 'AAAA' }]);
    const many = checkPredictRequest({ batch: [{ pixels: px() }, { image: 'AAAA' }] }, 4);
    assert.equal(many.batch, true);
    assert.equal(many.inputs.length, 2);
  });

  test('property: a batch is accepted up to the limit and refused above it', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 12 }), (n, limit) => {
        const body = { batch: Array.from({ length: n }, () => ({ image: 'AAAA' })) };
        if (n <= limit) assert.equal(checkPredictRequest(body, limit).inputs.length, n);
        else throwsCode(() => checkPredictRequest(body, limit), 'BATCH_TOO_LARGE');
      }),
      { numRuns: 60, seed: 6 },
    );
  });

  test('property: any JSON value is accepted or refused with an ApiError, never anything else', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), (body) => {
        try {
          checkPredictRequest(body, LIMITS.predictBatch);
        } catch (err) {
          assert.ok(err instanceof ApiError, String(err));
        }
      }),
      { numRuns: 300, seed: 7 },
    );
  });

  test('each malformed shape has its own code, and batch items are named by index', () => {
    throwsCode(() => checkPredictRequest(null, 4), 'BAD_REQUEST');
    throwsCode(() => checkPredictRequest([px()], 4), 'BAD_REQUEST');
    throwsCode(() => checkPredictRequest({}, 4), 'INPUT_MISSING');
    throwsCode(() => checkPredictRequest({ pixels: px(), image: 'AAAA' }, 4), 'INPUT_AMBIGUOUS');
    throwsCode(() => checkPredictRequest({ batch: [], image: 'AAAA' }, 4), 'INPUT_AMBIGUOUS');
    throwsCode(() => checkPredictRequest({ batch: 'x' }, 4), 'BAD_REQUEST');
    throwsCode(() => checkPredictRequest({ batch: [] }, 4), 'BATCH_EMPTY');
    throwsCode(() => checkPredictRequest({ batch: [7] }, 4), 'BAD_REQUEST');
    assert.throws(() => checkPredictRequest({ batch: [{ image: 'AAAA' }, { pixels: [1] }] }, 4), /batch\[1\]\.pixels/);
  });
});

describe('checkSubsetQuery', () => {
  const available = (split: 'train' | 'test') => (split === 'train' ? 55_000 : 10_000);

  test('defaults, and values that fit', () => {
    assert.deepEqual(checkSubsetQuery({}, available), { split: 'train', offset: 0, count: 1000 });
    assert.deepEqual(checkSubsetQuery({ split: 'test', offset: '9990', count: '10' }, available), { split: 'test', offset: 9990, count: 10 });
  });

  test('property: an accepted query always fits inside the split and under the limit', () => {
    fc.assert(
      fc.property(fc.constantFrom('train', 'test'), fc.nat(70_000), fc.nat(12_000), (split, offset, count) => {
        try {
          const q = checkSubsetQuery({ split, offset: String(offset), count: String(count) }, available);
          assert.ok(q.count >= 1 && q.count <= LIMITS.subsetCount);
          assert.ok(q.offset + q.count <= available(q.split));
        } catch (err) {
          assert.ok(err instanceof ApiError && err.code === 'BAD_REQUEST', String(err));
          assert.ok(count < 1 || count > LIMITS.subsetCount || offset + count > available(split as 'train'));
        }
      }),
      { numRuns: 300, seed: 8 },
    );
  });
});

describe('architecture', () => {
  test('the lesson network: shapes and parameter counts', () => {
    const layers = architecture(presets.seed.network);
    assert.deepEqual(
      layers.map((l) => [l.name, l.kind, l.outputShape.join('x'), l.parameters]),
      [
        ['conv1', 'conv', '14x14x16', 416],
        ['conv2', 'conv', '7x7x36', 14_436],
        ['fc1', 'dense', '128', 225_920],
        ['fc2', 'logits', '10', 1_290],
        ['softmax', 'softmax', '10', 0],
      ],
    );
  });

  test('property: parameter counts agree with weightSpecs for other networks', () => {
    const net = fc.record({
      conv: fc.array(
        fc.record({
          filters: fc.integer({ min: 1, max: 8 }),
          size: fc.integer({ min: 1, max: 5 }),
          stride: fc.integer({ min: 1, max: 2 }),
          padding: fc.constant('same' as const),
          pool: fc.constantFrom('max' as const, 'none' as const),
          poolSize: fc.constant(2),
          activation: fc.constant('relu' as const),
          order: fc.constant('pool-then-activation' as const),
          dropout: fc.constant(0),
        }),
        { maxLength: 2 },
      ),
      units: fc.array(fc.integer({ min: 1, max: 20 }), { minLength: 1, maxLength: 3 }),
    });
    fc.assert(
      fc.property(net, ({ conv, units }) => {
        const config: NetworkConfig = {
          input: { height: 28, width: 28, channels: 1 },
          conv,
          dense: units.map((u, i) => ({ units: u, activation: i === units.length - 1 ? 'linear' : 'relu', dropout: 0 })),
          weightStddev: 0.05,
          biasInit: 0.05,
        };
        const fromSpecs = weightSpecs(config).reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);
        assert.equal(
          architecture(config).reduce((n, l) => n + l.parameters, 0),
          fromSpecs,
        );
      }),
      { numRuns: 100, seed: 9 },
    );
  });
});

describe('the route schemas and the hand checks agree', () => {
  const ajv = new Ajv({ strict: false });
  for (const schema of sharedSchemas) ajv.addSchema(schema);
  const body = (route: 'POST /api/predict' | 'POST /api/activations') => ajv.compile(routeSchemas[route].body.content['application/json'].schema);
  /** The code a check rejects with, or undefined if it accepts. */
  const refusal = (check: () => unknown): string | undefined => {
    try {
      check();
      return undefined;
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      return err.code;
    }
  };
  const accepts = (check: () => unknown) => refusal(check) === undefined;
  const pixels = fc.oneof(
    fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: PIXEL_COUNT, maxLength: PIXEL_COUNT }),
    fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 3 * 32 * 32, maxLength: 3 * 32 * 32 }),
    fc.array(fc.oneof(fc.double({ min: -0.5, max: 1.5, noNaN: true }), fc.constant(null), fc.string({ maxLength: 2 })), {
      minLength: PIXEL_COUNT - 1,
      maxLength: PIXEL_COUNT + 1,
    }),
    fc.jsonValue({ maxDepth: 1 }),
  );
  const image = fc.oneof(fc.base64String({ minLength: 4, maxLength: 40 }), fc.constant(''), fc.integer(), fc.constant(null));
  const input = fc.oneof(
    fc.record({ pixels }),
    fc.record({ image }),
    fc.record({ pixels, image }),
    fc.dictionary(fc.constantFrom('pixel', 'img', 'x'), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 2 }),
  );
  const request = fc.oneof(
    input,
    fc.record({ batch: fc.array(input, { maxLength: 10 }) }),
    fc.record({ batch: fc.array(input, { maxLength: 3 }), pixels }),
    fc.jsonValue({ maxDepth: 2 }),
  );

  for (const [route, limit] of [
    ['POST /api/predict', LIMITS.predictBatch],
    ['POST /api/activations', LIMITS.activationsBatch],
  ] as const) {
    test(`${route}: the schema accepts exactly the bodies the checks accept (base64 aside)`, () => {
      const valid = body(route);
      fc.assert(
        fc.property(request, (b) => {
          const code = refusal(() => checkPredictRequest(b, limit));
          const what = JSON.stringify(b).slice(0, 200);
          if (code === undefined) assert.ok(valid(b), `the schema refuses what the checks accept: ${what}`);
          // the schema cannot say "base64 of an image", nor the served model's pixel count (784, or 3,072 for
          // a 32x32x3 model): those refusals are left to the checks
          else if (valid(b)) assert.ok(code === 'IMAGE_BASE64' || code === 'PIXELS_LENGTH', `the schema accepts what the checks refuse (${code}): ${what}`);
          if (refusal(() => checkPredictRequest(b, limit, { height: 32, width: 32, channels: 3 })) === undefined) {
            assert.ok(valid(b), `the schema refuses what the checks accept for a colour model: ${what}`);
          }
        }),
        { numRuns: 3000, seed: 15 },
      );
    });
  }

  test('GET /api/mnist-subset: a query the schema rejects is rejected by the check', () => {
    const coercing = new Ajv({ strict: false, coerceTypes: true });
    const valid = coercing.compile(routeSchemas['GET /api/mnist-subset'].querystring);
    const value = fc.oneof(fc.integer({ min: -3, max: 70_000 }).map(String), fc.string({ maxLength: 4 }), fc.constantFrom('train', 'test', '1.5'));
    fc.assert(
      fc.property(fc.dictionary(fc.constantFrom('split', 'offset', 'count'), value, { maxKeys: 3 }), (q) => {
        const copy = Object.fromEntries(Object.entries(q).filter(([, v]) => v !== '')); // as validation.ts: empty = default
        if (!valid(copy))
          assert.equal(
            accepts(() => checkSubsetQuery(q, () => 60_000)),
            false,
            JSON.stringify(q),
          );
      }),
      { numRuns: 2000, seed: 16 },
    );
  });

  test('every error code is in the Error schema', () => {
    const error = sharedSchemas.find((s) => s.$id === 'Error')!;
    assert.deepEqual(
      (error as { properties: { error: { properties: { code: { enum: string[] } } } } }).properties.error.properties.code.enum,
      Object.keys(ERROR_STATUS),
    );
  });
});
