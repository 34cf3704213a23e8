#!/usr/bin/env python3
"""Print an Envoy config from envoy/ with ports and paths taken from the environment
(see wardenkit.render): `render_envoy.py envoy/local.yaml > out.yaml`."""
import sys

from wardenkit.render import render

if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as f:
        sys.stdout.write(render(f.read()))
