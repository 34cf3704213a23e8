// A stub proxy-wasm host for driving a filter .wasm from Node the way Envoy does, shared by
// bench/hostcalls.mjs (host calls per request) and bench/writer_profile.mjs (the receipt writer).
// Headers, properties, shared data and the shared queue live in plain JS; a host call that hands
// data back allocates in the VM through proxy_on_memory_allocate, as Envoy's does.
import fs from "node:fs";
import path from "node:path";

export const OK = 0, NOT_FOUND = 1, EMPTY = 7, CAS_MISMATCH = 8;
export const benchDir = path.dirname(new URL(import.meta.url).pathname);

// The bench payload `stem` and the headers wrk sends with it.
export function payload(stem) {
  const body = fs.readFileSync(path.join(benchDir, "payloads", `${stem}.json`));
  const headers = [
    [":authority", "127.0.0.1:10000"], [":path", "/mcp"], [":method", "POST"], [":scheme", "http"],
    ["user-agent", "wrk"], ["content-length", String(body.length)], ["x-forwarded-proto", "http"],
    ["x-request-id", "0b0e7d9c-6c55-4c0e-9b7a-3f6f4f0f1e11"],
    ...fs.readFileSync(path.join(benchDir, "payloads", `${stem}.headers`), "utf8").split("\n").filter(Boolean)
      .map((l) => { const i = l.indexOf(":"); return [l.slice(0, i).trim().toLowerCase(), l.slice(i + 1).trim()]; }),
  ];
  return { body, headers };
}

export const respBody = Buffer.from('{"jsonrpc":"2.0","id":3,"result":{"content":[{"text":"echo: hello","type":"text"}],"isError":false}}');
export const respHeaders = [[":status", "200"], ["content-type", "application/json"], ["content-length", String(respBody.length)]];
export const DEFAULT_CONFIG = '{"eras":{"modern":true,"legacy":true},"supported_versions":["2026-07-28"],"max_body_bytes":1048576}';

// One VM of `wasmPath` with root id `rootId`, configured with `pluginConfig`, started.
//   queue: the shared queue's messages (enqueue appends, dequeue takes the first);
//   resolveQueue: whether proxy_resolve_shared_queue finds it (the writer singleton deployed);
//   environ: "NAME=value" strings of the VM's environment;
//   onCall(name): called before every host call of the `env` module;
//   onProperty(key, found), onGive(bytes): observers for host call counting.
export function instance(wasmPath, { rootId = "mcp-warden", pluginConfig = DEFAULT_CONFIG, body, queue = [],
  resolveQueue = true, environ = [], onCall = () => {}, onProperty = () => {}, onGive = () => {} } = {}) {
  let mem, exp, reqH = [], respH = [], metric = 1;
  const config = Buffer.from(pluginConfig);
  const names = {}, counters = {}, shared = new Map(), grpc = { body: Buffer.alloc(0), pending: false };
  const u8 = () => new Uint8Array(mem.buffer), dv = () => new DataView(mem.buffer);
  const str = (p, n) => Buffer.from(u8().subarray(p, p + n)).toString("latin1");
  const give = (bytes, pp, ps) => {
    const n = bytes.length, p = n ? exp.proxy_on_memory_allocate(n) : 0;
    onGive(bytes);
    if (n) u8().set(bytes, p);
    dv().setUint32(pp, p, true); dv().setUint32(ps, n, true); return OK;
  };
  const pairs = (list) => {
    const hdr = Buffer.alloc(4 + list.length * 8), parts = [];
    hdr.writeUInt32LE(list.length, 0);
    list.forEach(([k, v], i) => {
      hdr.writeUInt32LE(Buffer.byteLength(k), 4 + i * 8); hdr.writeUInt32LE(Buffer.byteLength(v), 8 + i * 8);
      parts.push(Buffer.from(k), Buffer.from([0]), Buffer.from(v), Buffer.from([0]));
    });
    return Buffer.concat([hdr, ...parts]);
  };
  const map = (t) => (t === 0 ? reqH : t === 2 ? respH : []);
  const properties = {
    "source\0address": "127.0.0.1:40000", "destination\0address": "127.0.0.1:10000",
    "xds\0cluster_name": "bench_upstream", plugin_root_id: rootId, plugin_name: rootId, plugin_vm_id: rootId,
    "node\0id": "bench",
  };
  const impl = {
    proxy_log: () => OK,
    proxy_get_buffer_bytes: (t, start, max, pp, ps) => {
      const src = t === 0 ? body : t === 1 ? respBody : t === 7 ? config : t === 6 ? grpc.body : null;
      return src ? give(src.subarray(start, start + max), pp, ps) : NOT_FOUND;
    },
    proxy_get_header_map_pairs: (t, pp, ps) => give(pairs(map(t)), pp, ps),
    proxy_get_header_map_value: (t, kp, kn, pp, ps) => {
      const k = str(kp, kn).toLowerCase(), hit = map(t).find(([n]) => n === k);
      return hit ? give(Buffer.from(hit[1]), pp, ps) : NOT_FOUND;
    },
    proxy_replace_header_map_value: (t, kp, kn, vp, vn) => {
      const k = str(kp, kn).toLowerCase(), v = str(vp, vn), m = map(t), i = m.findIndex(([n]) => n === k);
      if (i >= 0) m[i] = [k, v]; else m.push([k, v]);
      return OK;
    },
    proxy_add_header_map_value: (t, kp, kn, vp, vn) => { map(t).push([str(kp, kn), str(vp, vn)]); return OK; },
    proxy_remove_header_map_value: (t, kp, kn) => {
      const k = str(kp, kn).toLowerCase(), m = map(t);
      for (let i = m.length - 1; i >= 0; i--) if (m[i][0] === k) m.splice(i, 1);
      return OK;
    },
    proxy_get_property: (pp, pn, rp, rs) => {
      const key = str(pp, pn), found = key in properties;
      onProperty(key, found);
      return found ? give(Buffer.from(properties[key]), rp, rs) : NOT_FOUND;
    },
    proxy_get_current_time_nanoseconds: (p) => { dv().setBigUint64(p, process.hrtime.bigint() + 1700000000000000000n, true); return OK; },
    proxy_define_metric: (t, np, nn, idp) => { names[metric] = str(np, nn); dv().setUint32(idp, metric++, true); return OK; },
    proxy_increment_metric: (id, d) => { const k = names[id]; counters[k] = (counters[k] ?? 0) + Number(d); return OK; },
    proxy_get_shared_data: (kp, kn, vp, vs, cp) => {
      const e = shared.get(str(kp, kn));
      if (!e) return NOT_FOUND;
      dv().setUint32(cp, e.cas, true);
      return give(e.v, vp, vs);
    },
    proxy_set_shared_data: (kp, kn, vp, vn, cas) => {
      const k = str(kp, kn), e = shared.get(k);
      if (cas && e && e.cas !== cas) return CAS_MISMATCH;
      shared.set(k, { v: Buffer.from(u8().subarray(vp, vp + vn)), cas: (e ? e.cas : 0) + 1 });
      return OK;
    },
    proxy_resolve_shared_queue: (a, b, c, d, idp) => { if (!resolveQueue) return NOT_FOUND; dv().setUint32(idp, 7, true); return OK; },
    proxy_register_shared_queue: (a, b, idp) => { dv().setUint32(idp, 7, true); return OK; },
    proxy_enqueue_shared_queue: (id, p, n) => { queue.push(Buffer.from(u8().subarray(p, p + n))); return OK; },
    proxy_dequeue_shared_queue: (id, pp, ps) => { const m = queue.shift(); return m ? give(m, pp, ps) : EMPTY; },
    proxy_grpc_call: (...args) => { grpc.pending = true; dv().setUint32(args[args.length - 1], 1, true); return OK; },
  };
  const env = Buffer.from(environ.map((e) => `${e}\0`).join(""));
  const wasi = {
    fd_write: (fd, iovs, n, nw) => { dv().setUint32(nw, 0, true); return 0; },
    environ_sizes_get: (a, b) => { dv().setUint32(a, environ.length, true); dv().setUint32(b, env.length, true); return 0; },
    environ_get: (ptrs, buf) => {
      let at = 0;
      environ.forEach((e, i) => { dv().setUint32(ptrs + 4 * i, buf + at, true); at += Buffer.byteLength(e) + 1; });
      u8().set(env, buf);
      return 0;
    },
    random_get: (p, n) => { u8().fill(7, p, p + n); return 0; },
    proc_exit: () => { throw new Error("proc_exit"); },
    clock_time_get: (id, prec, p) => { dv().setBigUint64(p, process.hrtime.bigint(), true); return 0; },
  };
  const module = new WebAssembly.Module(fs.readFileSync(wasmPath));
  const envImports = {}, wasiImports = {};
  for (const imp of WebAssembly.Module.imports(module)) {
    if (imp.module === "env") {
      const f = impl[imp.name] ?? (() => OK);
      envImports[imp.name] = (...a) => { onCall(imp.name); return f(...a); };
    }
    if (imp.module === "wasi_snapshot_preview1") wasiImports[imp.name] = wasi[imp.name] ?? (() => 0);
  }
  exp = new WebAssembly.Instance(module, { env: envImports, wasi_snapshot_preview1: wasiImports }).exports;
  mem = exp.memory;
  (exp._initialize ?? exp._start)?.();
  exp.proxy_on_context_create(1, 0);
  exp.proxy_on_vm_start?.(1, 0);
  if (!exp.proxy_on_configure(1, config.length)) throw new Error(`${rootId}: configuration refused`);
  return {
    exp, grpc, counters,
    headers: () => ({ request: reqH, response: respH }),
    // One request's callbacks, as Envoy makes them; `step(name, f)` runs each (for per-phase counts).
    request(ctx, requestHeaders, step = (name, f) => f()) {
      reqH = requestHeaders.map((x) => [...x]); respH = respHeaders.map((x) => [...x]);
      const actions = {};
      for (const [name, f] of [
        ["context_create", () => exp.proxy_on_context_create(ctx, 1)],
        ["request_headers", () => exp.proxy_on_request_headers(ctx, reqH.length, 0)],
        ["request_body", () => exp.proxy_on_request_body(ctx, body.length, 1)],
        ["response_headers", () => exp.proxy_on_response_headers(ctx, respH.length, 0)],
        ["response_body", () => exp.proxy_on_response_body(ctx, respBody.length, 1)],
        ["log", () => exp.proxy_on_log(ctx)],
        ["done", () => exp.proxy_on_done(ctx)],
        ["delete", () => exp.proxy_on_delete(ctx)],
      ]) {
        const r = step(name, f);
        if (r !== undefined) actions[name] = r;
      }
      return actions;
    },
  };
}
