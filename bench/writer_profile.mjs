// Drives the receipt writer VM of a filter .wasm through the proxy-wasm ABI the way Envoy does
// (the writer root: VM start, configure, one queue callback per enqueued exchange, gRPC answers
// to its exports) against a stub host, on exchanges a producer instance of the same .wasm
// enqueued for the bench payload. Prints the mean wall and CPU time per receipt in Node's V8 and
// the writer's counters; with WRITER_CPUPROF=FILE and an unstripped build it also writes a V8 CPU
// profile of the timed writer part alone, for bench/cpuprofile_top.mjs (bench/README.md).
//
//   node bench/writer_profile.mjs <filter.wasm> <payload stem> [N=2000] [worker configuration JSON]
// WRITER_CONFIG=JSON replaces the writer's plugin configuration (e.g. `"checkpoints": false`: a
// signature per receipt however far the queue lags, as a writer that keeps up signs).
//   WRITER_CPUPROF=/tmp/w.cpuprofile node --no-liftoff bench/writer_profile.mjs <unstripped.wasm> modern-tools_call-1k 5000
import fs from "node:fs";
import inspector from "node:inspector/promises";
import { DEFAULT_CONFIG, instance, payload } from "./stub_host.mjs";

const [wasmPath, stem, nArg, configArg] = process.argv.slice(2);
const N = Number(nArg ?? 2000);
const { body, headers } = payload(stem);
// A test key (not a secret): the writer refuses to start without one.
const KEY = "213e37ab" + "0".repeat(56);

const queue = [];
const producer = instance(wasmPath, { pluginConfig: configArg ?? DEFAULT_CONFIG, body, queue });
for (let i = 0; i < N + 200; i++) producer.request(10 + i, headers);
if (!queue.length) throw new Error("the producer enqueued nothing");
const messages = queue.splice(0);
const writer = instance(wasmPath, { rootId: "mcp-warden-writer", pluginConfig: process.env.WRITER_CONFIG ?? '{"sink_cluster": "receipt_sink"}',
  queue, environ: [`WARDEN_SIGNING_KEY=${KEY}`] });
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
