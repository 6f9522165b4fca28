/**
 * A server that does everything /api/predict does except the work: for `npm run loadtest`'s ceiling rows,
 * which show what this machine and the load generator allow at all. It answers POST /api/predict with a
 * constant prediction of the real size.
 *
 *   --bare     node:http, reads the body, answers (the cost of HTTP and of the load generator)
 *   (default)  Fastify, parses the JSON body (the same body limit), answers
 *
 * Prints "convlab serving ... at http://HOST:PORT/" like `convlab serve`, so the load test starts it the same way.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import Fastify from 'fastify';

const { values } = parseArgs({ options: { port: { type: 'string', default: '0' }, bare: { type: 'boolean', default: false } } });
const answer = JSON.stringify({
  class: 7,
  probabilities: [2.1e-7, 3.4e-6, 0.00012, 0.0011, 1.3e-7, 6.4e-6, 1.1e-9, 0.9987, 3.1e-6, 0.00016],
  ms: 0.5,
});
const port = Number(values.port);

if (values.bare) {
  const server = createServer((req, res) => {
    if (req.url === '/healthz') return void res.setHeader('content-type', 'application/json').end('{"tensors":0}');
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      JSON.parse(Buffer.concat(chunks).toString());
      res.setHeader('content-type', 'application/json');
      res.end(answer);
    });
  });
  server.listen(port, '127.0.0.1', () => console.log(`convlab serving (ceiling, node:http) at http://127.0.0.1:${(server.address() as AddressInfo).port}/`));
  process.once('SIGTERM', () => server.close(() => process.exit(0)));
} else {
  const app = Fastify({ logger: false, bodyLimit: 4 * 1024 * 1024 });
  app.get('/healthz', async () => ({ tensors: 0 }));
  app.post('/api/predict', async (request, reply) => {
    void request.body;
    return reply.type('application/json').send(answer);
  });
  await app.listen({ port, host: '127.0.0.1' });
  console.log(`convlab serving (ceiling, Fastify) at http://127.0.0.1:${(app.server.address() as AddressInfo).port}/`);
  process.once('SIGTERM', () => void app.close().then(() => process.exit(0)));
}
