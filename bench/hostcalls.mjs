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
import { instance, payload } from "./stub_host.mjs";

const args = process.argv.slice(2).filter((a) => !a.startsWith("--"));
const writer = process.argv.includes("--writer");
const loopArg = process.argv.find((a) => a.startsWith("--loop="));
const loops = loopArg ? Number(loopArg.slice(7)) : 0;
const [wasmPath, stem, configArg] = args;
const { body, headers: reqHeaders } = payload(stem);

const counts = {};
let allocs = 0, allocBytes = 0, phase = "setup";
let propsRead = [];
const queue = [];
const vm = instance(wasmPath, {
  pluginConfig: configArg, body, queue, resolveQueue: writer,
  onCall: (name) => { counts[phase] ??= {}; counts[phase][name] = (counts[phase][name] ?? 0) + 1; },
  onGive: (bytes) => { allocs++; allocBytes += bytes.length; },
  onProperty: (key, found) => { if (phase !== "setup") propsRead.push(key.replaceAll("\0", ".") + (found ? "" : " (not found)")); },
});
function request(ctx) {
  const actions = vm.request(ctx, reqHeaders, (name, f) => { phase = name; return f(); });
  phase = "idle";
  queue.length = 0; // what the writer would take: not kept across requests here
  return actions;
}
request(2); // warm-up: metric definitions, queue resolution, caches
for (const k of Object.keys(counts)) delete counts[k];
allocs = 0; allocBytes = 0; propsRead = [];
const actions = request(3);
const upstreamSaw = Object.fromEntries(vm.headers().request.filter(([k]) => k.startsWith("mcp-") || k.startsWith("x-warden")));

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
