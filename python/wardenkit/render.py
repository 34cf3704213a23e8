"""Envoy configs from envoy/ with ports and paths taken from the environment.

The checked-in configs are valid as they stand (default ports, paths relative to the repo
root); this only substitutes the well-known defaults when an override is set:
GATEWAY_PORT (10000), ADMIN_PORT (9901), UPSTREAM_PORT (8080), SINK_PORT (4317), TRACE_PORT (4319),
WARDEN_WASM (target/wasm32-wasip1/release/mcp_warden.wasm).
"""
import os

DEFAULTS = {
    "GATEWAY_PORT": "10000",
    "ADMIN_PORT": "9901",
    "UPSTREAM_PORT": "8080",
    "SINK_PORT": "4317",
    "TRACE_PORT": "4319",
}
WASM_DEFAULT = "target/wasm32-wasip1/release/mcp_warden.wasm"


def render(text: str, env=os.environ) -> str:
    for var, default in DEFAULTS.items():
        value = env.get(var, default)
        if value != default:
            text = text.replace(f"port_value: {default} ", f"port_value: {value} ")
            text = text.replace(f"port_value: {default}\n", f"port_value: {value}\n")
    wasm = env.get("WARDEN_WASM")
    if wasm:
        text = text.replace(WASM_DEFAULT, wasm)
    return text
