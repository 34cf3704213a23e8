"""The Kubernetes manifests under k8s/ hold configuration the filter must accept: the policy
ConfigMap (compiled by `warden control --check`, the same code the filter runs) and the
WasmPlugin's pluginConfig (the filter's plugin configuration)."""
import json
import subprocess

import pytest
import yaml

from wardenkit import harness
from wardenkit.harness import ROOT

WARDEN = harness.WARDEN
pytestmark = pytest.mark.usefixtures("warden")


def docs(name):
    with open(ROOT / "k8s" / name, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d]


def check_dir(tmp_path, policy: str, kill: str | None = None):
    (tmp_path / "policy.json").write_text(policy)
    if kill is not None:
        (tmp_path / "kill.json").write_text(kill)
    return subprocess.run([str(WARDEN), "control", "--dir", str(tmp_path), "--check"],
                          capture_output=True, text=True, timeout=60)


def test_policy_configmap_compiles(tmp_path):
    (cm,) = docs("policy-configmap.yaml")
    r = check_dir(tmp_path, cm["data"]["policy.json"], cm["data"]["kill.json"])
    assert r.returncode == 0, r.stdout + r.stderr


def test_wasmplugin_plugin_config_compiles(tmp_path):
    (wp,) = docs("wasmplugin.yaml")
    r = check_dir(tmp_path, json.dumps(wp["spec"]["pluginConfig"]))
    assert r.returncode == 0, r.stdout + r.stderr


def test_a_broken_policy_edit_is_refused_naming_the_field(tmp_path):
    (cm,) = docs("policy-configmap.yaml")
    policy = json.loads(cm["data"]["policy.json"])
    policy["rules"][0]["acton"] = policy["rules"][0].pop("action")
    r = check_dir(tmp_path, json.dumps(policy))
    assert r.returncode != 0
    assert "acton" in r.stdout + r.stderr


def test_kustomization_lists_every_manifest():
    (k,) = docs("kustomization.yaml")
    files = sorted(p.name for p in (ROOT / "k8s").glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(k["resources"]) == files


def test_readme_policy_example_compiles(tmp_path):
    """The policy example in the README is what security teams copy: it must stay valid."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index('```json\n{\n  "principal"') + len("```json\n")
    example = readme[start:readme.index("```", start)]
    r = check_dir(tmp_path, example)
    assert r.returncode == 0, r.stdout + r.stderr
