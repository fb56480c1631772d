#!/usr/bin/env bash
# evengen tier: the generator's pcap output checked by an independent reader, its
# command-line errors, and full TCP lifecycles and 1500-byte packets through a real
# evenflowd on memif, every packet checked by evengen.
# Usage: run.sh BUILD_DIR
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=test/lib/harness.sh
source "$here/../lib/harness.sh"
harness_init evengen "${1:?usage: run.sh BUILD_DIR}"
needs_root "DPDK memif, /run"
needs_tools python3
needs_binaries "$evengen" "$evenflowd" "$evenctl"
make_workdir
# memif sockets and the control socket; DPDK runtime dirs evengen-test-PID-*
sockets=/run/evenflow-evengen-test-$$
prefix=evengen-test-$$
sock=$sockets/evenflow.sock
mkdir -p "$sockets"
remove_on_teardown "$sockets" "/var/run/dpdk/$prefix-*"

eal_solo() { # EAL arguments for an evengen that needs no peer
  echo -l 0 --no-huge -m 256 --no-pci --log-level='*:warning' --file-prefix "$prefix-$1"
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
# shellcheck disable=SC2046
{
  config_head --gateway 10.10.0.1 "$prefix-lb" "$sock" "" 262144 1 net_memif0 net_memif1 \
    "--log-level=*:warning" $(memif server)
  config_pool web '{ kind = "none" }' -- \
    10.20.0.11:8080:1 10.20.0.12:8080:1 10.20.0.13:8080:2 10.20.0.14:8080:1
  config_service web 10.10.0.100 80 web
} >"$work/evenflowd.toml"
start_daemon "$work/evenflowd.toml" || finish

gen() { # NAME ARGS... : runs evengen against evenflowd, JSON in $work/NAME.json
  local name=$1
  shift
  # shellcheck disable=SC2046
  "$evengen" "$@" --json "$work/$name.json" \
    -- -l 0 --no-huge -m 512 --no-pci --log-level='*:warning' --file-prefix "$prefix-gen" \
    $(memif client) >"$work/$name.log" 2>&1
}
result() { json "$2" <"$work/$1.json"; } # NAME PYTHON_EXPR (on r, evengen's JSON NAME)

# Full lifecycles: SYN, SYN-ACK from the backend side, ACK, 4 data, FIN, FIN-ACK, ACK.
if gen lifecycle --mode lifecycle --flows 20000 --duration 20; then
  pass "lifecycle: every packet back, intact, in order, on its flow's backend"
else
  fail "lifecycle: evengen reported loss or damage: $(tail -1 "$work/lifecycle.log")"
fi
if [[ -s $work/lifecycle.json ]]; then
  done_=$(result lifecycle 'r["measured"]["lifecycles_completed"]')
  [[ $done_ == 20000 ]] && pass "lifecycle: 20000 of 20000 connections completed" ||
    fail "lifecycle: $done_ of 20000 connections completed"
  errors=$(result lifecycle 'r["measured"]["errors"]["total"]')
  loss=$(result lifecycle 'r["measured"]["loss"]')
  [[ $errors == 0 && $loss == 0 ]] && pass "lifecycle: 0 errors, 0 lost" ||
    fail "lifecycle: $errors errors, $loss lost"
  # Weights 1:1:2:1: the distribution of the new flows (chi-square, p > 0.001).
  flows=$(result lifecycle '",".join(str(b["flows"]) for b in r["measured"]["backends"])')
  shares=$(result lifecycle '" ".join("%.1f%%" % (100 * b["share"]) for b in r["measured"]["backends"])')
  if chi=$(python3 "$lib/stats.py" chisq "$flows" 1,1,2,1); then
    pass "lifecycle: shares $shares against 20/20/40/20 ($chi)"
  else
    fail "lifecycle: shares $shares against 20/20/40/20 ($chi)"
  fi
  rate=$(result lifecycle '"%.0f" % r["measured"]["lifecycles_per_s"]')
  figure "$rate connections/s (8 packets each through the balancer)"
fi
ctl stats --json >"$work/lb-stats.json"
echo "#   evenflowd drops: $(json 'r["drops"]' <"$work/lb-stats.json")"
lb_new=$(json 'r["totals"]["new_flows"]' <"$work/lb-stats.json")
[[ $lb_new == 20000 ]] && pass "evenflowd counted the same 20000 new flows" ||
  fail "evenflowd counted $lb_new new flows, evengen sent 20000"

# Established flows, 1500-byte packets both ways.
if gen big --mode established --flows 10000 --size 1518 --duration 1; then
  pass "1518-byte packets, 10000 flows both ways: intact, in order, sticky"
else
  fail "1518-byte packets: $(tail -1 "$work/big.log")"
fi
if [[ -s $work/big.json ]]; then
  landed=$(result big 'r["warmup"]["flows_never_landed"]')
  got=$(result big 'r["measured"]["received"]["reverse"] > 0 and r["measured"]["received"]["forward"] > 0')
  [[ $landed == 0 && $got == True ]] && pass "1518-byte: all flows landed, both directions carried" ||
    fail "1518-byte: $landed flows never landed, both directions: $got"
fi

# A rated run: the offered rate is what gets through, with nothing lost.
if gen rated --mode established --flows 5000 --rate 200000 --duration 1; then
  mpps=$(result rated '"%.3f" % r["measured"]["mpps"]')
  python3 -c "import sys; sys.exit(0 if abs($mpps - 0.2) < 0.02 else 1)" &&
    pass "rated: 0.2 Mpps offered, $mpps Mpps received, nothing lost" ||
    fail "rated: 0.2 Mpps offered, $mpps Mpps received"
else
  fail "rated: $(tail -1 "$work/rated.log")"
fi
finish
