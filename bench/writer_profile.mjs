// Drives the receipt writer VM of a filter .wasm through the proxy-wasm ABI the way Envoy does
// (the writer root: VM start, configure, one queue callback per enqueued exchange, gRPC answers
// to its exports) against a stub host, on exchanges a producer instance of the same .wasm
// enqueued for the bench payload. Prints the mean wall and CPU time per receipt in Node's V8;
// under `node --cpu-prof` with an unstripped build, bench/cpuprofile_top.mjs gives the writer's
// per-function profile (bench/README.md).
//
//   node bench/writer_profile.mjs <filter.wasm> <payload stem> [N=2000] [worker configuration JSON]
//   WRITER_CPUPROF=/tmp/w.cpuprofile node --no-liftoff bench/writer_profile.mjs <unstripped.wasm> modern-tools_call-1k 5000
import fs from "node:fs";
import path from "node:path";
import inspector from "node:inspector/promises";

const [wasmPath, stem, nArg, configArg] = process.argv.slice(2);
const N = Number(nArg ?? 2000);
const benchDir = path.dirname(new URL(import.meta.url).pathname);
const body = fs.readFileSync(path.join(benchDir, "payloads", `${stem}.json`));
const reqHeaders = [
  [":authority", "127.0.0.1:10000"], [":path", "/mcp"], [":method", "POST"], [":scheme", "http"],
  ["user-agent", "wrk"], ["content-length", String(body.length)], ["x-forwarded-proto", "http"],
  ...fs.readFileSync(path.join(benchDir, "payloads", `${stem}.headers`), "utf8").split("\n").filter(Boolean)
    .map((l) => { const i = l.indexOf(":"); return [l.slice(0, i).trim().toLowerCase(), l.slice(i + 1).trim()]; }),
];
const respBody = Buffer.from('{"jsonrpc":"2.0","id":3,"result":{"content":[{"text":"echo: hello","type":"text"}],"isError":false}}');
const respHeaders = [[":status", "200"], ["content-type", "application/json"], ["content-length", String(respBody.length)]];
const KEY = "213e37ab" + "0".repeat(56);
const OK = 0, NOT_FOUND = 1, EMPTY = 7;

function instance(rootId, pluginConfig, queue) {
  let mem, exp, reqH = [], respH = [], metric = 1, token = 1; const names = {}, counters = {};
  const u8 = () => new Uint8Array(mem.buffer), dv = () => new DataView(mem.buffer);
  const str = (p, n) => Buffer.from(u8().subarray(p, p + n)).toString("latin1");
  const give = (bytes, pp, ps) => {
    const p = bytes.length ? exp.proxy_on_memory_allocate(bytes.length) : 0;
    if (bytes.length) u8().set(bytes, p);
    dv().setUint32(pp, p, true); dv().setUint32(ps, bytes.length, true); return OK;
  };
  const pairs = (list) => {
    const hdr = Buffer.alloc(4 + list.length * 8); const parts = [];
    hdr.writeUInt32LE(list.length, 0);
    list.forEach(([k, v], i) => { hdr.writeUInt32LE(Buffer.byteLength(k), 4 + i * 8); hdr.writeUInt32LE(Buffer.byteLength(v), 8 + i * 8); parts.push(Buffer.from(k), Buffer.from([0]), Buffer.from(v), Buffer.from([0])); });
    return Buffer.concat([hdr, ...parts]);
  };
  const map = (t) => (t === 0 ? reqH : t === 2 ? respH : []);
  const props = { "source\0address": "127.0.0.1:40000", "xds\0cluster_name": "bench_upstream", plugin_root_id: rootId,
    plugin_name: rootId, plugin_vm_id: rootId, "node\0id": "bench" };
  const shared = new Map();
  const grpc = { body: Buffer.alloc(0) };
  const impl = {
    proxy_get_buffer_bytes: (t, s, m, pp, ps) => {
      const src = t === 0 ? body : t === 1 ? respBody : t === 7 ? pluginConfig : t === 6 ? grpc.body : null;
      return src ? give(src.subarray(s, s + m), pp, ps) : NOT_FOUND;
    },
    proxy_get_header_map_pairs: (t, pp, ps) => give(pairs(map(t)), pp, ps),
    proxy_get_header_map_value: (t, kp, kn, pp, ps) => { const h = map(t).find(([n]) => n === str(kp, kn)); return h ? give(Buffer.from(h[1]), pp, ps) : NOT_FOUND; },
    proxy_replace_header_map_value: (t, kp, kn, vp, vn) => { const k = str(kp, kn), m = map(t), i = m.findIndex(([n]) => n === k); if (i >= 0) m[i] = [k, str(vp, vn)]; else m.push([k, str(vp, vn)]); return OK; },
    proxy_remove_header_map_value: (t, kp, kn) => { const k = str(kp, kn), m = map(t); for (let i = m.length - 1; i >= 0; i--) if (m[i][0] === k) m.splice(i, 1); return OK; },
    proxy_get_property: (pp, pn, rp, rs) => { const k = str(pp, pn); return k in props ? give(Buffer.from(props[k]), rp, rs) : NOT_FOUND; },
    proxy_get_current_time_nanoseconds: (p) => { dv().setBigUint64(p, process.hrtime.bigint() + 1700000000000000000n, true); return OK; },
    proxy_define_metric: (t, np, nn, idp) => { names[metric] = str(np, nn); dv().setUint32(idp, metric++, true); return OK; },
    proxy_increment_metric: (id, d) => { const k = names[id]; counters[k] = (counters[k] ?? 0) + Number(d); return OK; },
    proxy_get_shared_data: (kp, kn, vp, vs, cp) => { const e = shared.get(str(kp, kn)); if (!e) return NOT_FOUND; dv().setUint32(cp, e.cas, true); return give(e.v, vp, vs); },
    proxy_set_shared_data: (kp, kn, vp, vn, cas) => { const k = str(kp, kn), e = shared.get(k); if (cas && e && e.cas !== cas) return 8; shared.set(k, { v: Buffer.from(u8().subarray(vp, vp + vn)), cas: (e ? e.cas : 0) + 1 }); return OK; },
    proxy_resolve_shared_queue: (a, b, c, d, idp) => { dv().setUint32(idp, 7, true); return OK; },
    proxy_register_shared_queue: (a, b, idp) => { dv().setUint32(idp, 7, true); return OK; },
    proxy_enqueue_shared_queue: (id, p, n) => { queue.push(Buffer.from(u8().subarray(p, p + n))); return OK; },
    proxy_dequeue_shared_queue: (id, pp, ps) => { const m = queue.shift(); return m ? give(m, pp, ps) : EMPTY; },
    proxy_grpc_call: (a, b, c, d, e, f, g, h, i, j, k, tp) => { grpc.pending = true; dv().setUint32(tp, token, true); return OK; },
  };
  const environ = Buffer.from(`WARDEN_SIGNING_KEY=${KEY}\0`);
  const wasi = {
    fd_write: (fd, iovs, n, nw) => { dv().setUint32(nw, 0, true); return 0; },
    environ_sizes_get: (a, b) => { dv().setUint32(a, 1, true); dv().setUint32(b, environ.length, true); return 0; },
    environ_get: (ptrs, buf) => { dv().setUint32(ptrs, buf, true); u8().set(environ, buf); return 0; },
    random_get: (p, n) => { u8().fill(7, p, p + n); return 0; }, proc_exit: () => { throw new Error("proc_exit"); },
    clock_time_get: (id, prec, p) => { dv().setBigUint64(p, process.hrtime.bigint(), true); return 0; },
  };
  const module = new WebAssembly.Module(fs.readFileSync(wasmPath));
  const env = {}, wasiImports = {};
  for (const imp of WebAssembly.Module.imports(module)) {
    if (imp.module === "env") env[imp.name] = impl[imp.name] ?? (() => OK);
    if (imp.module === "wasi_snapshot_preview1") wasiImports[imp.name] = wasi[imp.name] ?? (() => 0);
  }
  const inst = new WebAssembly.Instance(module, { env, wasi_snapshot_preview1: wasiImports });
  exp = inst.exports; mem = exp.memory;
  (exp._initialize ?? exp._start)?.();
  exp.proxy_on_context_create(1, 0);
  exp.proxy_on_vm_start?.(1, 0);
  if (!exp.proxy_on_configure(1, pluginConfig.length)) throw new Error(`${rootId}: configuration refused`);
  return {
    exp, grpc, counters,
    request(ctx) {
      reqH = reqHeaders.map((x) => [...x]); respH = respHeaders.map((x) => [...x]);
      exp.proxy_on_context_create(ctx, 1); exp.proxy_on_request_headers(ctx, reqH.length, 0);
      exp.proxy_on_request_body(ctx, body.length, 1); exp.proxy_on_response_headers(ctx, respH.length, 0);
      exp.proxy_on_response_body(ctx, respBody.length, 1); exp.proxy_on_log(ctx); exp.proxy_on_done(ctx); exp.proxy_on_delete(ctx);
    },
  };
}

const queue = [];
const producer = instance("mcp-warden", Buffer.from(configArg ?? '{"eras":{"modern":true,"legacy":true},"supported_versions":["2026-07-28"],"max_body_bytes":1048576}'), queue);
for (let i = 0; i < N + 200; i++) producer.request(10 + i);
if (!queue.length) throw new Error("the producer enqueued nothing");
const messages = queue.splice(0);
const writer = instance("mcp-warden-writer", Buffer.from('{"sink_cluster": "receipt_sink"}'), queue);
const run = (msgs) => {
  for (const m of msgs) {
    queue.push(m);
    writer.exp.proxy_on_queue_ready(1, 7);
    if (writer.grpc.pending) { writer.grpc.pending = false; writer.exp.proxy_on_grpc_receive?.(1, 1, 0); }
  }
};
run(messages.slice(0, 200)); // warm-up: V8 tier-up
// WRITER_CPUPROF=FILE: a V8 CPU profile of the timed writer part only (not of the producer).
const profFile = process.env.WRITER_CPUPROF;
const session = profFile ? new inspector.Session() : null;
if (session) { session.connect(); await session.post("Profiler.enable"); await session.post("Profiler.setSamplingInterval", { interval: 50 }); await session.post("Profiler.start"); }
const t0 = process.hrtime.bigint(), c0 = process.cpuUsage();
run(messages.slice(200));
const ns = Number(process.hrtime.bigint() - t0) / N, c1 = process.cpuUsage(c0);
if (session) { const { profile } = await session.post("Profiler.stop"); fs.writeFileSync(profFile, JSON.stringify(profile)); }
console.log(JSON.stringify({ wasm: wasmPath, payload: stem, receipts: N, exchange_bytes: messages[0].length,
  wall_us_per_receipt: +(ns / 1000).toFixed(2), cpu_us_per_receipt: +((c1.user + c1.system) / N).toFixed(2),
  writer_counters: Object.fromEntries(Object.entries(writer.counters).filter(([k]) => k.includes("receipt"))) }));
