import { createReadStream, existsSync, realpathSync, statSync, type Stats } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, relative, resolve, sep, isAbsolute } from 'node:path';
import { KilnError } from '../ir/errors.ts';
import { nonNegInt } from './options.ts';

// `kiln serve DIR`: a static file server for the folder `kiln compile --standalone` writes. A page
// gets SharedArrayBuffer (and so wasm threads) only when it is cross-origin isolated, which takes
// COOP same-origin and COEP require-corp on the page and on everything it loads; `file://` and
// most static servers give neither, so this one sends them on every response.

export interface ServeOptions {
  /** TCP port; 0 picks a free one (default 8080). */
  port?: number;
  /** Interface to listen on (default 127.0.0.1). */
  host?: string;
  /** Send the COOP/COEP headers that make the page cross-origin isolated (default true). */
  isolation?: boolean;
}

export interface ServerHandle {
  /** http://HOST:PORT/ */
  url: string;
  /** The port it listens on (the one picked, with port 0). */
  port: number;
  host: string;
  /** Stops listening and drops open connections. */
  close(): Promise<void>;
}

export const DEFAULT_PORT = 8080;
export const DEFAULT_HOST = '127.0.0.1';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.htm': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.wasm': 'application/wasm',
  '.wgsl': 'text/plain; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.md': 'text/plain; charset=utf-8',
  '.safetensors': 'application/octet-stream',
  // The page unpacks .gz files itself (DecompressionStream): sent as they are, with no
  // Content-Encoding, so the browser hands over the gzip bytes.
  '.gz': 'application/gzip',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
};

/** The Content-Type a file is served with, from its extension. */
export function contentType(file: string): string {
  return TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream';
}

/** The headers every response carries. */
function baseHeaders(isolation: boolean): OutgoingHttpHeaders {
  return {
    ...(isolation ? { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' } : {}),
    'Cross-Origin-Resource-Policy': 'same-origin',
    'Cache-Control': 'no-cache',
    'X-Content-Type-Options': 'nosniff',
  };
}

/** Checks that `dir` is a standalone bundle folder; returns its real absolute path. */
function bundleRoot(dir: string): string {
  const hint = 'make one with `kiln compile MODEL.ts --standalone`';
  let st: Stats;
  try {
    st = statSync(dir);
  } catch {
    throw new KilnError('usage', `no such folder: ${dir}`, undefined, hint);
  }
  if (!st.isDirectory()) throw new KilnError('usage', `${dir} is not a folder`, undefined, `kiln serve takes the folder that \`kiln compile MODEL.ts --standalone\` writes`);
  if (!existsSync(join(dir, 'manifest.json'))) {
    throw new KilnError('usage', `${dir} is not a standalone bundle folder (it has no manifest.json)`, undefined, hint);
  }
  return realpathSync(dir);
}

function checkPort(port: number): number {
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new KilnError('usage', `--port must be an integer from 0 to 65535; got '${port}'`);
  return port;
}

/** `--port` from the command line: an integer 0..65535. */
export function parsePort(value: string): number {
  const n = nonNegInt('--port', value);
  if (n > 65535) throw new KilnError('usage', `--port must be an integer from 0 to 65535; got '${value}'`, undefined, '--port 0 picks a free port');
  return n;
}

const isLoopback = (host: string) => host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
const urlHost = (host: string) => (host.includes(':') ? `[${host}]` : host);

/**
 * The file a request path names inside `root`, or an HTTP status: 400 for a path that does not
 * decode, 403 for one that leaves the folder (`..`, a link out of it).
 */
async function resolveRequest(root: string, rawUrl: string): Promise<{ file: string; stats: Stats } | { status: number; redirect?: string }> {
  const rawPath = rawUrl.split(/[?#]/, 1)[0]!;
  let path: string;
  try {
    path = decodeURIComponent(rawPath);
  } catch {
    return { status: 400 };
  }
  if (!path.startsWith('/') || path.includes('\0')) return { status: 400 };
  // Refused before any normalisation, so `/../x`, `/a/../../x` and `%2e%2e` never reach the disk.
  const parts = path.split(/[/\\]/);
  if (parts.some((p) => p === '..') || path.includes('\\')) return { status: 403 };
  const file = resolve(root, `.${path}`);
  const rel = relative(root, file);
  if (rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) return { status: 403 };
  let stats: Stats;
  try {
    stats = await stat(file);
  } catch {
    return { status: 404 };
  }
  // A link inside the folder that points out of it is refused like `..`.
  let real: string;
  try {
    real = realpathSync(file);
  } catch {
    return { status: 404 };
  }
  if (real !== root && !real.startsWith(root + sep)) return { status: 403 };
  if (stats.isDirectory()) {
    if (!rawPath.endsWith('/')) return { status: 301, redirect: `${rawPath}/` };
    const index = join(file, 'index.html');
    try {
      const s = await stat(index);
      if (s.isFile()) return { file: index, stats: s };
    } catch {
      // no index.html: a 404, no listing
    }
    return { status: 404 };
  }
  if (!stats.isFile()) return { status: 404 };
  return { file, stats };
}

const REASONS: Record<number, string> = { 301: 'Moved Permanently', 400: 'Bad Request', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed', 500: 'Internal Server Error' };

/**
 * Serves the standalone bundle folder `dir` over HTTP, with the cross-origin isolation headers
 * unless `isolation` is false. Resolves once it listens; throws KilnError for a folder that is not
 * a bundle, a bad port or one in use.
 */
export async function startServer(dir: string, opts: ServeOptions = {}): Promise<ServerHandle> {
  const root = bundleRoot(dir);
  const host = opts.host ?? DEFAULT_HOST;
  const wanted = checkPort(opts.port ?? DEFAULT_PORT);
  const isolation = opts.isolation ?? true;
  const headers = baseHeaders(isolation);

  const plain = (req: IncomingMessage, res: ServerResponse, status: number, extra: OutgoingHttpHeaders = {}) => {
    const body = `${status} ${REASONS[status] ?? ''}\n`;
    res.writeHead(status, { ...headers, 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body), ...extra });
    res.end(req.method === 'HEAD' ? undefined : body);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return plain(req, res, 405, { Allow: 'GET, HEAD' });
    const found = await resolveRequest(root, req.url ?? '/');
    if ('status' in found) return plain(req, res, found.status, found.redirect ? { Location: found.redirect } : {});
    const { file, stats } = found;
    const etag = `W/"${stats.size.toString(16)}-${Math.floor(stats.mtimeMs).toString(16)}"`;
    const fileHeaders: OutgoingHttpHeaders = { ...headers, 'Content-Type': contentType(file), 'Content-Length': stats.size, ETag: etag, 'Last-Modified': stats.mtime.toUTCString() };
    if (req.headers['if-none-match'] === etag) {
      res.writeHead(304, { ...headers, ETag: etag });
      return res.end();
    }
    if (req.method === 'HEAD') {
      res.writeHead(200, fileHeaders);
      return res.end();
    }
    const stream = createReadStream(file);
    stream.once('error', () => {
      if (!res.headersSent) plain(req, res, 500);
      else res.destroy();
    });
    stream.once('open', () => {
      res.writeHead(200, fileHeaders);
      stream.pipe(res);
    });
  };

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) plain(req, res, 500);
      else res.destroy();
    });
  });

  await new Promise<void>((ok, fail) => {
    const onError = (e: NodeJS.ErrnoException) => {
      server.off('listening', onListening);
      if (e.code === 'EADDRINUSE') fail(new KilnError('usage', `port ${wanted} on ${host} is already in use`, undefined, `pass --port with another port, or --port 0 for a free one`));
      else if (e.code === 'EACCES') fail(new KilnError('usage', `no permission to listen on port ${wanted} on ${host}`, undefined, 'ports below 1024 need privileges; pass --port 8080 or another high port'));
      else if (e.code === 'EADDRNOTAVAIL' || e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN') fail(new KilnError('usage', `cannot listen on host '${host}' (${e.code})`, undefined, `pass --host with an address of this machine, e.g. ${DEFAULT_HOST}`));
      else fail(e);
    };
    const onListening = () => {
      server.off('error', onError);
      ok();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(wanted, host);
  });

  const port = (server.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${urlHost(host)}:${port}/`,
    port,
    host,
    close() {
      closing ??= new Promise<void>((ok) => {
        server.close(() => ok());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

export interface ServeFlags {
  port?: string;
  host?: string;
  isolation: boolean;
}

/** `kiln serve DIR`: serves the bundle folder until SIGINT or SIGTERM. */
export async function serveCommand(dir: string, flags: ServeFlags): Promise<void> {
  const port = flags.port === undefined ? DEFAULT_PORT : parsePort(flags.port);
  const server = await startServer(dir, { port, host: flags.host ?? DEFAULT_HOST, isolation: flags.isolation });
  const how = flags.isolation ? 'cross-origin isolated: wasm threads available' : 'not cross-origin isolated, --no-isolation: the page falls back to one wasm thread';
  process.stderr.write(`kiln: serving ${dir} at ${server.url} (${how})\n`);
  if (flags.isolation && !isLoopback(server.host)) {
    // Browsers treat only localhost (or https) as a secure context, and isolation needs one.
    process.stderr.write(`kiln: note: at an address other than localhost the browser will not isolate the page (no secure context); open http://localhost:${server.port}/ on this machine for wasm threads\n`);
  }
  process.stderr.write('kiln: press Ctrl-C to stop\n');
  await new Promise<void>((ok) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      ok();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  await server.close();
}
