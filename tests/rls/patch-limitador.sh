#!/usr/bin/env bash
# limitador 0.14.0 as published does not compile with `default-features = false, features =
# ["redis_storage"]`: the binary counter-key encoding that the Redis backends call
# (src/storage/keys.rs `mod bin`, src/counter.rs `variables_for_key`) is behind
# `#[cfg(feature = "disk_storage")]`, and that feature brings RocksDB (a long C++ build that needs
# libclang). This unpacks the published crate (checksum-pinned) from cargo's download cache into
# OUT/limitador-0.14.0 and widens exactly those two cfgs to `any(disk_storage, redis_storage)` (with
# `allow(dead_code)`: the Redis backends use only part of that module);
# tests/rls/Cargo.toml's [patch.crates-io] points at the copy.
#
# usage: tests/rls/patch-limitador.sh OUT     (run by `make rls`)
set -euo pipefail
out=${1:?usage: patch-limitador.sh OUT}
ver=0.14.0
sha=77e33de992fdc347850a81f1ed242cc702900a9651a2b5d044d153a2db5e2d1a
cache="${CARGO_HOME:-$HOME/.cargo}/registry/cache"

find_crate() { ls "$cache"/*/"limitador-$ver.crate" 2>/dev/null | head -n 1 || true; }

mkdir -p "$out"
crate=$(find_crate)
if [ -z "$crate" ]; then
  # Not downloaded yet: let cargo fetch it through a throwaway manifest.
  tmp="$out/fetch-limitador"
  mkdir -p "$tmp/src"
  : > "$tmp/src/lib.rs"
  cat > "$tmp/Cargo.toml" <<TOML
[package]
name = "fetch-limitador"
version = "0.0.0"
edition = "2021"
publish = false
[workspace]
[dependencies]
limitador = { version = "=$ver", default-features = false, features = ["redis_storage"] }
TOML
  cargo fetch --manifest-path "$tmp/Cargo.toml"
  crate=$(find_crate)
fi
[ -n "$crate" ] || { echo "patch-limitador: limitador-$ver.crate not found under $cache" >&2; exit 1; }
echo "$sha  $crate" | sha256sum -c --quiet -

dest="$out/limitador-$ver"
rm -rf "$dest"
tar -xzf "$crate" -C "$out"
for f in src/storage/keys.rs src/counter.rs; do
  grep -q '#\[cfg(feature = "disk_storage")\]' "$dest/$f" \
    || { echo "patch-limitador: $f: the cfg to widen is not there" >&2; exit 1; }
  sed -i 's/^\( *\)#\[cfg(feature = "disk_storage")\]/\1#[cfg(any(feature = "disk_storage", feature = "redis_storage"))]\n\1#[allow(dead_code)]/' "$dest/$f"
done
echo "patch-limitador: $dest (2 cfgs widened)"
