/**
 * `GET /api/model.onnx[?layout=nchw|nhwc]`: the served model as an ONNX file (see src/export/onnx.ts), made
 * from the weights in memory on the first request for each layout and kept. A Fastify plugin, registered by
 * server.ts with `app.register(onnxRoute, { model })`.
 */
import type { FastifyInstance } from 'fastify';
import type * as tf from '@tensorflow/tfjs';
import { onnxFromTensors } from '../export/file.ts';
import { DEFAULT_LAYOUT, onnxLayouts, type OnnxLayout } from '../export/onnx.ts';
import type { NetworkConfig } from '../model/config.ts';
import { ApiError } from './schema.ts';

/** Where the page and `/api/model` point for the download. */
export const ONNX_ROUTE = '/api/model.onnx';
/** ONNX files are binary protobuf with no registered media type of their own: a generic binary download. */
export const ONNX_MEDIA_TYPE = 'application/octet-stream';

export interface OnnxRouteOptions {
  model: { net: NetworkConfig; params: ReadonlyMap<string, tf.Tensor>; metadata: Record<string, unknown> };
}

export async function onnxRoute(app: FastifyInstance, options: OnnxRouteOptions): Promise<void> {
  const { model } = options;
  const cache = new Map<OnnxLayout, Buffer>();
  const schema = {
    summary: 'The model as an ONNX file (opset 13)',
    description: '`?layout=nchw` (default) or `?layout=nhwc`; answered as an attachment named model.onnx',
    produces: [ONNX_MEDIA_TYPE],
  };
  app.get(ONNX_ROUTE, { schema }, async (request, reply) => {
    const query = (request.query ?? {}) as Record<string, unknown>;
    const layout = query.layout ?? DEFAULT_LAYOUT;
    if (typeof layout !== 'string' || !(onnxLayouts as readonly string[]).includes(layout)) {
      throw new ApiError(
        'BAD_REQUEST',
        `layout=${String(layout)}: expected ${onnxLayouts.join(' or ')} (the input's dimension order; default ${DEFAULT_LAYOUT})`,
      );
    }
    let bytes = cache.get(layout as OnnxLayout);
    if (bytes === undefined) {
      const encoded = onnxFromTensors(model.net, model.params, model.metadata, layout as OnnxLayout);
      bytes = Buffer.from(encoded.buffer, encoded.byteOffset, encoded.byteLength);
      cache.set(layout as OnnxLayout, bytes);
    }
    const name = layout === DEFAULT_LAYOUT ? 'model.onnx' : `model-${layout}.onnx`;
    void reply.type(ONNX_MEDIA_TYPE).header('content-disposition', `attachment; filename="${name}"`).header('cache-control', 'no-cache');
    return bytes;
  });
}
