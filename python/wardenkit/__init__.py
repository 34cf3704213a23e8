"""mcp-warden's Python helpers, one package for scripts/, bench/ and tests/: process handling
(start, wait, stop by PID), the Envoy launcher and config rendering, MCP request helpers and the
recording upstream's client.

- `wardenkit.harness`: paths, processes, Envoy, upstreams, MCP helpers (used by tests/e2e,
  tests/conformance, scripts/gateway.py, bench/receipts).
- `wardenkit.render`: the port / .wasm substitution the checked-in Envoy configs follow.

Importable from the project venv without sys.path edits: `make deps` puts `python/` on the venv's
path (a `.pth` file).
"""
