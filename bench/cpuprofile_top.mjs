// Aggregates a `node --cpu-prof` profile by function (self time), for bench/hostcalls.mjs runs.
//   node bench/cpuprofile_top.mjs <file.cpuprofile> [top=30]
import fs from "node:fs";
const [file, topArg] = process.argv.slice(2);
const prof = JSON.parse(fs.readFileSync(file, "utf8"));
const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const self = new Map();
const dt = prof.timeDeltas;
prof.samples.forEach((id, i) => {
  const n = byId.get(id);
  const name = n.callFrame.functionName || `(anonymous ${n.callFrame.url.split("/").pop()}:${n.callFrame.lineNumber})`;
  const key = name + (n.callFrame.url.startsWith("wasm://") ? " [wasm]" : n.callFrame.url ? " [js]" : "");
  self.set(key, (self.get(key) ?? 0) + (dt[i] ?? 0));
});
const total = [...self.values()].reduce((a, b) => a + b, 0);
const rows = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, Number(topArg ?? 30));
for (const [k, v] of rows) console.log(`${((100 * v) / total).toFixed(1).padStart(5)}%  ${k}`);
const wasm = [...self.entries()].filter(([k]) => k.endsWith("[wasm]")).reduce((a, [, v]) => a + v, 0);
console.log(`wasm total ${((100 * wasm) / total).toFixed(1)}% of samples`);
console.log("-- wasm functions only (share of wasm samples) --");
const wrows = [...self.entries()].filter(([k]) => k.endsWith("[wasm]")).sort((a, b) => b[1] - a[1]).slice(0, Number(topArg ?? 30));
for (const [k, v] of wrows) {
  let name = k.replace(" [wasm]", "");
  const m = name.match(/^_ZN(.*)17h[0-9a-f]{16}E$/);
  if (m) { let s = m[1], out = []; while (s.length) { const n = parseInt(s, 10); if (!n) break; const d = String(n).length; out.push(s.slice(d, d + n)); s = s.slice(d + n); } name = out.join("::"); }
  console.log(`${((100 * v) / wasm).toFixed(1).padStart(5)}%  ${name.replaceAll("$LT$", "<").replaceAll("$GT$", ">").replaceAll("$u20$", " ").replaceAll("..", "::").slice(0, 140)}`);
}
