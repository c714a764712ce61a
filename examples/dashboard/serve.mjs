#!/usr/bin/env node
// A tiny static server for the dashboard (no dependencies): serves the
// dashboard and the `mqseal` npm package from this checkout, on 127.0.0.1.
//
//   node examples/dashboard/serve.mjs [port]     (default 8000; 0 = any free port)
//
// Then open http://127.0.0.1:<port>/ . Only GET/HEAD, only files under
// examples/dashboard/ and bindings/wasm/npm/ (the package and its
// node_modules/mqtt browser bundle).
import { createReadStream, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const allowed = ['examples/dashboard/', 'bindings/wasm/npm/'];
const types = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

/** Starts the server; resolves `{ server, port, url }`. */
export function startServer(port = 8000, host = '127.0.0.1') {
  const server = createServer((req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405).end();
      return;
    }
    const url = new URL(req.url, 'http://localhost');
    if (url.pathname === '/') {
      res.writeHead(302, { location: '/examples/dashboard/' }).end();
      return;
    }
    let rel;
    try {
      rel = normalize(decodeURIComponent(url.pathname)).replace(/^[/\\]+/, '');
    } catch {
      res.writeHead(400).end();
      return;
    }
    if (rel.endsWith(sep) || rel === 'examples/dashboard') rel = join(rel, 'index.html');
    const ok = !rel.split(/[/\\]/).includes('..') && allowed.some((p) => rel.startsWith(p));
    let st;
    try {
      st = ok ? statSync(join(root, rel)) : null;
    } catch {
      st = null;
    }
    if (!st || !st.isFile()) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    res.writeHead(200, {
      'content-type': types[extname(rel)] ?? 'application/octet-stream',
      'content-length': st.size,
      'cache-control': 'no-store',
    });
    if (req.method === 'HEAD') res.end();
    else createReadStream(join(root, rel)).pipe(res);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const { port: p } = server.address();
      resolve({ server, port: p, url: `http://${host}:${p}/examples/dashboard/` });
    });
  });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const port = Number(process.argv[2] ?? 8000);
  const { url } = await startServer(port);
  console.log(`mqseal dashboard: ${url}`);
}
