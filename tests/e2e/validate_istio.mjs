// Validates Istio resources against Istio's CRD schemas (@kubernetes-models/istio, generated from
// the CRDs). Reads a JSON array of manifests on stdin; prints a JSON array of
// {kind, name, error} (error null when valid). Used by test_k8s_overlays.py.
import { createRequire } from "node:module";
const require = createRequire(import.meta.url);
const root = process.env.ISTIO_MODELS || "@kubernetes-models/istio";

const chunks = [];
for await (const c of process.stdin) chunks.push(c);
const docs = JSON.parse(Buffer.concat(chunks).toString("utf8"));
const out = [];
for (const doc of docs) {
  const [group, version] = doc.apiVersion.split("/");
  let error = null;
  try {
    const mod = require(`${root}/${group}/${version}/${doc.kind}`);
    const Model = mod[doc.kind] || mod.default;
    new Model(doc).validate();
  } catch (e) {
    error = String(e && e.message ? e.message : e);
  }
  out.push({ kind: doc.kind, name: doc.metadata && doc.metadata.name, error });
}
process.stdout.write(JSON.stringify(out));
