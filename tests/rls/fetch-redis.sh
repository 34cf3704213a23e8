#!/usr/bin/env bash
# Debian's redis-server for the e2e tests, unpacked into a project-local folder instead of being
# installed on the machine: the .debs of redis-server and redis-tools, and of those of their
# shared libraries that the machine lacks (libjemalloc2 and liblzf1 on a stock Debian 12), are
# fetched with `apt-get download` and `dpkg -x`-ed into DEST/root; DEST/bin/redis-server and
# DEST/bin/redis-cli are wrappers that put DEST's libraries on LD_LIBRARY_PATH. Checked with ldd
# before it is declared done.
#
# usage: tests/rls/fetch-redis.sh DEST     (run by `make deps-redis`, DEST = .deps/redis)
set -euo pipefail
dest=${1:?usage: fetch-redis.sh DEST}
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)
rm -rf "$dest/debs" "$dest/root" "$dest/bin"
mkdir -p "$dest/debs" "$dest/root" "$dest/bin"

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

# A fresh machine may have no package lists yet: update once and retry.
download() {
  (cd "$dest/debs" && apt-get download -q -o APT::Sandbox::User=root "$@") \
    || { apt-get update -q && (cd "$dest/debs" && apt-get download -q -o APT::Sandbox::User=root "$@"); }
}

download redis-server redis-tools
libs=()
for pkg in $(apt-cache depends --important redis-tools redis-server | awk '/Depends: lib/ {print $2}' | sort -u); do
  installed "$pkg" || libs+=("$pkg")
done
if [ ${#libs[@]} -gt 0 ]; then
  echo "fetch-redis: libraries not on this machine: ${libs[*]}"
  download "${libs[@]}"
fi
for deb in "$dest"/debs/*.deb; do dpkg -x "$deb" "$dest/root"; done

# Every folder of the unpacked tree that holds a shared library, relative to DEST.
libpath=$(cd "$dest" && find root -name '*.so*' -printf '%h\n' | sort -u | sed 's|^|$here/|' | paste -sd: -)
for tool in redis-server redis-cli; do
  cat > "$dest/bin/$tool" <<SH
#!/bin/sh
# Debian's $tool unpacked by tests/rls/fetch-redis.sh (make deps-redis), with its libraries.
here=\$(cd "\$(dirname "\$0")/.." && pwd)
LD_LIBRARY_PATH="$libpath\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
export LD_LIBRARY_PATH
exec "\$here/root/usr/bin/$tool" "\$@"
SH
  chmod +x "$dest/bin/$tool"
done

missing=$(here=$dest; LD_LIBRARY_PATH=$(eval echo "$libpath") ldd "$dest/root/usr/bin/redis-server" | grep 'not found' || true)
if [ -n "$missing" ]; then
  echo "fetch-redis: redis-server still lacks shared libraries:" >&2
  echo "$missing" >&2
  exit 1
fi
"$dest/bin/redis-server" --version
