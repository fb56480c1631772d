#!/usr/bin/env bash
# evengen tier: the generator's pcap output checked by an independent reader, its
# command-line errors, and full TCP lifecycles and 1500-byte packets through a real
# evenflowd on memif, every packet checked by evengen.
# Usage: run.sh BUILD_DIR
set -uo pipefail

build=${1:?usage: run.sh BUILD_DIR}
build=$(cd "$build" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
evengen=$build/app/evengen
evenflowd=$build/app/evenflowd
evenctl=$build/app/evenctl

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "ok   - $*"; }
fail() { failed=$((failed + 1)); echo "FAIL - $*"; }
finish() {
  echo "$passed passed, $failed failed"
  ((failed == 0))
  exit $?
}
if [[ $(id -u) -ne 0 ]]; then
  fail "needs root (DPDK memif, /run)"
  finish
fi

work=$(mktemp -d /tmp/evenflow-evengen-test.XXXXXX)
sockets=/run/evenflow-evengen-test
lb_pid=
cleanup() {
  [[ -n $lb_pid ]] && kill "$lb_pid" 2>/dev/null && wait "$lb_pid" 2>/dev/null
  [[ -n ${KEEP:-} ]] && return; rm -rf "$work" "$sockets" /var/run/dpdk/evengen-test-*
}
trap cleanup EXIT
mkdir -p "$sockets"

eal_solo() { # EAL arguments for an evengen that needs no peer
  echo -l 0 --no-huge -m 256 --no-pci --log-level='*:warning' --file-prefix "evengen-test-$1"
}
memif() { # ROLE: both memif ports
  echo "--vdev=net_memif0,role=$1,socket=$sockets/client.sock,socket-abstract=no" \
    "--vdev=net_memif1,role=$1,socket=$sockets/backend.sock,socket-abstract=no"
}

# --- pcap: the workload for hardware replay -------------------------------------
pcap_case() { # MODE FLOWS PACKETS [EXTRA...]
  local mode=$1 flows=$2 packets=$3
  shift 3
  local file=$work/$mode.pcap
  # shellcheck disable=SC2046
  if ! "$evengen" --mode "$mode" --flows "$flows" --pcap "$file" "$@" --json "$work/$mode-pcap.json" \
    -- $(eal_solo "pcap-$mode") >"$work/$mode-pcap.log" 2>&1; then
    fail "pcap $mode: evengen failed: $(tail -2 "$work/$mode-pcap.log")"
    return
  fi
  local out
  if out=$(python3 "$here/check_pcap.py" "$file" "$mode" "$flows" "$packets"); then
    pass "pcap $mode: $out"
  else
    fail "pcap $mode: $out"
  fi
}
pcap_case established 1000 3000 --pcap-packets 3000 --size 128
pcap_case syn 5000 5000
pcap_case lifecycle 300 2400 # per flow: SYN, ACK, 4 data, FIN, ACK

# --- bad input: a clear message and exit 2, nothing started ---------------------
usage_case() { # EXPECTED_TEXT ARGS...
  local want=$1
  shift
  local out rc
  out=$("$evengen" "$@" 2>&1)
  rc=$?
  if [[ $rc -eq 2 && $out == *"$want"* ]]; then
    pass "rejects $*: $want"
  else
    fail "evengen $*: exit $rc, output [$out], expected exit 2 and [$want]"
  fi
}
usage_case "--flows: expected a number from 1 to 16777216, got '0'" --flows 0
usage_case "--flows: expected a number from 1 to 16777216, got '20000000'" --flows 20000000
usage_case "--size: expected a number from 64 to 1518, got '63'" --size 63
usage_case "--mode: 'bogus': expected established, syn or lifecycle" --mode bogus
usage_case "--vip: '10.10.0.100' is not ADDR:PORT" --vip 10.10.0.100
usage_case "--backends: '10.20.0.11:99999' is not ADDR:PORT" --backends 10.20.0.11:99999
usage_case "a 5-tuple swapper cannot answer a lifecycle" --reflect --mode lifecycle
usage_case "unknown option --florps" --florps 3
# shellcheck disable=SC2046
usage_case "link down after 10 s (is the peer running?)" --duration 1 -- $(eal_solo nopeer) $(memif client)

# --- through evenflowd ------------------------------------------------------------
cat >"$work/evenflowd.toml" <<TOML
[eal]
args = ["-l", "0-1", "--no-huge", "-m", "512", "--no-pci", "--file-prefix", "evengen-test-lb",
        "--log-level=*:warning",
        "--vdev=net_memif0,role=server,socket=$sockets/client.sock,socket-abstract=no",
        "--vdev=net_memif1,role=server,socket=$sockets/backend.sock,socket-abstract=no"]
[control]
socket = "$sockets/evenflow.sock"
metrics = ""
[dataplane]
workers = [1]
flow_capacity = 262144
[[interfaces]]
name = "client-side"
device = "net_memif0"
address = "10.10.0.2/24"
gateway = "10.10.0.1"
[[interfaces]]
name = "backend-side"
device = "net_memif1"
address = "10.20.0.1/24"
[[pools]]
name = "web"
backends = [
  { address = "10.20.0.11", port = 8080, weight = 1 },
  { address = "10.20.0.12", port = 8080, weight = 1 },
  { address = "10.20.0.13", port = 8080, weight = 2 },
  { address = "10.20.0.14", port = 8080, weight = 1 },
]
health = { kind = "none" }
[[services]]
name = "web"
vip = "10.10.0.100"
port = 80
pool = "web"
TOML
"$evenflowd" --config "$work/evenflowd.toml" >"$work/evenflowd.log" 2>&1 &
lb_pid=$!
for _ in $(seq 100); do
  "$evenctl" --socket "$sockets/evenflow.sock" status >/dev/null 2>&1 && break
  sleep 0.2
done
if ! "$evenctl" --socket "$sockets/evenflow.sock" status >/dev/null 2>&1; then
  fail "evenflowd did not start: $(tail -3 "$work/evenflowd.log")"
  finish
fi

gen() { # NAME ARGS... : runs evengen against evenflowd, JSON in $work/NAME.json
  local name=$1
  shift
  # shellcheck disable=SC2046
  "$evengen" "$@" --json "$work/$name.json" \
    -- -l 0 --no-huge -m 512 --no-pci --log-level='*:warning' --file-prefix evengen-test-gen \
    $(memif client) >"$work/$name.log" 2>&1
}
json() { # NAME PYTHON_EXPR (on r)
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' \
    "$work/$1.json" "$2"
}

# Full lifecycles: SYN, SYN-ACK from the backend side, ACK, 4 data, FIN, FIN-ACK, ACK.
if gen lifecycle --mode lifecycle --flows 20000 --duration 20; then
  pass "lifecycle: every packet back, intact, in order, on its flow's backend"
else
  fail "lifecycle: evengen reported loss or damage: $(tail -1 "$work/lifecycle.log")"
fi
if [[ -s $work/lifecycle.json ]]; then
  done_=$(json lifecycle 'r["measured"]["lifecycles_completed"]')
  [[ $done_ == 20000 ]] && pass "lifecycle: 20000 of 20000 connections completed" ||
    fail "lifecycle: $done_ of 20000 connections completed"
  errors=$(json lifecycle 'r["measured"]["errors"]["total"]')
  loss=$(json lifecycle 'r["measured"]["loss"]')
  [[ $errors == 0 && $loss == 0 ]] && pass "lifecycle: 0 errors, 0 lost" ||
    fail "lifecycle: $errors errors, $loss lost"
  # Weights 1:1:2:1: the distribution of 20000 new flows against 20/20/40/20 %.
  chi=$(json lifecycle 'sum((b["flows"] - 20000 * e) ** 2 / (20000 * e) for b, e in zip(r["measured"]["backends"], [.2, .2, .4, .2]))')
  shares=$(json lifecycle '" ".join("%.1f%%" % (100 * b["share"]) for b in r["measured"]["backends"])')
  # chi-square, 3 degrees of freedom: 16.27 is p = 0.001.
  if python3 -c "import sys; sys.exit(0 if float('$chi') < 16.27 else 1)"; then
    pass "lifecycle: shares $shares against 20/20/40/20 (chi2 $chi, df 3)"
  else
    fail "lifecycle: shares $shares against 20/20/40/20 (chi2 $chi >= 16.27)"
  fi
  rate=$(json lifecycle '"%.0f" % r["measured"]["lifecycles_per_s"]')
  echo "#   figure: $rate connections/s (8 packets each through the balancer)"
fi
"$evenctl" --socket "$sockets/evenflow.sock" stats --json >"$work/lb-stats.json"
echo "#   evenflowd drops: $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["drops"])' "$work/lb-stats.json")"
lb_new=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["totals"]["new_flows"])' "$work/lb-stats.json")
[[ $lb_new == 20000 ]] && pass "evenflowd counted the same 20000 new flows" ||
  fail "evenflowd counted $lb_new new flows, evengen sent 20000"

# Established flows, 1500-byte packets both ways.
if gen big --mode established --flows 10000 --size 1518 --duration 1; then
  pass "1518-byte packets, 10000 flows both ways: intact, in order, sticky"
else
  fail "1518-byte packets: $(tail -1 "$work/big.log")"
fi
if [[ -s $work/big.json ]]; then
  landed=$(json big 'r["warmup"]["flows_never_landed"]')
  got=$(json big 'r["measured"]["received"]["reverse"] > 0 and r["measured"]["received"]["forward"] > 0')
  [[ $landed == 0 && $got == True ]] && pass "1518-byte: all flows landed, both directions carried" ||
    fail "1518-byte: $landed flows never landed, both directions: $got"
fi

# A rated run: the offered rate is what gets through, with nothing lost.
if gen rated --mode established --flows 5000 --rate 200000 --duration 1; then
  mpps=$(json rated '"%.3f" % r["measured"]["mpps"]')
  python3 -c "import sys; sys.exit(0 if abs($mpps - 0.2) < 0.02 else 1)" &&
    pass "rated: 0.2 Mpps offered, $mpps Mpps received, nothing lost" ||
    fail "rated: 0.2 Mpps offered, $mpps Mpps received"
else
  fail "rated: $(tail -1 "$work/rated.log")"
fi
finish
