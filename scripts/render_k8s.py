#!/usr/bin/env python3
"""Render a k8s/ overlay for `kubectl apply -f -` (see wardenkit.k8s and k8s/README.md):

    render_k8s.py istio|envoyfilter|envoy [--image REF@sha256:DIGEST] [--wasm PATH] [--k8s DIR] > manifests.yaml

Exit 1 with the filter's own error line when the policy does not compile."""
import argparse
import sys
from pathlib import Path

from wardenkit import k8s

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("overlay")
    ap.add_argument("--image", help="the module's image by digest, <registry>/<name>@sha256:<digest>: pins every "
                                    "reference to it (required for the istio overlay's oci:// WasmPlugin)")
    ap.add_argument("--wasm", type=Path, help="the .wasm whose sha256 an https:// or file:// WasmPlugin URL pins "
                                              "(default: the built one)")
    ap.add_argument("--k8s", type=Path, default=k8s.K8S, help="the k8s/ directory (default: this checkout's)")
    args = ap.parse_args()
    try:
        sys.stdout.write(k8s.dump(k8s.render(args.overlay, args.wasm, args.k8s, args.image)))
    except k8s.RenderError as e:
        print(e, file=sys.stderr)
        sys.exit(1)
