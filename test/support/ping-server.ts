/**
 * A local stand-in for healthchecks.io: records every request (method, path, query, user agent, body) and
 * answers with a settable status, or never answers (`hang`) to exercise client timeouts.
 */
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedPing {
  method: string;
  path: string;
  query: Record<string, string>;
  userAgent: string | undefined;
  contentType: string | undefined;
  body: string;
}

export interface PingServer {
  /** `http://127.0.0.1:<port>` */
  readonly origin: string;
  readonly requests: RecordedPing[];
  /** Status for the following requests (default 200). */
  respondWith(status: number): void;
  /** When true, following requests are read but never answered. */
  hang(on: boolean): void;
  close(): Promise<void>;
}

export async function startPingServer(): Promise<PingServer> {
  const requests: RecordedPing[] = [];
  let status = 200;
  let hanging = false;
  const server = createServer((req, res) => {
    void readBody(req).then((body) => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      requests.push({
        method: req.method ?? '',
        path: url.pathname,
        query: Object.fromEntries(url.searchParams),
        userAgent: req.headers['user-agent'],
        contentType: req.headers['content-type'],
        body,
      });
      if (hanging) return;
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end(status === 200 ? 'OK' : 'not found');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    requests,
    respondWith(next) {
      status = next;
    },
    hang(on) {
      hanging = on;
    },
    close() {
      server.closeAllConnections();
      return new Promise<void>((resolve, reject) =>
        server.close((error) => (error ? reject(error) : resolve())),
      );
    },
  };
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
