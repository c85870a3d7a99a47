import { request, type IncomingHttpHeaders } from 'node:http';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contentType, parsePort, startServer, type ServerHandle } from '../../src/cli/serve.ts';
import { KilnError } from '../../src/ir/errors.ts';
import { kiln, kilnAsync } from './helpers.ts';

// `kiln serve`: the static server for standalone bundle folders. Its requests go through
// node:http with the path as written, since fetch() would normalise `..` away before sending.

const top = mkdtempSync(join(tmpdir(), 'kiln-serve-'));
const dir = join(top, 'bundle');
const gz = gzipSync(Buffer.from('kiln data\n'.repeat(50)));
const files: Record<string, string | Buffer> = {
  'index.html': '<!doctype html><title>kiln</title>',
  'app.js': 'export {};',
  'kiln-runtime.mjs': 'export const x = 1;',
  'style.css': 'body{}',
  'manifest.json': '{"format":"kiln-standalone"}',
  'step.wasm': Buffer.from([0, 97, 115, 109, 1, 0, 0, 0]),
  'step.wgsl': '@compute @workgroup_size(1) fn main() {}',
  'params.safetensors': Buffer.alloc(16),
  'data/train-images-idx3-ubyte.gz': gz,
  'shot.png': Buffer.from([0x89, 0x50, 0x4e, 0x47]),
  'notes.xyz': 'x',
};

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** One request with `path` sent exactly as given. */
function raw(port: number, path: string, method = 'GET', headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((ok, fail) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => ok({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', fail);
    req.end();
  });
}

let iso: ServerHandle;
let plain: ServerHandle;
beforeAll(async () => {
  for (const [name, body] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), body);
  }
  writeFileSync(join(top, 'secret.txt'), 'outside the bundle');
  symlinkSync(join(top, 'secret.txt'), join(dir, 'link.txt'));
  iso = await startServer(dir, { port: 0 });
  plain = await startServer(dir, { port: 0, isolation: false });
});
afterAll(async () => {
  await iso?.close();
  await plain?.close();
  rmSync(top, { recursive: true, force: true });
});

describe('kiln serve: headers', () => {
  it('every response is cross-origin isolated: files, 404, 405', async () => {
    expect(iso.url).toBe(`http://127.0.0.1:${iso.port}/`);
    expect(iso.port).toBeGreaterThan(0);
    for (const [path, method, status] of [['/', 'GET', 200], ['/app.js', 'HEAD', 200], ['/nope.js', 'GET', 404], ['/', 'POST', 405]] as const) {
      const r = await raw(iso.port, path, method);
      expect(r.status, path).toBe(status);
      expect(r.headers['cross-origin-opener-policy'], path).toBe('same-origin');
      expect(r.headers['cross-origin-embedder-policy'], path).toBe('require-corp');
      expect(r.headers['cross-origin-resource-policy'], path).toBe('same-origin');
      expect(r.headers['cache-control'], path).toBe('no-cache');
    }
  });

  it('isolation off: no COOP/COEP, the rest as before', async () => {
    const r = await raw(plain.port, '/');
    expect(r.status).toBe(200);
    expect(r.headers['cross-origin-opener-policy']).toBeUndefined();
    expect(r.headers['cross-origin-embedder-policy']).toBeUndefined();
    expect(r.headers['cross-origin-resource-policy']).toBe('same-origin');
    expect(r.headers['cache-control']).toBe('no-cache');
  });
});

describe('kiln serve: files', () => {
  it('/ is index.html; each file with its Content-Type and its bytes', async () => {
    const root = await raw(iso.port, '/');
    expect(root.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(root.body.toString()).toBe(files['index.html']);
    const types: Record<string, RegExp> = {
      '/index.html': /^text\/html; charset=utf-8$/,
      '/app.js': /^text\/javascript\b/,
      '/kiln-runtime.mjs': /^text\/javascript\b/,
      '/style.css': /^text\/css\b/,
      '/manifest.json': /^application\/json$/,
      '/step.wasm': /^application\/wasm$/,
      '/step.wgsl': /^text\/plain\b/,
      '/params.safetensors': /^application\/octet-stream$/,
      '/data/train-images-idx3-ubyte.gz': /^application\/gzip$/,
      '/shot.png': /^image\/png$/,
      '/notes.xyz': /^application\/octet-stream$/,
    };
    for (const [path, type] of Object.entries(types)) {
      const r = await raw(iso.port, path);
      expect(r.status, path).toBe(200);
      expect(r.headers['content-type'], path).toMatch(type);
      expect(r.body.equals(Buffer.from(files[path.slice(1)]!)), path).toBe(true);
      expect(Number(r.headers['content-length']), path).toBe(r.body.length);
    }
    expect(contentType('A/B.WASM')).toBe('application/wasm');
  });

  it('.gz goes out as the gzip bytes, with no Content-Encoding, even to a client that accepts gzip', async () => {
    const r = await raw(iso.port, '/data/train-images-idx3-ubyte.gz', 'GET', { 'Accept-Encoding': 'gzip, deflate, br' });
    expect(r.status).toBe(200);
    expect(r.headers['content-encoding']).toBeUndefined();
    expect(r.body.equals(gz)).toBe(true);
  });

  it('HEAD: the headers and length of GET, no body; query strings are ignored', async () => {
    const r = await raw(iso.port, '/params.safetensors?v=2', 'HEAD');
    expect(r.status).toBe(200);
    expect(r.headers['content-length']).toBe('16');
    expect(r.body.length).toBe(0);
  });

  it('a folder without its slash redirects; a folder with no index.html is a 404, not a listing', async () => {
    const r = await raw(iso.port, '/data');
    expect(r.status).toBe(301);
    expect(r.headers.location).toBe('/data/');
    expect((await raw(iso.port, '/data/')).status).toBe(404);
  });

  it('a missing file: 404 with a plain-text body', async () => {
    const r = await raw(iso.port, '/missing.wasm');
    expect(r.status).toBe(404);
    expect(r.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(r.body.toString()).toBe('404 Not Found\n');
  });

  it('methods other than GET and HEAD: 405 with Allow', async () => {
    for (const m of ['POST', 'PUT', 'DELETE', 'OPTIONS']) {
      const r = await raw(iso.port, '/index.html', m);
      expect(r.status, m).toBe(405);
      expect(r.headers.allow, m).toBe('GET, HEAD');
    }
  });
});

describe('kiln serve: nothing outside the folder', () => {
  it('refuses .. however it is spelled, and links that lead out', async () => {
    for (const path of ['/../secret.txt', '/%2e%2e/secret.txt', '/%2E%2E%2fsecret.txt', '/data/../../secret.txt', '/data/%2e%2e/%2e%2e/secret.txt', '/..%5csecret.txt', '/link.txt']) {
      const r = await raw(iso.port, path);
      expect([403, 404], path).toContain(r.status);
      expect(r.body.toString(), path).not.toContain('outside the bundle');
      expect(r.headers['cross-origin-embedder-policy'], path).toBe('require-corp');
    }
    expect((await raw(iso.port, '/../secret.txt')).status).toBe(403);
    expect((await raw(iso.port, '/%2e%2e/secret.txt')).status).toBe(403);
    // Paths that are not paths at all.
    expect((await raw(iso.port, '/%E0%A4%A')).status).toBe(400);
    expect((await raw(iso.port, '/a%00b')).status).toBe(400);
  });
});

describe('kiln serve: what it refuses to start with', () => {
  const rejects = async (p: Promise<unknown>, message: RegExp, hint?: RegExp) => {
    const e = await p.then(() => undefined, (x: unknown) => x);
    expect(e).toBeInstanceOf(KilnError);
    expect((e as KilnError).message).toMatch(message);
    if (hint) expect((e as KilnError).hint).toMatch(hint);
  };

  it('a folder without manifest.json, a missing folder, a file', async () => {
    const empty = join(top, 'empty');
    mkdirSync(empty);
    await rejects(startServer(empty, { port: 0 }), /is not a standalone bundle folder \(it has no manifest\.json\)/, /kiln compile MODEL\.ts --standalone/);
    await rejects(startServer(join(top, 'gone'), { port: 0 }), /no such folder: .*gone/, /kiln compile MODEL\.ts --standalone/);
    await rejects(startServer(join(dir, 'app.js'), { port: 0 }), /is not a folder/);
  });

  it('ports: 0..65535, and one in use names the port', async () => {
    expect(parsePort('0')).toBe(0);
    expect(parsePort('8080')).toBe(8080);
    for (const bad of ['-1', '65536', '80.5', 'http', '']) expect(() => parsePort(bad), bad).toThrow(/--port must be/);
    await rejects(startServer(dir, { port: 70000 }), /--port must be an integer from 0 to 65535/);
    await rejects(startServer(dir, { port: iso.port }), new RegExp(`port ${iso.port} on 127\\.0\\.0\\.1 is already in use`), /--port/);
  });
});

describe('kiln serve (the command)', () => {
  it('a missing folder: the message and hint, exit 1', () => {
    const r = kiln(['serve', join(top, 'no-such-bundle')]);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/^error: no such folder: .*no-such-bundle\n {2}hint: make one with `kiln compile MODEL\.ts --standalone`$/m);
  });

  it('serves until SIGINT, then exits 0', async () => {
    let status = 0;
    const r = await kilnAsync(['serve', dir, '--port', '0'], (line, kill) => {
      const m = /^kiln: serving .* at (http:\/\/127\.0\.0\.1:(\d+)\/) \(cross-origin isolated: wasm threads available\)$/.exec(line);
      if (m) void raw(Number(m[2]), '/manifest.json').then((x) => (status = x.status)).finally(() => kill('SIGINT'));
    });
    expect(r.code, r.stderr).toBe(0);
    expect(status).toBe(200);
  });
});
