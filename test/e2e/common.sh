# Shared by the e2e scripts that run their own evenflowd in the scripts/netns
# topology (health.sh, replay.sh): result counting, pre-flight checks, one run at
# a time, a work dir, teardown on every exit, and small helpers.
# The sourcing script sets: E2E_NAME, E2E_TOOLS, evenflowd, evenctl, netns, hp, started.
# shellcheck shell=bash

passed=0
failed=0
known=0
pass() { passed=$((passed + 1)); echo "ok   - $*"; }
fail() { failed=$((failed + 1)); echo "FAIL - $*"; }
knownl() { known=$((known + 1)); echo "KNOWN - $*"; }
check() { # WHAT COMMAND...
  local what=$1
  shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}
figures=()
figure() { figures+=("$*"); echo "#   figure: $*"; }
finish() {
  if ((${#figures[@]})); then
    echo "# $E2E_NAME figures:"
    printf '#   %s\n' "${figures[@]}"
  fi
  ((known)) && echo "# $known known limitation(s) reported above (not counted as failures)"
  echo "$E2E_NAME e2e runtime: $(($(date +%s) - started)) s"
  echo "$passed passed, $failed failed"
  ((failed == 0))
  exit $?
}

if [[ $(id -u) -ne 0 ]]; then
  fail "needs root (network namespaces, DPDK)"
  finish
fi
for tool in $E2E_TOOLS; do
  command -v "$tool" >/dev/null || { fail "missing tool: $tool (run scripts/bootstrap)"; finish; }
done
for bin in "$evenflowd" "$evenctl"; do
  [[ -x $bin ]] || { fail "missing $bin (build it first)"; finish; }
done
# One e2e script at a time: they share the ef- names.
exec 9>/run/evenflow-e2e.lock
if ! flock -n 9; then
  fail "another e2e script holds /run/evenflow-e2e.lock"
  finish
fi
if ip netns list 2>/dev/null | grep -q '^ef-lb\b' && [[ -n $(ip netns pids ef-lb 2>/dev/null) ]]; then
  fail "processes run in ef-lb: another e2e run is active (scripts/netns down if stale)"
  finish
fi

work=$(mktemp -d "/tmp/evenflow-$E2E_NAME.XXXXXX")
chmod 755 "$work"
sock=$work/evenflow.sock
log=$work/evenflowd.log
prefix=ef-$E2E_NAME-$$
pid=
bgpids=()
teardown() {
  local p
  for p in "${bgpids[@]}"; do kill "$p" 2>/dev/null; done
  bgpids=()
  if [[ -n $pid ]]; then
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
    pid=
  fi
  "$netns" down >/dev/null 2>&1
  rm -rf "/var/run/dpdk/$prefix"
}
cleanup() {
  teardown
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ctl() { "$evenctl" --socket "$sock" "$@"; }
in_client() { ip netns exec ef-client "$@"; }
json() { python3 -c 'import json,sys; r=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
now() { date +%s.%N; }
elapsed() { python3 "$hp" elapsed "$1" "$2"; }
le() { python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) <= float(sys.argv[2]) else 1)' "$1" "$2"; }
waitlog() { # AFTER TIMEOUT KEY=VALUE... [--count N] -> epoch of the first matching line
  local after=$1 timeout=$2
  shift 2
  python3 "$hp" waitlog "$log" --after "$after" --timeout "$timeout" "$@"
}
