"""The render step of k8s/ (`scripts/render_k8s.py OVERLAY`): `kubectl kustomize` the overlay,
compile the policy ConfigMap's files with the filter's own code (`warden control --check`), and
write the policy into the overlay's plugin configuration, which holds only the wiring in git:

- istio: the WasmPlugin's `pluginConfig`, and the module pinned: an `oci://` URL becomes
  `<image>@sha256:<manifest digest>` with that digest as `sha256` (`--image`, what Istio's agent
  checks for an OCI module), an `https://` / `file://` one gets the digest of the .wasm given;
- envoyfilter: the EnvoyFilter HTTP_FILTER's `configuration.value`;
- envoy: the `configuration.value` of the mcp-warden filter in the mcp-warden-envoy ConfigMap's
  envoy.yaml.

With `--image <registry>/<name>@sha256:<digest>` every reference to the module's image (the
WasmPlugin URL, the image volumes) is pinned to that digest.

A policy that does not compile is refused with the line the filter would log
(`mcp-warden: <error>; configuration refused`). The wiring may hold only `control`: what
warden-control serves replaces the whole plugin configuration at the first poll, so anything else
belongs in the policy files. What it prints is what `kubectl apply -f -` takes.
"""
from __future__ import annotations

import hashlib
import json
import subprocess
import tempfile
from pathlib import Path

import yaml

from . import harness

KUBECTL = harness.VENV_BIN / "kubectl"
K8S = harness.ROOT / "k8s"
POLICY_CONFIGMAP = "mcp-warden-policy"
ENVOY_CONFIGMAP = "mcp-warden-envoy"
# The module's image as the manifests in git name it (replaced by `--image`).
MODULE_IMAGE = "ghcr.io/example/mcp-warden-wasm:0.1.0"
# What the plugin configuration may hold besides the policy.
WIRING_KEYS = {"control"}


class RenderError(Exception):
    """Why an overlay cannot be rendered (the message is what the user sees)."""


def kustomize(overlay: str, k8s: Path = K8S) -> list[dict]:
    path = k8s / "overlays" / overlay
    if not path.is_dir():
        raise RenderError(f"no overlay {overlay!r} under {k8s / 'overlays'}")
    r = subprocess.run([str(KUBECTL), "kustomize", str(path)], capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise RenderError(f"kubectl kustomize {path}: {r.stderr.strip()}")
    return [d for d in yaml.safe_load_all(r.stdout) if d]


def find(docs: list[dict], kind: str, name: str | None = None) -> list[dict]:
    return [d for d in docs if d.get("kind") == kind and (name is None or d["metadata"]["name"] == name)]


def compile_check(files: dict[str, str]) -> None:
    """Compiles `files` (policy.json, kill.json, ...) as warden-control and the filter do; raises
    RenderError with the filter's own log line for the first refused file."""
    with tempfile.TemporaryDirectory() as d:
        for name, text in files.items():
            (Path(d) / name).write_text(text)
        r = subprocess.run([str(harness.WARDEN), "control", "--dir", d, "--check"],
                           capture_output=True, text=True, timeout=60)
    if r.returncode == 0:
        return
    try:
        status = json.loads(r.stdout.strip().splitlines()[0])
    except (ValueError, IndexError):
        raise RenderError(f"warden control --check failed: {r.stdout}{r.stderr}") from None
    for part in ("policy", "kill", "pins"):
        error = (status.get(part) or {}).get("error")
        if error:
            raise RenderError(f"mcp-warden: {error['text']}; configuration refused")
    raise RenderError(f"warden control --check refused the policy: {r.stdout}")


def merged(wiring: dict, policy: dict, where: str) -> dict:
    extra = sorted(set(wiring) - WIRING_KEYS)
    if extra:
        raise RenderError(f"{where}: {', '.join(extra)} would be dropped at the first poll of warden-control "
                          "(the policy it serves replaces the plugin configuration): put it in base/policy/policy.json")
    both = sorted(set(wiring) & set(policy))
    if both:
        raise RenderError(f"{where}: {', '.join(both)} set both here and in the policy ConfigMap")
    return {**wiring, **policy}


def pin_image(node, image: str):
    """`node` with every mention of MODULE_IMAGE (a field, or inside an annotation's JSON) as `image`."""
    if isinstance(node, dict):
        return {k: pin_image(v, image) for k, v in node.items()}
    if isinstance(node, list):
        return [pin_image(v, image) for v in node]
    return node.replace(MODULE_IMAGE, image) if isinstance(node, str) else node


def _mcp_warden_filter(bootstrap: dict) -> dict:
    for listener in bootstrap.get("static_resources", {}).get("listeners", []):
        for chain in listener.get("filter_chains", []):
            for f in chain.get("filters", []):
                for http in f.get("typed_config", {}).get("http_filters", []):
                    if http.get("name") == "mcp-warden":
                        return http
    raise RenderError(f"no mcp-warden filter in the {ENVOY_CONFIGMAP} ConfigMap's envoy.yaml")


def render(overlay: str, wasm: Path | None = None, k8s: Path = K8S, image: str | None = None) -> list[dict]:
    docs = kustomize(overlay, k8s)
    digest = None
    if image is not None:
        ref, _, digest = image.partition("@sha256:")
        if not ref or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise RenderError(f"--image {image!r}: expected <registry>/<name>@sha256:<64 hex> (the image's manifest digest)")
        docs = pin_image(docs, image)
    cms = find(docs, "ConfigMap", POLICY_CONFIGMAP)
    if len(cms) != 1:
        raise RenderError(f"overlay {overlay}: expected one ConfigMap {POLICY_CONFIGMAP}, found {len(cms)}")
    files = cms[0].get("data") or {}
    if "policy.json" not in files:
        raise RenderError(f"ConfigMap {POLICY_CONFIGMAP} has no policy.json")
    try:
        policy = json.loads(files["policy.json"])
    except ValueError as e:
        raise RenderError(f"mcp-warden: configuration is not JSON: {e}; configuration refused") from None
    compile_check(files)
    targets = 0
    for wp in find(docs, "WasmPlugin", "mcp-warden"):
        config = merged(wp["spec"].get("pluginConfig") or {}, policy, "WasmPlugin mcp-warden pluginConfig")
        compile_check({"policy.json": json.dumps(config)})
        wp["spec"]["pluginConfig"] = config
        url = wp["spec"]["url"]
        if url.startswith("oci://"):
            # Istio's agent checks an OCI module's sha256 against the image manifest's digest.
            if digest is None or "@sha256:" not in url:
                raise RenderError("the WasmPlugin pulls the module by oci:// URL: pass --image "
                                  "<registry>/<name>@sha256:<manifest digest> (docker buildx imagetools inspect) to pin it")
            wp["spec"]["sha256"] = digest
        else:
            module = wasm or harness.WASM
            if not module.is_file():
                raise RenderError(f"{module} is missing: build the filter first (`make build`) or pass --wasm")
            wp["spec"]["sha256"] = hashlib.sha256(module.read_bytes()).hexdigest()
        targets += 1
    for ef in find(docs, "EnvoyFilter"):
        for patch in ef["spec"].get("configPatches", []):
            value = patch.get("patch", {}).get("value", {})
            if patch.get("applyTo") != "HTTP_FILTER" or value.get("name") != "mcp-warden":
                continue
            configuration = value["typed_config"]["config"]["configuration"]
            config = merged(json.loads(configuration["value"]), policy, f"EnvoyFilter {ef['metadata']['name']}")
            compile_check({"policy.json": json.dumps(config)})
            configuration["value"] = json.dumps(config, indent=2) + "\n"
            targets += 1
    for cm in find(docs, "ConfigMap", ENVOY_CONFIGMAP):
        bootstrap = yaml.safe_load(cm["data"]["envoy.yaml"])
        configuration = _mcp_warden_filter(bootstrap)["typed_config"]["config"]["configuration"]
        config = merged(json.loads(configuration["value"]), policy, f"ConfigMap {ENVOY_CONFIGMAP} envoy.yaml")
        compile_check({"policy.json": json.dumps(config)})
        configuration["value"] = json.dumps(config, indent=2) + "\n"
        cm["data"]["envoy.yaml"] = yaml.safe_dump(bootstrap, sort_keys=False)
        targets += 1
    if targets != 1:
        raise RenderError(f"overlay {overlay}: expected one mcp-warden plugin configuration, found {targets}")
    return docs


def dump(docs: list[dict]) -> str:
    return yaml.safe_dump_all(docs, sort_keys=False)
