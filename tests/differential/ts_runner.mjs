// Shared client half of the TypeScript SDK differential runners (sdk_ts_v1.mjs, sdk_ts_v2.mjs):
// module resolution into the project's .node/node_modules, the `executed` log the servers'
// handlers append to, and the case loop that replays CASES.jsonl against an in-process server
// over node:http, one request at a time, each on its own connection, writing OUT.jsonl
// ({"id", "status", "executed"} + "timeout": true after 5 s, or "error" when Node would not send
// the request, e.g. a header value with CR/LF; TS_DIFF_BODY=1 adds a "body" excerpt).
// Serve mode (`--serve PORT --log FILE`, for tests/e2e/test_sdk_replay.py): the same server
// listens on 127.0.0.1:PORT until killed and appends every executed entry to FILE as one JSON
// line, written synchronously as the handler records it.
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const NODE_MODULES = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '.node', 'node_modules');

/** Import `name` (optionally a subpath file, e.g. 'dist/esm/server/index.js') from .node/node_modules. */
export async function importPkg(name, subpath) {
  const dir = join(NODE_MODULES, ...name.split('/'));
  if (subpath) return import(pathToFileURL(join(dir, subpath)).href);
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  const exp = pkg.exports?.['.'];
  const entry = exp?.import?.default ?? exp?.import ?? exp?.default ?? pkg.module ?? pkg.main ?? 'index.js';
  return import(pathToFileURL(join(dir, entry)).href);
}

// What the server's handlers ran for the current case (cases run strictly one at a time). Only a
// handler still running after its case timed out (flagged "timeout") could land in a later list.
let executed = [];
let serveLog = null; // serve mode: the file every executed entry is appended to
export const record = (entry) => {
  if (serveLog) appendFileSync(serveLog, `${JSON.stringify(entry)}\n`);
  else executed.push(entry);
};

const CASE_TIMEOUT_MS = 5000;
const SHOW_BODY = process.env.TS_DIFF_BODY === '1'; // debugging aid: add "body" (first 400 chars)

// Node writes header strings as latin-1: a value that does not fit goes out as its UTF-8 bytes
// (as sdk_python.py does).
const headerValue = (v) => (/^[\x00-\xff]*$/.test(v) ? v : Buffer.from(v, 'utf8').toString('latin1'));

function sendCase(port, c) {
  return new Promise((resolve) => {
    const body = Buffer.from(c.body_b64 ?? '', 'base64');
    const raw = [];
    const have = new Set();
    for (const [name, value] of c.headers ?? []) {
      raw.push(String(name), headerValue(String(value)));
      have.add(String(name).toLowerCase());
    }
    if (!have.has('host')) raw.unshift('Host', `127.0.0.1:${port}`);
    // A case that declares its own transfer-encoding gets Node's chunk framing instead.
    if (!have.has('content-length') && !have.has('transfer-encoding')) raw.push('Content-Length', String(body.length));
    const out = { status: null };
    let settled = false;
    const done = (extra = {}) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ ...out, ...extra });
    };
    let req;
    const timer = setTimeout(() => {
      done({ timeout: true });
      req?.destroy();
    }, CASE_TIMEOUT_MS);
    try {
      req = httpRequest({ host: '127.0.0.1', port, method: c.http_method ?? 'POST', path: '/mcp', headers: raw, agent: false },
        (res) => {
          out.status = res.statusCode;
          const chunks = [];
          res.on('data', (d) => { if (SHOW_BODY) chunks.push(d); }); // drain JSON / SSE until the end
          res.on('end', () => { if (SHOW_BODY) out.body = Buffer.concat(chunks).toString().slice(0, 400); });
          res.on('end', () => done());
          res.on('error', (e) => done({ error: String(e.message ?? e) }));
        });
      req.on('error', (e) => done({ error: String(e.message ?? e) }));
      req.end(body);
    } catch (e) {
      done({ error: String(e.message ?? e) }); // e.g. a header Node refuses to send
    }
  });
}

/**
 * Replay every case of argv[2] against `server` (a listening-capable node:http server) and write
 * argv[3]. `label` prefixes the stderr summary.
 */
export async function runCases(server, label) {
  const [casesPath, outPath] = process.argv.slice(2);
  if (!casesPath || !outPath) {
    console.error(`usage: ${label} CASES.jsonl OUT.jsonl`);
    process.exit(2);
  }
  const cases = readFileSync(casesPath, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address();
  const lines = [];
  let total = 0;
  let timeouts = 0;
  let notSent = 0;
  const started = Date.now();
  for (const c of cases) {
    executed = [];
    const mine = executed;
    const result = await sendCase(port, c);
    const line = { id: c.id, status: result.status, executed: mine };
    if (result.timeout) { line.timeout = true; timeouts++; }
    if (result.error) { line.error = result.error; notSent++; }
    if (SHOW_BODY) line.body = result.body;
    total += mine.length;
    lines.push(JSON.stringify(line));
  }
  executed = [];
  writeFileSync(outPath, lines.length ? `${lines.join('\n')}\n` : '');
  server.close();
  server.closeAllConnections?.();
  console.error(`${label}: ${cases.length} cases, ${total} executed entries, ${timeouts} timeouts, ` +
    `${notSent} not sent, ${((Date.now() - started) / 1000).toFixed(1)}s`);
}

/**
 * Serve mode when argv is `--serve PORT --log FILE`: listen on 127.0.0.1:PORT until killed,
 * logging every executed entry to FILE; otherwise the case replay (`runCases`).
 */
export async function serveOrRunCases(server, label) {
  const argv = process.argv.slice(2);
  if (argv[0] !== '--serve') return runCases(server, label);
  const port = Number(argv[1]);
  if (argv.length !== 4 || argv[2] !== '--log' || !Number.isInteger(port)) {
    console.error(`usage: ${label} --serve PORT --log FILE`);
    process.exit(2);
  }
  serveLog = argv[3];
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  console.error(`${label}: serving on 127.0.0.1:${port}, executed entries to ${serveLog}`);
  const stop = () => { server.close(); server.closeAllConnections?.(); process.exit(0); };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
