// Counts the proxy-wasm host calls a filter .wasm makes per request, by driving it through the
// ABI the way Envoy does (context create, request headers, request body, response headers,
// response body, log, done, delete) with a counting stub host. No Envoy, no timing: just "how many
// calls of which kind, and how many of them hand data back" (each of those makes the host call
// back into the VM through proxy_on_memory_allocate).
//
//   node bench/hostcalls.mjs <filter.wasm> <payload stem> [plugin configuration JSON] [--writer]
//   node bench/hostcalls.mjs target/wasm32-wasip1/release/mcp_warden.wasm modern-tools_call-1k
//
// --loop=N: afterwards run N more requests and print the mean wall time per request (filter code
// in Node's V8 plus this stub host); with `node --cpu-prof` and an unstripped build this gives a
// per-function profile of the filter (see bench/README.md).
// --writer: the receipt queue resolves (as with the writer singleton deployed); otherwise
// proxy_resolve_shared_queue answers NotFound like in envoy/bench-warden.yaml.
import fs from "node:fs";
import path from "node:path";

const args = process.argv.slice(2).filter((a) => !a.startsWith("--"));
const writer = process.argv.includes("--writer");
const loopArg = process.argv.find((a) => a.startsWith("--loop="));
const loops = loopArg ? Number(loopArg.slice(7)) : 0;
const [wasmPath, stem, configArg] = args;
const benchDir = path.dirname(new URL(import.meta.url).pathname);
const body = fs.readFileSync(path.join(benchDir, "payloads", `${stem}.json`));
const reqHeaders = [
  [":authority", "127.0.0.1:10000"], [":path", "/mcp"], [":method", "POST"], [":scheme", "http"],
  ["user-agent", "wrk"], ["content-length", String(body.length)], ["x-forwarded-proto", "http"],
  ["x-request-id", "0b0e7d9c-6c55-4c0e-9b7a-3f6f4f0f1e11"],
  ...fs.readFileSync(path.join(benchDir, "payloads", `${stem}.headers`), "utf8").split("\n").filter(Boolean)
    .map((l) => { const i = l.indexOf(":"); return [l.slice(0, i).trim().toLowerCase(), l.slice(i + 1).trim()]; }),
];
const respBody = Buffer.from('{"jsonrpc":"2.0","id":3,"result":{"content":[{"text":"echo: hello","type":"text"}],"isError":false}}');
const respHeaders = [[":status", "200"], ["content-type", "application/json"], ["content-length", String(respBody.length)]];
const pluginConfig = Buffer.from(configArg ?? '{"eras":{"modern":true,"legacy":true},"supported_versions":["2026-07-28"],"max_body_bytes":1048576}');
const properties = {
  "source\0address": "127.0.0.1:40000", "destination\0address": "127.0.0.1:10000",
  "xds\0cluster_name": "bench_upstream", "plugin_root_id": "mcp-warden", "plugin_name": "mcp-warden",
  "plugin_vm_id": "mcp-warden",
};

const OK = 0, NOT_FOUND = 1;
let mem, exp;
const counts = {};
let allocs = 0, allocBytes = 0, phase = "setup";
const perPhase = {};
const u8 = () => new Uint8Array(mem.buffer);
const dv = () => new DataView(mem.buffer);
const str = (p, n) => Buffer.from(u8().subarray(p, p + n)).toString("latin1");
function give(bytes, pp, ps) {  // host -> VM data: allocate in the VM, copy, write ptr/size
  const n = bytes.length;
  const p = n ? exp.proxy_on_memory_allocate(n) : 0;
  allocs++; allocBytes += n;
  if (n) u8().set(bytes, p);
  dv().setUint32(pp, p, true);
  dv().setUint32(ps, n, true);
  return OK;
}
function pairs(list) {
  const parts = [];
  const hdr = Buffer.alloc(4 + list.length * 8);
  hdr.writeUInt32LE(list.length, 0);
  list.forEach(([k, v], i) => { hdr.writeUInt32LE(Buffer.byteLength(k), 4 + i * 8); hdr.writeUInt32LE(Buffer.byteLength(v), 8 + i * 8); });
  for (const [k, v] of list) parts.push(Buffer.from(k), Buffer.from([0]), Buffer.from(v), Buffer.from([0]));
  return Buffer.concat([hdr, ...parts]);
}
let reqH = [], respH = [];
const map = (t) => (t === 0 ? reqH : t === 2 ? respH : []);
const shared = new Map();
let propsRead = [];
let metricId = 1;
const impl = {
  proxy_log: () => OK,
  proxy_get_buffer_bytes: (t, start, max, pp, ps) => {
    const src = t === 0 ? body : t === 1 ? respBody : t === 7 ? pluginConfig : t === 6 ? Buffer.alloc(0) : null;
    if (!src) return NOT_FOUND;
    return give(src.subarray(start, start + max), pp, ps);
  },
  proxy_get_header_map_pairs: (t, pp, ps) => give(pairs(map(t)), pp, ps),
  proxy_get_header_map_value: (t, kp, kn, pp, ps) => {
    const k = str(kp, kn).toLowerCase();
    const hit = map(t).find(([n]) => n === k);
    return hit ? give(Buffer.from(hit[1]), pp, ps) : NOT_FOUND;
  },
  proxy_replace_header_map_value: (t, kp, kn, vp, vn) => {
    const k = str(kp, kn).toLowerCase(), v = str(vp, vn), m = map(t);
    const i = m.findIndex(([n]) => n === k);
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
    const key = str(pp, pn);
    if (phase !== "setup") propsRead.push(key.replaceAll("\0", ".") + (key in properties ? "" : " (not found)"));
    return key in properties ? give(Buffer.from(properties[key]), rp, rs) : NOT_FOUND;
  },
  proxy_get_current_time_nanoseconds: (p) => { dv().setBigUint64(p, process.hrtime.bigint() + 1700000000000000000n, true); return OK; },
  proxy_define_metric: (t, np, nn, idp) => { dv().setUint32(idp, metricId++, true); return OK; },
  proxy_get_shared_data: (kp, kn, vp, vs, cp) => {
    const e = shared.get(str(kp, kn));
    if (!e) return NOT_FOUND;
    dv().setUint32(cp, e.cas, true);
    return give(e.v, vp, vs);
  },
  proxy_set_shared_data: (kp, kn, vp, vn, cas) => {
    const k = str(kp, kn), e = shared.get(k);
    if (cas && e && e.cas !== cas) return 8; // CasMismatch
    shared.set(k, { v: Buffer.from(u8().subarray(vp, vp + vn)), cas: (e ? e.cas : 0) + 1 });
    return OK;
  },
  proxy_resolve_shared_queue: (a, b, c, d, idp) => { if (!writer) return NOT_FOUND; dv().setUint32(idp, 7, true); return OK; },
  proxy_register_shared_queue: (a, b, idp) => { dv().setUint32(idp, 7, true); return OK; },
  proxy_enqueue_shared_queue: () => OK,
};
const env = {};
const wasi = {
  fd_write: (fd, iovs, n, nw) => { dv().setUint32(nw, 0, true); return 0; },
  environ_sizes_get: (a, b) => { dv().setUint32(a, 0, true); dv().setUint32(b, 0, true); return 0; },
  environ_get: () => 0, random_get: (p, n) => { u8().fill(7, p, p + n); return 0; }, proc_exit: () => { throw new Error("proc_exit"); },
  clock_time_get: (id, prec, p) => { dv().setBigUint64(p, process.hrtime.bigint(), true); return 0; },
};
const module = new WebAssembly.Module(fs.readFileSync(wasmPath));
for (const imp of WebAssembly.Module.imports(module)) {
  if (imp.module !== "env") continue;
  const f = impl[imp.name] ?? (() => OK);
  env[imp.name] = (...a) => {
    counts[phase] ??= {};
    counts[phase][imp.name] = (counts[phase][imp.name] ?? 0) + 1;
    return f(...a);
  };
}
const wasiImports = {};
for (const imp of WebAssembly.Module.imports(module)) if (imp.module === "wasi_snapshot_preview1") wasiImports[imp.name] = wasi[imp.name] ?? (() => 0);
const inst = new WebAssembly.Instance(module, { env, wasi_snapshot_preview1: wasiImports });
exp = inst.exports; mem = exp.memory;
(exp._initialize ?? exp._start)?.();
exp.proxy_on_context_create(1, 0);
exp.proxy_on_vm_start?.(1, 0);
if (!exp.proxy_on_configure(1, pluginConfig.length)) throw new Error("configuration refused");

function request(ctx) {
  reqH = reqHeaders.map((x) => [...x]); respH = respHeaders.map((x) => [...x]);
  const steps = [
    ["context_create", () => exp.proxy_on_context_create(ctx, 1)],
    ["request_headers", () => exp.proxy_on_request_headers(ctx, reqH.length, 0)],
    ["request_body", () => exp.proxy_on_request_body(ctx, body.length, 1)],
    ["response_headers", () => exp.proxy_on_response_headers(ctx, respH.length, 0)],
    ["response_body", () => exp.proxy_on_response_body(ctx, respBody.length, 1)],
    ["log", () => exp.proxy_on_log(ctx)],
    ["done", () => exp.proxy_on_done(ctx)],
    ["delete", () => exp.proxy_on_delete(ctx)],
  ];
  const actions = {};
  for (const [name, f] of steps) { phase = name; const r = f(); if (r !== undefined) actions[name] = r; }
  phase = "idle";
  return actions;
}
request(2); // warm-up: metric definitions, queue resolution, caches
for (const k of Object.keys(counts)) delete counts[k];
allocs = 0; allocBytes = 0; propsRead = [];
const actions = request(3);
const upstreamSaw = Object.fromEntries(reqH.filter(([k]) => k.startsWith("mcp-") || k.startsWith("x-warden")));

let total = 0;
const byCall = {};
for (const [ph, calls] of Object.entries(counts)) for (const [c, n] of Object.entries(calls)) { total += n; byCall[c] = (byCall[c] ?? 0) + n; }
console.log(JSON.stringify({
  wasm: wasmPath, payload: stem, writer, vm_entries_per_request: 8, host_calls_per_request: total,
  host_to_vm_allocations: allocs, bytes_copied_into_vm: allocBytes, by_call: byCall, by_callback: counts,
  properties_read: propsRead, actions, headers_forwarded: upstreamSaw,
}, null, 2));

if (loops > 0) {
  const t0 = process.hrtime.bigint();
  const c0 = process.cpuUsage();
  for (let i = 0; i < loops; i++) request(10 + i);
  const ns = Number(process.hrtime.bigint() - t0) / loops;
  const c1 = process.cpuUsage(c0);
  console.log(JSON.stringify({ loops, wall_us_per_request: +(ns / 1000).toFixed(3),
    cpu_us_per_request: +((c1.user + c1.system) / loops).toFixed(3) }));
}
