# shellcheck shell=bash
# The harness every shell test tier sources (daemon, evengen, ops, e2e): result
# counting, loud pre-flight checks, one run at a time on the shared namespace
# topology, a work dir and a teardown on every exit, and evenflowd start/stop.
#
#   source "$(dirname "$0")/../lib/harness.sh"
#   harness_init NAME BUILD_DIR     sets build, root, lib, evenflowd, evenctl, evengen;
#                                   installs the EXIT/INT/TERM cleanup
#
# Results: a line "ok   - WHAT" or "FAIL - WHAT" per check; finish prints the failed
# checks, "N passed, N failed" last, and exits non-zero if anything failed.
#   pass WHAT | fail WHAT [DETAIL]
#   check WHAT COMMAND...           passes if COMMAND exits 0; shows its output if not
#   expect_eq WHAT ACTUAL EXPECTED | expect_contains WHAT HAYSTACK NEEDLE
#   check_shares WHAT COUNTS WEIGHTS  chi-square of counts against weights (p > 0.001)
#   known_limitation WHAT           reported as KNOWN, not counted
#   within WHAT VALUE BOUND         a wall-clock promise, VALUE <= BOUND (floats): a check in
#                                   the normal build; in a sanitizer build ($sanitized=1,
#                                   made to find memory and UB errors, its control loop 2-4x
#                                   slower) a figure only, marked over when it is
#   figure TEXT                     a measured figure, repeated at the end
#   finish
# Pre-flight: what is missing is a failure, never a skip, and the run ends there.
#   needs_root WHY | needs_tools TOOL... | needs_python_modules MODULE...
#   needs_binaries PATH...
# Files and processes, all removed or stopped on exit (also on failure or Ctrl-C):
#   make_workdir                    work=/tmp/evenflow-NAME.XXXXXX, sock=$work/evenflow.sock,
#                                   log=$work/evenflowd.log; KEEP=1 keeps the directory
#   remove_on_teardown PATH...      more to remove (globs allowed): DPDK runtime dirs
#                                   (/var/run/dpdk/PREFIX), socket dirs
#   bgpids+=($!)                    background processes to stop
#   teardown                        stops and removes all that now
# evenflowd:
#   start_daemon CONFIG [LOG]       starts $evenflowd (pid in $pid, output appended to LOG,
#                                   default $log) and waits until `evenctl status` answers on
#                                   $sock; if it does not, a failure with the log's tail
#   stop_daemon                     TERM, up to 10 s, then KILL; returns the exit status
#   ctl ARGS...                     evenctl on $sock
#   json EXPR                       the Python expression EXPR on r, the JSON on stdin
# The namespace topology (scripts/netns, every name ef-*) of the e2e scripts:
#   take_topology_lock              one run at a time: /run/evenflow-e2e.lock; waits up to
#                                   $EVENFLOW_E2E_LOCK_WAIT s (120) for another run, then fails
#   topology_up N                   takes the lock, creates the topology with N backends and
#                                   starts their servers under $work/srv; sets driver, vdevs,
#                                   prefix; evenflowd then starts inside ef-lb
#   lb_config_head FLOW_CAPACITY    the config head for evenflowd on the topology's ports
#   in_client COMMAND...            runs COMMAND in the client namespace
#   wait_vip_http                   until HTTP through the VIP answers (10 s), else fail + finish
#   now | elapsed T0 T1 | le A B    epoch seconds; T1 - T0; A <= B (floats)
#   waitlog AFTER TIMEOUT KEY=VALUE... [--count N] | loglines AFTER KEY=VALUE...
#                                   evenflowd's log lines (test/e2e/health.py)
#   check_nothing_left              teardown, then one check: no namespace, DPDK runtime dir,
#                                   socket or process of this run is left
#   check_daemon_log                one check: no error or sanitizer report in $log

lib=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$lib/../.." && pwd)
# shellcheck source=test/lib/config.sh
source "$lib/config.sh"

harness_name="test"
started=$(date +%s)
passed=0
failed=0
nknown=0
failures=()
figures=()
work=
pid=
bgpids=()
runtime_paths=()
daemon_in=() # a command prefix for evenflowd: ip netns exec ef-lb on the topology
topology=0
topology_locked=0
sanitized=0 # 1 in a sanitizer build (harness_init): see within

harness_init() { # NAME BUILD_DIR
  harness_name=$1
  started=$(date +%s)
  trap harness_cleanup EXIT
  trap 'exit 130' INT TERM
  if ! build=$(cd "$2" 2>/dev/null && pwd); then
    fail "no build directory $2"
    finish
  fi
  # shellcheck disable=SC2034 # for the tiers
  evenflowd=$build/app/evenflowd evenctl=$build/app/evenctl evengen=$build/app/evengen
  local sanitize
  sanitize=$(python3 -c '
import json, sys
print([o["value"] for o in json.load(open(sys.argv[1])) if o["name"] == "b_sanitize"][0])' \
    "$build/meson-info/intro-buildoptions.json" 2>/dev/null)
  if [[ -n $sanitize && $sanitize != none ]]; then
    sanitized=1
    echo "# sanitizer build ($sanitize): wall-clock bounds are reported, not asserted"
  fi
}

# ---- results ----

pass() { passed=$((passed + 1)); echo "ok   - $*"; }
fail() { # WHAT [DETAIL]
  failed=$((failed + 1))
  failures+=("$1")
  echo "FAIL - $1"
  if [[ -n ${2:-} ]]; then sed 's/^/       /' <<<"$2"; fi
}
check() { # WHAT COMMAND...
  local what=$1 out
  shift
  if out=$("$@" 2>&1); then pass "$what"; else fail "$what" "$out"; fi
}
expect_eq() { # WHAT ACTUAL EXPECTED
  if [[ "$2" == "$3" ]]; then pass "$1"; else fail "$1: got [$2], expected [$3]"; fi
}
expect_contains() { # WHAT HAYSTACK NEEDLE
  if [[ "$2" == *"$3"* ]]; then pass "$1"; else fail "$1: [$2] does not contain [$3]"; fi
}
check_shares() { # WHAT COUNTS WEIGHTS (space-separated): chi-square against the weights, p > 0.001
  local res
  if res=$(python3 "$lib/stats.py" chisq "$(tr ' ' , <<<"$2")" "$(tr ' ' , <<<"$3")"); then
    pass "$1: $res"
  else
    fail "$1: $res"
  fi
}
within() { # WHAT VALUE BOUND
  if ((sanitized == 0)); then
    check "$1 ($2 <= $3)" le "$2" "$3"
  elif le "$2" "$3"; then
    figure "$1: $2 (bound $3; sanitizer build: reported, not asserted)"
  else
    figure "$1: $2 OVER its bound $3 (sanitizer build: reported, not asserted)"
  fi
}
known_limitation() { nknown=$((nknown + 1)); echo "KNOWN - $*"; }
figure() { figures+=("$*"); echo "#   figure: $*"; }
finish() {
  if ((${#figures[@]})); then
    echo "# $harness_name figures:"
    printf '#   %s\n' "${figures[@]}"
  fi
  ((nknown)) && echo "# $nknown known limitation(s) reported above (not counted as failures)"
  local f
  for f in "${failures[@]+"${failures[@]}"}"; do echo "FAILED: $f"; done
  echo "# $harness_name runtime: $(($(date +%s) - started)) s"
  echo "$passed passed, $failed failed"
  ((failed == 0))
  exit $?
}

# ---- pre-flight ----

needs_root() { # WHY
  [[ $(id -u) -eq 0 ]] && return 0
  fail "needs root ($1)"
  finish
}
missing() { # WHAT... : each one a failure, then the run ends
  (($#)) || return 0
  local what
  for what in "$@"; do fail "$what"; done
  finish
}
needs_tools() { # TOOL...
  local tool package out=()
  for tool in "$@"; do
    command -v "$tool" >/dev/null && continue
    case "$tool" in
      promtool) package=prometheus ;;
      systemd-analyze) package=systemd ;;
      ab) package=apache2-utils ;;
      nft) package=nftables ;;
      ip | ss) package=iproute2 ;;
      flock) package=util-linux ;;
      dpdk-telemetry.py) package=dpdk ;;
      *) package=$tool ;;
    esac
    out+=("missing tool: $tool (Debian package $package; scripts/bootstrap installs it)")
  done
  missing "${out[@]+"${out[@]}"}"
}
needs_python_modules() { # MODULE...
  local module out=()
  for module in "$@"; do
    python3 -c "import $module" 2>/dev/null ||
      out+=("missing python3 module $module (Debian package python3-$module; scripts/bootstrap installs it)")
  done
  missing "${out[@]+"${out[@]}"}"
}
needs_binaries() { # PATH...
  local bin out=()
  for bin in "$@"; do [[ -x $bin ]] || out+=("missing $bin (build it first: meson compile -C $build)"); done
  missing "${out[@]+"${out[@]}"}"
}

# ---- files, processes, cleanup ----

make_workdir() {
  work=$(mktemp -d "/tmp/evenflow-$harness_name.XXXXXX")
  chmod 755 "$work"
  sock=$work/evenflow.sock
  log=$work/evenflowd.log
}
remove_on_teardown() { runtime_paths+=("$@"); }

teardown() {
  local p
  for p in "${bgpids[@]+"${bgpids[@]}"}"; do kill "$p" 2>/dev/null; done
  for p in "${bgpids[@]+"${bgpids[@]}"}"; do
    for _ in $(seq 1 30); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null
  done
  bgpids=()
  stop_daemon
  ((topology)) && "$root/scripts/netns" down >/dev/null 2>&1
  for p in "${runtime_paths[@]+"${runtime_paths[@]}"}"; do
    # shellcheck disable=SC2086 # globs wanted
    rm -rf -- $p
  done
  return 0
}
harness_cleanup() {
  teardown
  if [[ -n $work && -n ${KEEP:-} ]]; then
    echo "# KEEP: $work is left"
  elif [[ -n $work ]]; then
    rm -rf "$work"
  fi
}

# ---- evenflowd ----

ctl() { "$evenctl" --socket "$sock" "$@"; }
json() { # EXPR (on r) < JSON
  python3 -c 'import json,sys; r=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"
}

start_daemon() { # CONFIG [LOG]
  local config=$1 dlog=${2:-$log} i
  # LeakSanitizer (sanitizer builds): leaks inside system libraries, see the file.
  LSAN_OPTIONS="suppressions=$lib/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}" \
    "${daemon_in[@]+"${daemon_in[@]}"}" "$evenflowd" --config "$config" >>"$dlog" 2>&1 &
  pid=$!
  for ((i = 0; i < 200; i++)); do
    ctl status >/dev/null 2>&1 && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  fail "evenflowd (--config $config) does not answer on $sock; its log ends:" "$(tail -30 "$dlog")"
  return 1
}

stop_daemon() { # -> evenflowd's exit status (0 if none runs)
  [[ -n $pid ]] || return 0
  local p=$pid rc
  pid=
  kill -TERM "$p" 2>/dev/null
  for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$p" 2>/dev/null
  wait "$p" 2>/dev/null
  rc=$?
  return $rc
}

# ---- the namespace topology (e2e) ----

# dpdk_owned NS IFACE: the kernel's stack in NS ignores IFACE as it would a NIC bound
# to DPDK (no address, no IPv6, every frame dropped at the netdev ingress hook, which
# runs after packet sockets: net_af_packet on IFACE still reads every frame).
dpdk_owned() {
  ip netns exec "$1" sysctl -qw "net.ipv6.conf.$2.disable_ipv6=1" &&
    ip netns exec "$1" nft -f - <<NFT
table netdev dpdk_owned_${2//-/_} {
  chain ingress { type filter hook ingress device "$2" priority 0; policy drop; }
}
NFT
}

take_topology_lock() {
  ((topology_locked)) && return 0
  local wait_s=${EVENFLOW_E2E_LOCK_WAIT:-120}
  exec 9>/run/evenflow-e2e.lock
  if ! flock -n 9; then
    echo "# another run on the ef-* topology holds /run/evenflow-e2e.lock: waiting up to $wait_s s"
    if ! flock -w "$wait_s" 9; then
      fail "another run on the ef-* topology holds /run/evenflow-e2e.lock (waited $wait_s s)"
      finish
    fi
  fi
  topology_locked=1
  if ip netns list 2>/dev/null | grep -q '^ef-lb\b' && [[ -n $(ip netns pids ef-lb 2>/dev/null) ]]; then
    fail "processes run in ef-lb without the lock (scripts/demo --keep, or stale: scripts/netns down)"
    finish
  fi
}

topology_up() { # BACKENDS
  take_topology_lock
  topology=1
  if ! "$root/scripts/netns" up --backends "$1"; then
    fail "scripts/netns up"
    finish
  fi
  driver=$("$root/scripts/netns" driver)
  mapfile -t vdevs < <("$root/scripts/netns" eal)
  echo "# DPDK driver: $driver"
  if ! "$root/scripts/netns" serve "$work/srv" >"$work/serve.log" 2>&1; then
    fail "backend servers start" "$(cat "$work/serve.log")"
    finish
  fi
  prefix=ef-$harness_name-$$
  daemon_in=(ip netns exec ef-lb)
}

lb_config_head() { # FLOW_CAPACITY
  config_head --memory 1024 --timeouts '{ syn = "5s", established = "300s", closing = "10s" }' \
    "$prefix" "$sock" "" "$1" 1 "${driver}0" "${driver}1" "${vdevs[@]}"
}

in_client() { ip netns exec ef-client "$@"; }
wait_vip_http() { # until HTTP through the VIP answers (10 s), else a failure that ends the run
  for _ in $(seq 1 50); do
    if in_client curl -sf -m 2 -o /dev/null http://10.10.0.100/hello; then return 0; fi
    sleep 0.2
  done
  fail "HTTP through the VIP answers"
  finish
}
now() { date +%s.%N; }
elapsed() { python3 "$root/test/e2e/health.py" elapsed "$1" "$2"; }
le() { python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) <= float(sys.argv[2]) else 1)' "$1" "$2"; }
waitlog() { # AFTER TIMEOUT KEY=VALUE... [--count N] -> epoch of the matching line
  local after=$1 timeout=$2
  shift 2
  python3 "$root/test/e2e/health.py" waitlog "$log" --after "$after" --timeout "$timeout" "$@"
}
loglines() { # AFTER KEY=VALUE... -> the matching lines
  local after=$1
  shift
  python3 "$root/test/e2e/health.py" loglines "$log" --after "$after" "$@"
}

check_nothing_left() {
  teardown
  local left=""
  ip netns list | grep -q '^ef-' && left+=" namespaces"
  [[ -e /var/run/dpdk/$prefix ]] && left+=" dpdk-runtime-dir"
  [[ -e $sock ]] && left+=" socket"
  pgrep -f "$work" >/dev/null && left+=" processes"
  if [[ -z $left ]]; then pass "teardown leaves nothing behind"; else fail "teardown left:$left"; fi
}

check_daemon_log() {
  if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:|level=(error|fatal)' "$log"; then
    fail "evenflowd's log has errors or sanitizer reports:" \
      "$(grep -E -m 20 'ERROR|runtime error:|level=(error|fatal)' "$log")"
  else
    pass "evenflowd's log has no errors or sanitizer reports"
  fi
}
