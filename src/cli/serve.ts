import type { AddressInfo } from 'node:net';
import type { BackendName } from '../backend.ts';
import { UsageError } from '../errors.ts';
import { buildServer } from '../serve/server.ts';
import { ensureWebBuild } from '../serve/web-build.ts';

export interface ServeFlags {
  model: string;
  port: number;
  host: string;
  /** False with --no-page: the API only. */
  page: boolean;
  rebuild?: boolean;
  backend: BackendName;
}

/** `convlab serve`: build the page if needed, load the model, listen, and run until SIGINT or SIGTERM. */
export async function serveCommand(flags: ServeFlags): Promise<void> {
  const log = (line: string) => console.log(line);
  const webDir = flags.page ? (await ensureWebBuild({ force: flags.rebuild, log })).dir : undefined;
  const app = await buildServer({ modelDir: flags.model, webDir, log, backend: flags.backend });
  try {
    await app.listen({ port: flags.port, host: flags.host });
  } catch (err) {
    await app.close();
    const code = (err as NodeJS.ErrnoException)?.code;
    if (code === 'EADDRINUSE') {
      throw new UsageError('PORT_IN_USE', `port ${flags.port} on ${flags.host} is in use: stop the other server or pass --port with another number (0 = any free port)`);
    }
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') {
      throw new UsageError('BAD_HOST', `cannot listen on ${flags.host}: no such local address; use 127.0.0.1, or 0.0.0.0 for every interface`);
    }
    throw err;
  }
  const { port } = app.server.address() as AddressInfo;
  const host = flags.host.includes(':') ? `[${flags.host}]` : flags.host;
  log(`convlab serving ${flags.model} on ${flags.backend} at http://${host}:${port}/${flags.page ? '' : ' (API only)'} — API described at /api/openapi.json; Ctrl+C stops`);

  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  log('stopping…');
  await app.close();
}
