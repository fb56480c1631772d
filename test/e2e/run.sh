#!/usr/bin/env bash
# End-to-end tier: real TCP through evenflowd between network namespaces
# (scripts/netns), real servers (nginx, an echo server), real clients.
#
#   test/e2e/run.sh BUILD_DIR [--skip-figures]
#
# 1. 2,000 HTTP requests on separate connections: no failure; per-backend counts in the
#    backends' own access logs match the weights (chi-square p > 0.001) and equal
#    evenflowd's per-backend new_flows.
# 2. A 50 MB download through the VIP arrives byte-exact (sha256).
# 3. 50 long-lived echo connections (every 100 ms) survive 50 applies that add and
#    remove other backends: no reset, no stall > 2 s.
# 4. Removing a backend moves only its flows: established connections stay, new ones
#    spread over the rest.
# 5. A figure: requests/s and throughput through evenflowd, directly to one backend, and
#    through nftables DNAT (numgen random) in the same topology.
# Ends with "N passed, N failed"; exits non-zero if anything failed. Leaves nothing
# behind (namespaces, veths, processes, sockets, files), also on failure or Ctrl-C.
set -uo pipefail

usage="usage: test/e2e/run.sh BUILD_DIR [--skip-figures]"
build=${1:?$usage}
shift
want_figures=1
for a in "$@"; do
  case "$a" in
    --skip-figures) want_figures=0 ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
done
# shellcheck source=test/lib/harness.sh
source "$(dirname "$0")/../lib/harness.sh"
harness_init e2e "$build"
# Figures from a sanitizer build would measure the sanitizer: skip them there.
if ((sanitized)); then
  want_figures=0
  echo "# sanitizer build: test 5 (figures) skipped"
fi
e2e=$root/test/e2e/e2e.py
needs_root "network namespaces, DPDK"
needs_tools nginx ab nft curl python3 ethtool ip flock
needs_binaries "$evenflowd" "$evenctl"
make_workdir

# ---- topology and servers ----
topology_up 6 # b1..b4 serve at first; b5, b6 come and go

backends() { # PORT "K:WEIGHT ..." -> ADDR:PORT:WEIGHT of backend bK, one per word
  local spec
  for spec in $2; do echo "10.20.0.$((10 + ${spec%%:*})):$1:${spec#*:}"; done
}
# write_config FILE "WEB_SPEC" "ECHO_SPEC": specs are "K:WEIGHT ..." for backend bK.
write_config() {
  local web echo_
  mapfile -t web < <(backends 8080 "$2")
  mapfile -t echo_ < <(backends 9000 "$3")
  {
    lb_config_head 65536
    config_pool web '{ kind = "none" }' -- "${web[@]}"
    config_pool echo '{ kind = "none" }' 'drain_timeout = "2s"' -- "${echo_[@]}"
    config_service web 10.10.0.100 80 web
    config_service echo 10.10.0.100 9000 echo
    config_skew 10s 2.0 500 alert
  } >"$1"
}

web_weights="1:1 2:1 3:2 4:1"
echo_base="1:1 2:1 3:1 4:1"
write_config "$work/base.toml" "$web_weights" "$echo_base"

start_daemon "$work/base.toml" || finish
pass "evenflowd starts on $driver (pid $pid)"
if ctl check "$work/base.toml" >"$work/check.txt" 2>&1; then pass "evenctl check accepts the e2e config"; else
  fail "evenctl check rejects the e2e config: $(cat "$work/check.txt")"
fi

# Readiness: the first request also resolves the client and the backends by ARP.
ready=0
for _ in $(seq 1 50); do
  if in_client curl -sf -m 2 -o /dev/null http://10.10.0.100/hello; then ready=1; break; fi
  sleep 0.2
done
if ((ready)); then pass "HTTP through the VIP answers"; else
  fail "HTTP through the VIP answers"
  ctl stats
  finish
fi

backend_ids=(1 2 3 4)
new_flows() { # prints "ADDR:PORT new_flows" for SERVICE
  ctl --json backends "$1" | python3 -c '
import json, sys
for b in json.load(sys.stdin)["backends"]:
    print(b["backend"], b["new_flows"])'
}

# ---- 1. 2,000 requests, distribution by the backends' own logs ----
echo "# test 1: 2000 HTTP requests on separate connections"
new_flows web >"$work/flows-before"
for k in "${backend_ids[@]}"; do : >"$work/srv/b$k/access.log"; done
# Our own client: exactly one connection per request (ab opens a few extra ones).
out=$(in_client python3 "$e2e" http http://10.10.0.100/hello 2000 --concurrency 16)
rc=$?
echo "#   client: $out"
if [[ $rc -eq 0 ]]; then
  pass "test 1: 2000 requests on 2000 connections, 0 failures"
else
  fail "test 1: 2000 requests: $out"
fi
client_count() { json "r['per_backend'].get('b$1', 0)" <<<"$out"; }
sleep 0.5 # nginx writes its log line after the response
new_flows web >"$work/flows-after"
counts=() weights=()
total_logged=0 foreign=0 mismatch=""
for k in "${backend_ids[@]}"; do
  access=$work/srv/b$k/access.log
  c=$(grep -c '"GET /hello ' "$access")
  f=$(grep '"GET /hello ' "$access" | grep -vc '^10\.10\.0\.10 ')
  counts+=("$c")
  weights+=("$(tr ' ' '\n' <<<"$web_weights" | awk -F: -v k="$k" '$1 == k {print $2}')")
  total_logged=$((total_logged + c))
  foreign=$((foreign + f))
  addr=10.20.0.$((10 + k)):8080
  b=$(awk -v a="$addr" '$1 == a {print $2}' "$work/flows-before")
  a=$(awk -v a="$addr" '$1 == a {print $2}' "$work/flows-after")
  d=$((a - b))
  cc=$(client_count "$k")
  echo "#   b$k ($addr) weight ${weights[-1]}: access log $c, evenflowd new_flows +$d, client saw $cc"
  [[ $d -eq $c && $cc -eq $c ]] || mismatch+=" b$k(log $c, evenflowd $d, client $cc)"
done
check "test 1: the backends logged all 2000 requests ($total_logged)" test "$total_logged" -eq 2000
check "test 1: backends see the real client address 10.10.0.10 ($foreign others)" test "$foreign" -eq 0
check_shares "test 1: distribution matches weights" "${counts[*]}" "${weights[*]}"
if [[ -z $mismatch ]]; then
  pass "test 1: evenflowd's per-backend new_flows equal the access logs (and the client's view)"
else
  fail "test 1: evenflowd's new_flows, the access logs and the client differ:$mismatch"
fi

# ---- 2. 50 MB byte-exact ----
echo "# test 2: 50 MB through the VIP"
want=$(sha256sum <"$work/srv/www/big" | cut -d' ' -f1)
t0=$(date +%s.%N)
got=$(in_client curl -sS -m 60 http://10.10.0.100/big | sha256sum | cut -d' ' -f1)
t1=$(date +%s.%N)
echo "#   $(python3 -c "import sys; print(f'{50*8*1.048576/(float(sys.argv[2])-float(sys.argv[1])):.0f} Mbit/s')" "$t0" "$t1")"
if [[ $got == "$want" ]]; then pass "test 2: 50 MB arrive byte-exact (sha256 $want)"; else
  fail "test 2: 50 MB sha256 $got, want $want"
fi

# ---- 3. long-lived connections across 50 applies ----
echo "# test 3: 50 long-lived connections, 50 applies adding/removing b5, b6"
write_config "$work/c1.toml" "$web_weights 5:1" "$echo_base 5:1"
write_config "$work/c2.toml" "$web_weights 5:1 6:2" "$echo_base 5:1 6:1"
write_config "$work/c3.toml" "$web_weights 6:1" "$echo_base 6:1"
write_config "$work/c4.toml" "$web_weights" "$echo_base"
v0=$(ctl --json status | json 'r["version"]')
out=$(in_client timeout 120 python3 "$e2e" longlived --evenctl "$evenctl" --socket "$sock" \
  --conns 50 --interval 0.1 --stall 2.0 --applies 50 --gap 0.1 \
  --configs "$work/c1.toml,$work/c2.toml,$work/c3.toml,$work/c4.toml")
rc=$?
echo "#   $out"
v1=$(ctl --json status | json 'r["version"]')
if [[ $rc -eq 0 ]]; then
  pass "test 3: 50 connections, 50 applies: 0 resets, 0 stalls > 2 s"
else
  fail "test 3: long-lived connections across applies (rc $rc)"
fi
check "test 3: 50 applies took effect (version $v0 -> $v1)" test "$v1" -eq $((v0 + 50))

# ---- 4. removing one backend moves only its flows ----
echo "# test 4: remove b2 from the echo pool"
ctl apply "$work/base.toml" >/dev/null
write_config "$work/no-b2.toml" "$web_weights" "1:1 3:1 4:1"
out=$(in_client timeout 60 python3 "$e2e" remove --evenctl "$evenctl" --socket "$sock" \
  --conns 40 --config "$work/no-b2.toml" --removed b2 --remaining 3 --new 300 --wait-drain 3)
rc=$?
echo "#   $out"
if [[ $rc -eq 0 ]]; then
  pass "test 4: established connections stay, new ones avoid b2 and spread over b1, b3, b4"
else
  fail "test 4: backend removal (rc $rc)"
fi
python3 -c '
import json, sys
r = json.loads(sys.argv[1])
on = r["before"].get("b2", 0)
alive = r["removed_backend_conns_alive_after_apply"]
later = sum(1 for v in r.get("after_drain_removed", {}).values() if v == "alive")
total = sum(r["before"].values())
print(f"#   observed: {on} of {total} connections were on b2; after the apply "
      f"{alive} of them still work; 3 s later (past drain_timeout 2s) {later} still work")
' "$out" 2>/dev/null || true
ctl apply "$work/base.toml" >/dev/null

echo "# evenflowd counters after tests 1-4:"
ctl stats | sed 's/^/#   /'

# ---- 5. figures: evenflowd vs direct vs nftables ----
measure() { # LABEL NS URL_BASE -> a table row
  local label=$1 ns=$2 base=$3 rps best=0 mbps
  rps=$(ip netns exec "$ns" ab -q -n 5000 -c 32 -s 10 "$base/hello" 2>&1 |
    awk '/^Requests per second:/ {print $4} /^Failed requests:/ {f=$3} END {if (f != 0) print "(failed " f ")"}' | tr '\n' ' ')
  for _ in 1 2 3; do
    mbps=$(ip netns exec "$ns" curl -sS -m 60 -o /dev/null -w '%{speed_download}' "$base/big" 2>/dev/null |
      awk '{printf "%.0f", $1 * 8 / 1e6}')
    [[ -n $mbps ]] && ((mbps > best)) && best=$mbps
  done
  printf '%-34s %16s %18s\n' "$label" "$rps" "$best"
}
if ((want_figures)); then
  echo "# test 5: figures (not pass/fail); ab -n 5000 -c 32 /hello (new connection per request),"
  echo "#         curl of the 50 MB file, best of 3; one 2-core machine runs client, balancer, backends"
  rows=$(mktemp "$work/rows.XXXX")
  measure "evenflowd ($driver, 4 backends)" ef-client http://10.10.0.100 >>"$rows"
  # The rest without evenflowd (its worker busy-polls a core).
  stop_daemon
  measure "direct to one backend (veth+bridge)" ef-sw http://10.20.0.11:8080 >>"$rows"
  # nftables DNAT: the kernel of ef-lb becomes the balancer, same addresses, same weights.
  if ip netns exec ef-lb sh -ec '
      ip addr add 10.10.0.2/24 dev lb-c
      ip addr add 10.10.0.100/32 dev lb-c
      ip addr add 10.20.0.1/24 dev lb-b
      sysctl -qw net.ipv4.ip_forward=1
      nft -f - <<NFT
table ip ef_lb {
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    ip daddr 10.10.0.100 tcp dport 80 dnat to numgen random mod 5 map { 0 : 10.20.0.11, 1 : 10.20.0.12, 2 : 10.20.0.13, 3 : 10.20.0.13, 4 : 10.20.0.14 } : 8080
  }
}
NFT
    ' 2>"$work/nft.err"; then
    in_client ip neigh flush dev c0
    measure "nftables DNAT (numgen, 4 backends)" ef-client http://10.10.0.100 >>"$rows"
  else
    echo "#   nftables setup failed: $(cat "$work/nft.err")"
  fi
  printf '%-34s %16s %18s\n' "path" "requests/s" "download Mbit/s"
  cat "$rows"
fi

# ---- teardown: nothing may be left ----
check_nothing_left
check_daemon_log
finish
