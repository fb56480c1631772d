#!/usr/bin/env bash
# Tunnel mode (IPIP, direct server return) under real TCP: the backends are real Linux
# TCP stacks and servers, set up by scripts/tunnel-backend, that answer the client
# directly through a router that is not the balancer. This machine's kernel is built
# without IPIP (no tunl0, GRE or FOU), so test/e2e/ipip_decap.py does tunl0's part in
# each backend: IPIP in through a raw socket, the inner packet out into a TUN device.
#
#   ef-client c0 ====== lb-c [evenflowd] lb-b ====== br0 (ef-sw) ====== backends
#             c1 10.30.0.2 ========================= sw-c 10.30.0.1 (routes 10.10.0.0/24)
#
# 1. 2,000 HTTP requests on new connections: no failure, the backends' own logs match
#    the weights (chi-square) and see the client's real address; no reply crossed the
#    balancer (its to_client counter stays 0) while every request was tunnelled.
# 2. 50 MB byte-exact (the download goes backend -> client directly).
# 3. 1 MB uploaded and echoed back byte-exact: client packets too big for the tunnel
#    get ICMP "fragmentation needed" from the balancer and the client's path MTU
#    discovery adapts (counted as tunnel_too_big).
# 4. 50 long-lived connections across 20 applies that add and remove a backend: 0 resets.
#
#   test/e2e/tunnel.sh BUILD_DIR
set -uo pipefail

# shellcheck source=test/lib/harness.sh
source "$(dirname "$0")/../lib/harness.sh"
harness_init tunnel "${1:?usage: test/e2e/tunnel.sh BUILD_DIR}"
e2e=$root/test/e2e/e2e.py
needs_root "network namespaces, DPDK, IPIP tunnels"
needs_tools nginx curl python3 ethtool ip flock sysctl
needs_binaries "$evenflowd" "$evenctl"
make_workdir

topology_up 5 # b1..b4 serve; b5 comes and goes in test 4

# The return path that does not cross the balancer: ef-sw routes between the backend
# segment and a second client link. Reverse-path filters off where packets from the VIP
# arrive on another interface than the VIP's route (the client's c1, the router).
ip netns exec ef-client ip link add c1 type veth peer name sw-c netns ef-sw
ip netns exec ef-client ip addr add 10.30.0.2/24 dev c1
ip netns exec ef-client ip link set c1 up
ip netns exec ef-client sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.c1.rp_filter=0
ip netns exec ef-sw ip addr add 10.30.0.1/24 dev sw-c
ip netns exec ef-sw ip link set sw-c up
ip netns exec ef-sw sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 \
  net.ipv4.conf.br0.rp_filter=0 net.ipv4.conf.sw-c.rp_filter=0
ip netns exec ef-sw ip route add 10.10.0.0/24 via 10.30.0.2
for k in 1 2 3 4 5; do
  ns=ef-b$k
  ip netns exec "$ns" ip route add 10.10.0.0/24 via 10.20.0.250
  ip netns exec "$ns" timeout 300 python3 "$root/test/e2e/ipip_decap.py" ipip0 --seconds 240 \
    >"$work/decap-b$k.log" 2>&1 &
  bgpids+=($!)
  for _ in $(seq 1 50); do grep -q ready "$work/decap-b$k.log" && break; sleep 0.1; done
  if ! res=$(ip netns exec "$ns" "$root/scripts/tunnel-backend" up --device ipip0 10.10.0.100 2>&1); then
    fail "scripts/tunnel-backend up in $ns" "$res"
    finish
  fi
done
pass "backends set up by scripts/tunnel-backend (decapsulating device, VIP on lo, arp_ignore)"

backends() { # PORT "K:WEIGHT ..." -> ADDR:PORT:WEIGHT
  local spec
  for spec in $2; do echo "10.20.0.$((10 + ${spec%%:*})):$1:${spec#*:}"; done
}
write_config() { # FILE "WEB_SPEC" "ECHO_SPEC"
  local web echo_
  mapfile -t web < <(backends 8080 "$2")
  mapfile -t echo_ < <(backends 9000 "$3")
  {
    lb_config_head 65536
    config_pool web '{ kind = "tcp", interval = "1s", timeout = "500ms", rise = 1, fall = 3 }' \
      -- "${web[@]}"
    config_pool echo '{ kind = "tcp", interval = "1s", timeout = "500ms", rise = 1, fall = 3 }' \
      'drain_timeout = "2s"' -- "${echo_[@]}"
    config_service web 10.10.0.100 8080 web
    echo 'mode = "tunnel"'
    config_service echo 10.10.0.100 9000 echo
    echo 'mode = "tunnel"'
  } >"$1"
}
web_weights="1:1 2:1 3:2 4:1"
echo_base="1:1 2:1 3:1 4:1"
write_config "$work/base.toml" "$web_weights" "$echo_base"
check_out=$("$evenctl" check "$work/base.toml" 2>&1)
expect_contains "check: shows the mode" "$check_out" "mode tunnel"
expect_contains "check: says what backends need" "$check_out" "scripts/tunnel-backend"
# Taken before the start: the first probes may pass before start_daemon returns.
t_start=$(now)
start_daemon "$work/base.toml" || finish
waitlog "$t_start" 10 event=health to=up --count 8 >/dev/null || fail "every backend up first"
ready=0
for _ in $(seq 1 50); do
  if in_client curl -sf -m 2 -o /dev/null http://10.10.0.100:8080/hello; then ready=1; break; fi
  sleep 0.2
done
if ((!ready)); then
  fail "HTTP through the tunnel VIP answers" "$(ctl stats; tail -n 3 "$work"/decap-b*.log)"
  finish
fi
stat() { ctl --json stats | json "$1"; }

# ---- 1. 2,000 requests ----
for k in 1 2 3 4; do : >"$work/srv/b$k/access.log"; done
tunneled0=$(stat 'r["totals"]["tunneled"]')
res=$(in_client python3 "$e2e" http http://10.10.0.100:8080/hello 2000 --concurrency 16)
rc=$?
expect_eq "test 1: 2000 requests on 2000 connections, 0 failures" "$rc" "0"
sleep 0.5 # nginx writes its log line after the response
counts=() weights=() foreign=0
for k in 1 2 3 4; do
  counts+=("$(grep -c '"GET /hello ' "$work/srv/b$k/access.log")")
  foreign=$((foreign + $(grep '"GET /hello ' "$work/srv/b$k/access.log" | grep -vc '^10\.10\.0\.10 ')))
  weights+=("$(tr ' ' '\n' <<<"$web_weights" | awk -F: -v k="$k" '$1 == k {print $2}')")
done
echo "#   access logs: ${counts[*]} for weights ${weights[*]}"
check_shares "test 1: distribution matches weights" "${counts[*]}" "${weights[*]}"
expect_eq "test 1: backends see the client's own address 10.10.0.10" "$foreign" "0"
expect_eq "test 1: no reply crossed the balancer (to_client)" "$(stat 'r["totals"]["to_client"]')" "0"
tunneled1=$(stat 'r["totals"]["tunneled"]')
figure "test 1: 2000 requests, $((tunneled1 - tunneled0)) packets tunnelled, 0 replies through evenflowd"
check "test 1: every request's packets were tunnelled (>= 3 per connection)" \
  test $((tunneled1 - tunneled0)) -ge 6000

# ---- 2. 50 MB byte-exact ----
want=$(sha256sum <"$work/srv/www/big" | cut -d' ' -f1)
got=$(in_client curl -sS -m 60 http://10.10.0.100:8080/big | sha256sum | cut -d' ' -f1)
expect_eq "test 2: 50 MB arrive byte-exact" "$got" "$want"

# ---- 3. uploads larger than the tunnel's MTU ----
too_big0=$(stat 'r["drops"].get("tunnel_too_big", 0)')
in_client ip route flush cache 2>/dev/null
res=$(in_client python3 - <<'PY'
import hashlib, os, socket
data = os.urandom(1 << 20)
s = socket.create_connection(("10.10.0.100", 9000), timeout=20)
f = s.makefile("rb")
f.readline()  # the echo server names its backend first
s.sendall(data)
got = bytearray()
while len(got) < len(data):
    chunk = f.read1(65536)
    if not chunk:
        break
    got += chunk
s.close()
print("ok" if bytes(got) == data else f"mismatch {len(got)} of {len(data)}")
PY
)
expect_eq "test 3: 1 MB echoed back byte-exact through the tunnel" "$res" "ok"
too_big1=$(stat 'r["drops"].get("tunnel_too_big", 0)')
pmtu=$(in_client ip route get 10.10.0.100 | grep -o 'mtu [0-9]*' || true)
figure "test 3: $((too_big1 - too_big0)) client packets too big for the tunnel answered with ICMP fragmentation-needed; client's route cache: ${pmtu:-no mtu entry}"
check "test 3: too-big packets were answered (path MTU discovery exercised)" \
  test $((too_big1 - too_big0)) -ge 1

# ---- 4. long-lived connections across 20 applies ----
write_config "$work/c1.toml" "$web_weights" "$echo_base 5:1"
write_config "$work/c2.toml" "$web_weights" "$echo_base"
v0=$(ctl --json status | json 'r["version"]')
res=$(in_client timeout 120 python3 "$e2e" longlived --evenctl "$evenctl" --socket "$sock" \
  --conns 50 --interval 0.1 --stall 2.0 --applies 20 --gap 0.2 \
  --configs "$work/c1.toml,$work/c2.toml")
rc=$?
echo "#   $res"
expect_eq "test 4: 50 connections across 20 applies: 0 resets, 0 stalls > 2 s" "$rc" "0"
v1=$(ctl --json status | json 'r["version"]')
expect_eq "test 4: 20 applies took effect" "$((v1 - v0))" "20"
expect_eq "test 4: still no reply through the balancer" "$(stat 'r["totals"]["to_client"]')" "0"
check_daemon_log
finish
