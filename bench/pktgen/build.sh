#!/usr/bin/env bash
# Builds Pktgen-DPDK pktgen-24.07.1 for scripts/bench --generator pktgen, outside the
# source tree, in DEST (default build-release/pktgen), and prints the binary's path.
#
#   bench/pktgen/build.sh [DEST]
#
# Source: the unmodified release archive ../shared/vendor/Pktgen-DPDK-pktgen-24.07.1.tar.gz
# (next to the repository, or next to the local checkout it was cloned from;
# $PKTGEN_TARBALL overrides), checked against its sha256; where
# it does not exist, the tag from upstream (git; $PKTGEN_UPSTREAM overrides the URL, e.g.
# a mirror), checked against its commit. Then evenflow's patch for DPDK 22.11
# (bench/pktgen/pktgen-dpdk22.11.patch; what it changes and why is at its top), meson
# with Lua, ninja. 30-60 s on two cores; cached: a second call with the same source and
# patch only prints the path (the build is kept in $EVENFLOW_CACHE too, below).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
dest=${1:-$root/build-release/pktgen}
tag=pktgen-24.07.1
commit=1d1d9c705b43539cbd49d24a2e3ae07d14d8c605
sha256=613938bc25c437ceb6e5f3d899c4f730bca7ffb602ed11b7b179b43b482683fe
upstream=${PKTGEN_UPSTREAM:-https://github.com/pktgen/Pktgen-DPDK}
tarball=${PKTGEN_TARBALL:-$root/../shared/vendor/Pktgen-DPDK-$tag.tar.gz}
# A clone of a local checkout (a CI job's clean clone) looks beside the checkout it was
# cloned from too.
if [[ -z ${PKTGEN_TARBALL:-} && ! -f $tarball ]]; then
  origin=$(git -C "$root" remote get-url origin 2>/dev/null || true)
  if [[ -n $origin && -d $origin && -f $origin/../shared/vendor/Pktgen-DPDK-$tag.tar.gz ]]; then
    tarball=$(cd "$origin/../shared/vendor" && pwd)/Pktgen-DPDK-$tag.tar.gz
  fi
fi
patch_file=$here/pktgen-dpdk22.11.patch
binary=$dest/build/app/pktgen

say() { echo "pktgen-build: $*" >&2; }

# The build is current when it was made from this source and this patch.
key="$tag $commit $(sha256sum "$patch_file" | cut -d' ' -f1)"
if [[ -x $binary && -f $dest/stamp && $(cat "$dest/stamp") == "$key" ]]; then
  echo "$binary"
  exit 0
fi
# Builds are kept outside the checkout too, one per key, so a clean clone (CI) on a
# machine that built this source and patch before takes it from there
# ($EVENFLOW_CACHE, default /var/cache/evenflow; not used when it is not writable):
# dest becomes a link to the kept build.
cache_root=${EVENFLOW_CACHE:-/var/cache/evenflow}
cached=$cache_root/pktgen-$(sha256sum <<<"$key" | cut -c1-16)
if [[ -x $cached/build/app/pktgen && -f $cached/stamp && $(cat "$cached/stamp") == "$key" ]]; then
  rm -rf "$dest"
  mkdir -p "$(dirname "$dest")"
  ln -sfn "$cached" "$dest"
  say "kept build: $cached"
  echo "$binary"
  exit 0
fi
if mkdir -p "$cache_root" 2>/dev/null && [[ -w $cache_root ]]; then
  rm -rf "$dest" "$cached"
  mkdir -p "$cached" "$(dirname "$dest")"
  ln -sfn "$cached" "$dest"
fi

for tool in meson ninja patch pkg-config; do
  command -v "$tool" >/dev/null || { say "$tool not found (scripts/bootstrap)"; exit 2; }
done
pkg-config --exists lua5.4 || { say "Lua 5.4 headers not found (liblua5.4-dev; scripts/bootstrap)"; exit 2; }

[[ -L $dest ]] || { rm -rf "$dest"; mkdir -p "$dest"; }
src=$dest/Pktgen-DPDK-$tag
started=$(date +%s)
if [[ -f $tarball ]]; then
  if ! echo "$sha256  $tarball" | sha256sum -c --quiet - >/dev/null 2>&1; then
    say "$tarball: sha256 is not $sha256 (not the release archive)"
    exit 2
  fi
  tar -C "$dest" -xzf "$tarball"
  say "source: $tarball (sha256 ok)"
else
  command -v git >/dev/null || { say "no $tarball and no git to fetch $tag"; exit 2; }
  git -c advice.detachedHead=false clone -q --depth 1 --branch "$tag" "$upstream" "$src"
  got=$(git -C "$src" rev-parse HEAD)
  if [[ $got != "$commit" ]]; then
    say "$upstream tag $tag is commit $got, expected $commit"
    exit 2
  fi
  rm -rf "$src/.git"
  say "source: $upstream $tag (commit $commit)"
fi
[[ -f $src/meson.build ]] || { say "no $src/meson.build after unpacking"; exit 2; }
patch -s -d "$src" -p1 <"$patch_file"
meson setup "$dest/build" "$src" -Denable_lua=true >"$dest/meson.log" 2>&1 ||
  { say "meson setup failed, see $dest/meson.log"; tail -20 "$dest/meson.log" >&2; exit 1; }
ninja -C "$dest/build" >"$dest/ninja.log" 2>&1 ||
  { say "build failed, see $dest/ninja.log"; tail -30 "$dest/ninja.log" >&2; exit 1; }
[[ -x $binary ]] || { say "no $binary after the build"; exit 1; }
echo "$key" >"$dest/stamp"
say "built $binary in $(($(date +%s) - started)) s"
echo "$binary"
