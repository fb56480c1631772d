#!/usr/bin/env bash
# Two workers under real TCP (scripts/netns topology), each port with two queues:
# AF_PACKET spreads packets over the queues by the kernel's own hash, never by the
# client alone, so evenflowd must hand packets to the worker that owns their
# connection (status reports "handoff" per port).
#
# 1. 2,000 HTTP requests on separate connections: no failure; the backends' own access
#    logs match the weights (chi-square p > 0.001) and evenflowd's new_flows.
# 2. Both workers own connections; packets were handed off; no reply was rewritten
#    without its flow entry; no packet was dropped for a full hand-off ring.
# 3. 20 long-lived echo connections across 10 applies: no reset, no stall.
#
#   test/e2e/workers.sh BUILD_DIR
set -uo pipefail

# shellcheck source=test/lib/harness.sh
source "$(dirname "$0")/../lib/harness.sh"
harness_init e2e-workers "${1:?usage: test/e2e/workers.sh BUILD_DIR}"
e2e=$root/test/e2e/e2e.py
needs_root "network namespaces, DPDK"
needs_tools nginx curl python3 ethtool ip flock
needs_binaries "$evenflowd" "$evenctl"
make_workdir

# AF_PACKET: its qpairs give each worker a queue (AF_XDP on veth has one).
export EVENFLOW_NETNS_DRIVER=net_af_packet
topology_up 4
vdevs=("--vdev=net_af_packet0,iface=lb-c,qpairs=2" "--vdev=net_af_packet1,iface=lb-b,qpairs=2")

weights="1:1 2:1 3:2 4:1"
write_config() { # FILE EXTRA_WEIGHT_FOR_B4
  local web=() spec
  for spec in $weights; do
    local k=${spec%%:*} w=${spec#*:}
    [[ $k == 4 ]] && w=$2
    web+=("10.20.0.$((10 + k)):8080:$w")
  done
  {
    config_head --lcores 0@0,1@1,2@1 --memory 1024 \
      "$prefix" "$sock" "" 65536 "1, 2" "${driver}0" "${driver}1" "${vdevs[@]}"
    config_pool web '{ kind = "none" }' -- "${web[@]}"
    config_pool echo '{ kind = "none" }' -- 10.20.0.11:9000:1 10.20.0.12:9000:1 \
      10.20.0.13:9000:1 10.20.0.14:9000:1
    config_service web 10.10.0.100 80 web
    config_service echo 10.10.0.100 9000 echo
  } >"$1"
}
write_config "$work/base.toml" 1
start_daemon "$work/base.toml" || finish
status=$(ctl --json status)
expect_eq "two workers run" "$(json 'len(r["workers"])' <<<"$status")" "2"
expect_eq "both ports hand packets to their owners" \
  "$(json '[p["steering"] for p in r["ports"]]' <<<"$status")" "['handoff', 'handoff']"

wait_vip_http

# ---- 1. 2,000 requests ----
for k in 1 2 3 4; do : >"$work/srv/b$k/access.log"; done
before=$(ctl --json stats)
flows_before=$(ctl --json backends web | json 'sum(b["new_flows"] for b in r["backends"])')
out=$(in_client python3 "$e2e" http http://10.10.0.100/hello 2000 --concurrency 16)
rc=$?
echo "#   client: $out"
expect_eq "test 1: 2000 requests, 0 failures" "$rc" "0"
sleep 0.5
counts=() ws=()
for spec in $weights; do
  k=${spec%%:*}
  counts+=("$(grep -c '"GET /hello ' "$work/srv/b$k/access.log")")
  ws+=("${spec#*:}")
done
echo "#   access logs: ${counts[*]} (weights ${ws[*]})"
check_shares "test 1: distribution matches weights" "${counts[*]}" "${ws[*]}"
flows=$(ctl --json backends web | json 'sum(b["new_flows"] for b in r["backends"])')
total=$((counts[0] + counts[1] + counts[2] + counts[3]))
expect_eq "test 1: evenflowd's new_flows equal the access logs" "$((flows - flows_before))" "$total"

# ---- 2. ownership ----
# Counters are read while packets may still be on their way: read until quiet.
after=$(ctl --json stats)
for _ in $(seq 1 30); do
  sleep 0.1
  again=$(ctl --json stats)
  # Quiet, and no hand-off in flight (health probes' replies keep coming now and then,
  # and the workers' counters are read one after the other).
  [[ $(json 'r["totals"]' <<<"$again") == $(json 'r["totals"]' <<<"$after") ]] &&
    [[ $(json 'r["totals"]["handoff_out"] - r["totals"]["handoff_in"] - r["drops"].get("handoff_full", 0)' <<<"$again") == 0 ]] && { after=$again; break; }
  after=$again
done
delta() { # COUNTER
  echo $(($(json "r['totals']['$1']" <<<"$after") - $(json "r['totals']['$1']" <<<"$before")))
}
handed=$(delta handoff_out)
figure "hand-offs during 2,000 requests: $handed packets ($(delta handoff_in) received), of $(delta rx_packets) received"
check "test 2: packets were handed to their owners ($handed)" test "$handed" -gt 1000
# Since the start, not over the test: the first reading may catch one in flight.
expect_eq "test 2: every hand-off since the start arrived (or was counted as handoff_full)" \
  "$(json 'r["totals"]["handoff_out"]' <<<"$after")" \
  "$(json 'r["totals"]["handoff_in"] + r["drops"].get("handoff_full", 0)' <<<"$after")"
expect_eq "test 2: no reply rewritten without its flow entry" "$(delta reverse_stateless)" "0"
expect_eq "test 2: no packet dropped for a full hand-off ring" \
  "$(json "r['drops'].get('handoff_full', 0)" <<<"$after")" "0"
per_worker=$(ctl --json status | json '[w["rx_packets"] for w in r["workers"]]')
echo "#   packets received per worker: $per_worker"
check "test 2: both workers receive traffic" \
  python3 -c "import sys; sys.exit(0 if min($per_worker) > 0 else 1)"

# ---- 3. long-lived connections across applies ----
write_config "$work/b4x2.toml" 2
out=$(in_client timeout 120 python3 "$e2e" longlived --evenctl "$evenctl" --socket "$sock" \
  --conns 20 --interval 0.1 --stall 2.0 --applies 10 --gap 0.2 \
  --configs "$work/b4x2.toml,$work/base.toml")
rc=$?
echo "#   $out"
expect_eq "test 3: 20 long-lived connections across applies: no reset, no stall" "$rc" "0"

check_daemon_log
finish
