#!/usr/bin/env bash
# evengen tier: the generator's pcap output checked by an independent reader, its
# command-line errors, and full TCP lifecycles and 1500-byte packets through a real
# evenflowd on memif, every packet checked by evengen; then evenflowd with two workers
# (hand-off between them), evengen on both memif queue pairs, and --sync's pause.
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
usage_case "--queues: expected a number from 1 to 16, got '0'" --queues 0
usage_case "--queues: expected a number from 1 to 16, got '17'" --queues 17
usage_case "--sync: needs stdout for its line" --sync --json -
usage_case "--flood: a flood runs beside connections: use --mode lifecycle" --flood 1000
usage_case "--flood-base: the flood's /16 must not be the clients'" --mode lifecycle \
  --flood 1000 --flood-base 172.16.0.0
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

# A SYN flood from random sources (172.31.0.0/16) beside connections, the backends
# answering it: counted apart from the connections, of which at least 99% complete (the
# bench's criterion; scripts/bench raises the flood until they do not).
gen flood --mode lifecycle --flows 2000 --rate 2000 --duration 1 --flood 20000 --flood-answer
if [[ -s $work/flood.json ]]; then
  read -r done_ sent got errors < <(result flood '"%d %d %d %d" % (
    r["measured"]["lifecycles_completed"], r["measured"]["flood"]["sent"],
    r["measured"]["flood"]["received"], r["measured"]["errors"]["total"])')
  [[ $done_ -ge 1980 && $errors == 0 && $sent -ge 15000 && $got -gt 0 ]] &&
    pass "flood: $done_ of 2000 connections completed beside $sent flood SYNs sent, $got flood packets received, 0 errors" ||
    fail "flood: $done_ of 2000 connections completed, $errors errors, flood $sent SYNs sent, $got received"
else
  fail "flood: $(tail -1 "$work/flood.log")"
fi

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

# A rated run: the offered rate is what gets through, with nothing lost. When the
# machine takes evengen's core away (other jobs on a 2-core VM), the sends it missed are
# written off (rate_deficit) rather than caught up in a burst: sent plus written off
# keeps to the schedule, and what was sent all arrives.
if gen rated --mode established --flows 5000 --rate 200000 --duration 1; then
  read -r mpps sched < <(result rated '"%.3f %.3f" % (r["measured"]["mpps"],
    (r["measured"]["sent"]["forward"] + r["measured"]["sent"]["reverse"]
     + r["measured"]["rate_deficit"]) / 200000)')
  deficit=$(result rated 'r["measured"]["rate_deficit"]')
  python3 -c "import sys; sys.exit(0 if 0.97 <= $sched <= 1.01 else 1)" &&
    pass "rated: 0.2 Mpps offered, $mpps Mpps received, nothing lost, schedule kept ($sched; $deficit sends written off)" ||
    fail "rated: 0.2 Mpps offered for 1 s, sent + written off = $sched of the schedule, $mpps Mpps received"
else
  fail "rated: $(tail -1 "$work/rated.log")"
fi

# --sync: after the warm-up evengen says "ready" and waits; the device's counters read
# in that pause hold the warm-up and nothing of the measured phase; after it, "done"
# and it waits again with the links up: the counters then hold all of it.
ctl stats --json >"$work/sync-before.json"
coproc SYNC {
  # shellcheck disable=SC2046
  exec "$evengen" --mode established --flows 2000 --duration 0.5 --sync \
    --json "$work/sync.json" -- -l 0 --no-huge -m 512 --no-pci --log-level='*:warning' \
    --file-prefix "$prefix-gen" $(memif client) 2>"$work/sync.log"
}
line=
read -r -t 30 line <&"${SYNC[0]}"
if [[ $line == ready ]]; then
  ctl stats --json >"$work/sync-pause.json"
  sleep 0.3
  ctl stats --json >"$work/sync-pause2.json"
  echo go >&"${SYNC[1]}"
  line=
  read -r -t 30 line <&"${SYNC[0]}"
  ctl stats --json >"$work/sync-after.json"
  alive=$(kill -0 "$SYNC_PID" 2>/dev/null && echo yes)
  echo go >&"${SYNC[1]}"
  wait "$SYNC_PID"
  rc=$?
  # TCP the balancer forwarded, either way (ARP is not counted there).
  fwd() { json 'r["totals"]["to_backend"] + r["totals"]["to_client"]' <"$work/$1.json"; }
  warm=$(($(fwd sync-pause) - $(fwd sync-before)))
  idle=$(($(fwd sync-pause2) - $(fwd sync-pause)))
  measured=$(($(fwd sync-after) - $(fwd sync-pause2)))
  sent=$(result sync 'r["warmup"]["sent"]["forward"]')
  msent=$(result sync 'r["measured"]["sent"]["forward"] + r["measured"]["sent"]["reverse"]')
  [[ $rc == 0 && $line == done && $alive == yes && $idle == 0 && $warm == "$sent" &&
    $measured == "$msent" ]] &&
    pass "--sync: warm-up ($sent packets) before \"ready\", nothing during the pause, $msent between the go line and \"done\"" ||
    fail "--sync: exit $rc, second line [$line], waiting: ${alive:-no}; balancer forwarded $warm in the warm-up (evengen sent $sent), $idle in the pause, $measured before \"done\" (evengen sent $msent)"
else
  fail "--sync: no \"ready\" line within 30 s: $(tail -2 "$work/sync.log")"
  kill "$SYNC_PID" 2>/dev/null
fi
stop_daemon || fail "evenflowd (one worker) did not stop cleanly"

# Two workers on one CPU (lcores 1 and 2 on CPU 1): memif gives evenflowd no RSS, so
# both ports hand off; evengen configures both queue pairs, sends on queue 0 (worker 0
# receives everything) and receives from both workers.
# shellcheck disable=SC2046
{
  config_head --lcores 0@0,1@1,2@1 --gateway 10.10.0.1 "$prefix-lb2" "$sock" "" 262144 "1, 2" \
    net_memif0 net_memif1 "--log-level=*:warning" $(memif server)
  config_pool web '{ kind = "none" }' -- \
    10.20.0.11:8080:1 10.20.0.12:8080:1 10.20.0.13:8080:2 10.20.0.14:8080:1
  config_service web 10.10.0.100 80 web
} >"$work/evenflowd-2w.toml"
start_daemon "$work/evenflowd-2w.toml" || finish
steering=$(ctl status --json | json '",".join(p["steering"] for p in r["ports"])')
expect_eq "two workers on memif: both ports hand off" "$steering" "handoff,handoff"
if gen two-workers --mode established --flows 20000 --duration 1 --queues 2; then
  pass "--queues 2, two workers: every packet back, intact, in order, on its flow's backend"
else
  fail "--queues 2, two workers: $(tail -1 "$work/two-workers.log")"
fi
if gen two-workers-syn --mode syn --flows 20000 --duration 1 --queues 2 --client-base 172.20.0.0; then
  pass "--queues 2, two workers, new flows: every SYN reached a backend"
else
  fail "--queues 2, two workers, new flows: $(tail -1 "$work/two-workers-syn.log")"
fi
ctl stats --json >"$work/lb2-stats.json"
# shellcheck disable=SC2016
read -r w0_rx w1_rx out in w0_in w1_in < <(json '" ".join(str(x) for x in [
  r["workers"][0]["rx_packets"], r["workers"][1]["rx_packets"],
  r["totals"]["handoff_out"], r["totals"]["handoff_in"],
  r["workers"][0]["handoff_in"], r["workers"][1]["handoff_in"]])' <"$work/lb2-stats.json")
# evengen sends on queue 0 only: worker 0 receives all, hands the other worker's
# connections over (about half), and both workers' output reached evengen (no loss).
[[ $w1_rx == 0 && $w0_rx -gt 0 && $out == "$in" && $out -gt $((w0_rx / 3)) && $w1_in == "$out" && $w0_in == 0 ]] &&
  pass "hand-off: worker 0 received $w0_rx, handed $out to worker 1 (all arrived)" ||
  fail "hand-off: worker rx $w0_rx/$w1_rx, handoff out $out in $in (received from the other: $w0_in/$w1_in)"
stop_daemon || fail "evenflowd (two workers) did not stop cleanly"
finish
