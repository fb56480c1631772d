#!/usr/bin/env bash
# Package tier: the Debian package as an operator gets it.
#   test/package/run.sh BUILD_DIR
# 1. scripts/package builds evenflow_VERSION_amd64.deb (VERSION: meson's) in a copy of
#    the tree; lintian finds no warning or error (its full report is printed).
# 2. dpkg-deb -c: exactly the expected files; dpkg-deb -I: version, architecture, the
#    dependencies dpkg-shlibdeps found (DPDK, fmt, toml++, httplib), one conffile (the
#    example), maintainer scripts that never start, stop or restart the daemon on
#    upgrade and stop it on removal.
# 3. apt-get install ./evenflow_VERSION_amd64.deb: --version of the installed binaries,
#    evenctl check of the installed example, the man pages, the unit verified by
#    systemd-analyze and neither enabled nor started.
# 4. apt-get remove keeps the conffile; apt-get purge leaves nothing of the package,
#    only the admin's own /etc/evenflow/evenflow.toml (which policy never deletes).
set -uo pipefail

# shellcheck source=test/lib/harness.sh
source "$(dirname "$0")/../lib/harness.sh"
harness_init package "${1:?usage: test/package/run.sh BUILD_DIR}"
needs_root "apt-get install"
needs_tools dpkg-buildpackage dh lintian help2man apt-get dpkg-deb systemd-analyze python3 meson
make_workdir
version=$(json 'r["version"]' <"$build/meson-info/intro-projectinfo.json")
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
out=$build/deb
deb=$out/evenflow_${version}_$arch.deb
apt=(env DEBIAN_FRONTEND=noninteractive apt-get -y -q -o DPkg::Lock::Timeout=300)

# A package left installed by an interrupted run would hide what this one installs.
if dpkg-query -W -f='${Status}' evenflow 2>/dev/null | grep -q 'installed\|config-files'; then
  echo "# evenflow is installed already (an earlier run?): purging it first"
  "${apt[@]}" purge evenflow >/dev/null 2>&1
fi
admin_config=/etc/evenflow/evenflow.toml
[[ -e $admin_config ]] && { fail "$admin_config exists on this machine: not touching it"; finish; }
installed=0
remove_package() { ((installed)) && "${apt[@]}" purge evenflow >/dev/null 2>&1; rm -f "$admin_config"; rmdir /etc/evenflow 2>/dev/null; installed=0; }
trap 'remove_package; harness_cleanup' EXIT

# ---- 1. build ----
t0=$(now)
if "$root/scripts/package" --out "$out" >"$work/package.log" 2>&1; then
  pass "scripts/package builds $(basename "$deb") and lintian finds no warning or error"
else
  fail "scripts/package" "$(tail -40 "$work/package.log")"
  finish
fi
figure "package build: $(printf '%.0f' "$(elapsed "$t0" "$(now)")") s"
echo "# lintian (every tag, info included; overrides: debian/evenflow.lintian-overrides):"
grep -E '^[EWIPXO]: ' "$out/lintian.txt" | sed 's/^/#   /'
grep -qE '^[EWIPX]: ' "$out/lintian.txt" || echo "#   no tag"
[[ -f $deb ]] || { fail "no $deb"; finish; }

# ---- 2. contents and control data ----
dpkg-deb -c "$deb" | awk '$1 !~ /^d/ { sub(/^\.\//, "", $6); print "/" $6 }' | sort >"$work/files"
cat >"$work/expected" <<FILES
/etc/evenflow/evenflow.toml.example
/lib/systemd/system/evenflowd.service
/usr/bin/evenctl
/usr/bin/evenflowd
/usr/bin/evengen
/usr/share/bash-completion/completions/evenctl
/usr/share/doc/evenflow/changelog.gz
/usr/share/doc/evenflow/copyright
/usr/share/evenflow/grafana/evenflow.json
/usr/share/evenflow/prometheus/alerts.yml
/usr/share/lintian/overrides/evenflow
/usr/share/man/man1/evenctl.1.gz
/usr/share/man/man1/evengen.1.gz
/usr/share/man/man8/evenflowd.8.gz
FILES
if diff -u "$work/expected" "$work/files" >"$work/files.diff"; then
  pass "dpkg-deb -c: the 14 expected files, nothing else"
else
  fail "dpkg-deb -c: not the expected files" "$(cat "$work/files.diff")"
fi
field() { dpkg-deb -f "$deb" "$1"; }
expect_eq "dpkg-deb -I: Package, Version (meson's), Architecture" \
  "$(field Package) $(field Version) $(field Architecture)" "evenflow $version $arch"
depends=$(field Depends)
missing_deps=""
for lib in librte-eal23 librte-ethdev23 librte-pdump23 libfmt9 libtomlplusplus3 libcpp-httplib0.11 libstdc++6; do
  [[ $depends == *"$lib "* ]] || missing_deps+=" $lib"
done
[[ -z $missing_deps ]] && pass "Depends: the libraries dpkg-shlibdeps found (DPDK, fmt, toml++, httplib)" ||
  fail "Depends lacks$missing_deps" "$depends"
expect_eq "Recommends: dpdk (its PMDs and tools are loaded or run, never linked)" "$(field Recommends)" "dpdk"
dpkg-deb -e "$deb" "$work/control"
expect_eq "conffiles: the example only" "$(cat "$work/control/conffiles")" "/etc/evenflow/evenflow.toml.example"
scripts=$(cat "$work/control"/{preinst,postinst,prerm,postrm} 2>/dev/null | grep -v '^[[:space:]]*#')
if grep -Eq 'deb-systemd-invoke (start|restart|try-restart)|systemctl [a-z-]* *(start|restart)' <<<"$scripts"; then
  fail "maintainer scripts start or restart the daemon" "$(grep -En 'start' <<<"$scripts")"
else
  pass "maintainer scripts never start or restart the daemon (install, upgrade)"
fi
if [[ ! -e $work/control/preinst ]] || ! grep -q stop "$work/control/preinst"; then
  pass "no stop before an upgrade (no preinst stop)"
else
  fail "preinst stops the daemon" "$(cat "$work/control/preinst")"
fi
grep -q '"$1" = remove ] && \[ -d /run/systemd/system ]; then' "$work/control/prerm" &&
  grep -q 'deb-systemd-invoke stop evenflowd.service' "$work/control/prerm" &&
  pass "prerm stops the daemon on removal only" ||
  fail "prerm does not stop the daemon on removal" "$(cat "$work/control/prerm" 2>/dev/null)"

# ---- 3. install ----
if "${apt[@]}" install "$deb" >"$work/install.log" 2>&1; then
  installed=1
  pass "apt-get install ./$(basename "$deb")"
else
  fail "apt-get install" "$(tail -20 "$work/install.log")"
  finish
fi
expect_eq "dpkg: installed" "$(dpkg-query -W -f='${Status} ${Version}' evenflow)" "install ok installed $version"
for bin in evenflowd evenctl evengen; do
  expect_eq "/usr/bin/$bin --version" "$("/usr/bin/$bin" --version 2>&1)" "$bin $version"
done
out=$(/usr/bin/evenctl check /etc/evenflow/evenflow.toml.example 2>&1)
rc=$?
expect_eq "/usr/bin/evenctl check /etc/evenflow/evenflow.toml.example: exit 0" "$rc" "0"
expect_contains "evenctl check: the example is ok" "$out" "evenflow.toml.example: ok"
for page in evenctl.1 evengen.1 evenflowd.8; do
  zcat "/usr/share/man/man${page##*.}/$page.gz" 2>/dev/null | grep -q '^\.TH' &&
    pass "man page $page" || fail "man page $page missing or not roff"
done
zcat /usr/share/man/man1/evenctl.1.gz | grep -q '^\.B diff FILE' && pass "evenctl(1) lists every command (diff FILE among them)" ||
  fail "evenctl(1) lacks the command list"
check "bash completion: bash -n /usr/share/bash-completion/completions/evenctl" \
  bash -n /usr/share/bash-completion/completions/evenctl
unit=/lib/systemd/system/evenflowd.service
# verify exits 0 on some warnings: any output fails. Its Documentation= man pages
# are checked too (man finds the installed ones).
out=$(systemd-analyze verify "$unit" 2>&1)
rc=$?
[[ $rc -eq 0 && -z $out ]] && pass "systemd-analyze verify $unit (man pages included)" ||
  fail "systemd-analyze verify $unit: exit $rc" "$out"
expect_contains "the unit runs the installed daemon on /etc/evenflow/evenflow.toml" "$(cat "$unit")" \
  "ExecStart=/usr/bin/evenflowd --config /etc/evenflow/evenflow.toml"
enabled=$(find /etc/systemd/system -name evenflowd.service 2>/dev/null)
[[ -z $enabled ]] && pass "the unit is not enabled" || fail "the unit is enabled: $enabled"
daemon_started=0
for p in $(pgrep -x evenflowd); do [[ $(readlink -f "/proc/$p/exe") == /usr/bin/evenflowd ]] && daemon_started=1; done
((daemon_started)) && fail "the package started evenflowd" || pass "the package started no daemon"

# ---- 4. remove, then purge ----
echo "# the admin's config" >"$admin_config"
if "${apt[@]}" remove evenflow >"$work/remove.log" 2>&1; then pass "apt-get remove evenflow"; else
  fail "apt-get remove" "$(tail -20 "$work/remove.log")"
fi
expect_eq "after remove: config files kept" "$(dpkg-query -W -f='${Status}' evenflow 2>/dev/null)" \
  "deinstall ok config-files"
[[ -f /etc/evenflow/evenflow.toml.example && ! -e /usr/bin/evenctl ]] &&
  pass "after remove: the conffile stays, the binaries are gone" ||
  fail "after remove: conffile or binaries not as policy says"
if "${apt[@]}" purge evenflow >"$work/purge.log" 2>&1; then pass "apt-get purge evenflow"; else
  fail "apt-get purge" "$(tail -20 "$work/purge.log")"
fi
installed=0
left=()
while read -r f; do [[ -e $f || -L $f ]] && left+=("$f"); done <"$work/files"
for d in /usr/share/evenflow /usr/share/doc/evenflow; do [[ -e $d ]] && left+=("$d"); done
while read -r f; do left+=("$f"); done < <(find /etc/systemd /var/lib/systemd -name 'evenflowd*' 2>/dev/null)
dpkg-query -W evenflow >/dev/null 2>&1 && left+=("dpkg status entry")
if ((${#left[@]} == 0)); then
  pass "after purge: nothing of the package is left (files, unit links, dpkg status)"
else
  fail "after purge, left behind: ${left[*]}"
fi
expect_eq "after purge: only the admin's own file is left in /etc/evenflow" \
  "$(ls -A /etc/evenflow 2>&1 | tr '\n' ' ')" "evenflow.toml "
rm -f "$admin_config"
rmdir /etc/evenflow 2>/dev/null
finish
