#!/usr/bin/env bash
# End-to-end tests of active health checks, failover and draining: real TCP through
# evenflowd between network namespaces (scripts/netns), real servers, real clients.
#
#   test/e2e/health.sh BUILD_DIR
#
# 1. Kill one backend's nginx: it is marked down within interval x fall + timeout;
#    an established connection pinned to it gets a RST from the balancer; requests on
#    new connections all succeed and avoid it. Start nginx again: up after `rise`
#    successes (within rise x interval + timeout), and it gets its share again.
# 2. Drain a backend while a 50 MB download through it runs: the download completes
#    byte-exact (sha256); no new connection reaches the drained backend.
# 3. Failure modes, each on its own service so they run side by side:
#    - closed port (nothing listens):           down, reason=rst
#    - blackholed (nft drop in the backend):     down, reason=timeout; back up when lifted
#    - accepts, then resets (SO_LINGER 0 close): a `kind = "tcp"` check only sees the
#      handshake, which succeeds: the backend stays up (documented limitation, reported
#      as KNOWN, not counted as failure); clients do see ECONNRESET through the VIP.
# Prints the measured detection and recovery times. Ends with "N passed, N failed";
# exits non-zero if anything failed. Tears everything down on exit (also on failure or
# Ctrl-C). Must not run concurrently with the other e2e scripts (shared ef- names).
set -uo pipefail

# shellcheck source=test/lib/harness.sh
source "$(dirname "$0")/../lib/harness.sh"
harness_init health "${1:?usage: test/e2e/health.sh BUILD_DIR}"
e2e=$root/test/e2e/e2e.py
hp=$root/test/e2e/health.py

# Health parameters of the pools under test (the bounds below follow from them).
INTERVAL=1.0 TIMEOUT=0.5 RISE=2 FALL=3
SLACK=0.3 # scheduling jitter allowed on top of the bounds (control loop, one 2-core host)

needs_root "network namespaces, DPDK"
needs_tools nginx nft curl python3 ethtool ip ss sha256sum flock
needs_binaries "$evenflowd" "$evenctl"
make_workdir
fsum() { python3 -c 'import sys; print(round(sum(float(a) for a in sys.argv[1:]), 3))' "$@"; }
logline() { loglines "$@" | head -1; } # AFTER KEY=VALUE... -> the first matching line
field() { # SERVICE ADDR:PORT FIELD
  ctl --json backends "$1" | json "next((b['$3'] for b in r['backends'] if b['backend'] == '$2'), '')"
}
state() { field "$1" "$2" state; } # SERVICE ADDR:PORT
http_n() { # N -> JSON from e2e.py http (one connection per request)
  in_client python3 "$e2e" http http://10.10.0.100/hello "$1" --concurrency 8 --timeout 5
}
per_backend() { json "r['per_backend'].get('$2', 0)" <<<"$1"; }
nginx_pids() { # K -> the pids of nginx processes in ef-bK
  local p
  for p in $(ip netns pids "ef-b$1" 2>/dev/null); do
    [[ $(cat "/proc/$p/comm" 2>/dev/null) == nginx ]] && echo "$p"
  done
}

# ---- topology, servers, daemon ----
topology_up 4
# Extra servers for test 3: b3:8081 accepts then resets; b4:8083 accepts (to be blackholed).
ip netns exec ef-b3 setsid python3 "$hp" listen 10.20.0.13 8081 --reset >"$work/resetter.log" 2>&1 </dev/null &
bgpids+=($!)
ip netns exec ef-b4 setsid python3 "$hp" listen 10.20.0.14 8083 >"$work/bh.log" 2>&1 </dev/null &
bgpids+=($!)

health="{ kind = \"tcp\", interval = \"${INTERVAL}s\", timeout = \"${TIMEOUT}s\", rise = $RISE, fall = $FALL"
each() { # PORT K... -> ADDR:PORT:1 of backends bK
  local k
  for k in "${@:2}"; do echo "10.20.0.$((10 + k)):$1:1"; done
}
# The echo servers' health follows nginx (health port 8080): killing a backend's nginx
# marks its echo backend down while the echo server keeps its connections, so a
# connection that is still alive on the backend meets the balancer's RST.
# shellcheck disable=SC2046
{
  lb_config_head 65536
  config_pool web "$health }" -- $(each 8080 1 2 3 4)
  config_pool echo "$health, port = 8080 }" -- $(each 9000 1 2 3 4)
  config_pool resetter "$health }" -- 10.20.0.13:8081:1
  config_pool closed "$health }" -- 10.20.0.12:8082:1
  config_pool blackhole "$health }" -- 10.20.0.14:8083:1
  for svc in web:80 echo:9000 resetter:8081 closed:8082 blackhole:8083; do
    config_service "${svc%%:*}" 10.10.0.100 "${svc#*:}" "${svc%%:*}"
  done
  config_skew 10s 2.0 500 alert
} >"$work/health.toml"

t_start=$(now)
start_daemon "$work/health.toml" || finish
pass "evenflowd starts on $driver (pid $pid)"

# Every checked backend gets a first verdict: unknown -> up on the first SYN-ACK.
first_up=$(waitlog "$t_start" 10 event=health "service=web|echo" to=up --count 8)
if [[ -n $first_up ]]; then
  pass "web and echo: all 8 backends up after their first SYN-ACK"
  figure "startup: all 8 web/echo backends up $(elapsed "$t_start" "$first_up") s after evenflowd started"
else
  fail "web and echo backends come up (log: $(grep -c event=health "$log") health lines)"
  ctl backends
  ctl stats | tail -20
  finish
fi
ready=0
for _ in $(seq 1 50); do
  in_client curl -sf -m 2 -o /dev/null http://10.10.0.100/hello && { ready=1; break; }
  sleep 0.2
done
check "HTTP through the VIP answers" test $ready -eq 1

# ================= 1. kill a backend's server =================
echo "# test 1: kill b2's nginx, then start it again (interval ${INTERVAL}s timeout ${TIMEOUT}s fall $FALL rise $RISE)"
B2=10.20.0.12:8080
E2=10.20.0.12:9000
out=$(http_n 200)
rc=$?
check "test 1: before: 200 requests, 0 failures, b2 serves ($(per_backend "$out" b2))" \
  test $rc -eq 0 -a "$(per_backend "$out" b2)" -gt 0

# An echo connection pinned to b2 (it stays established on b2's echo server).
go=$work/go
in_client python3 "$hp" pinned --backend b2 --go "$go" --timeout 40 >"$work/pinned.out" 2>&1 &
pinned_pid=$!
bgpids+=($pinned_pid)
for _ in $(seq 1 100); do grep -q '"pinned"' "$work/pinned.out" && break; sleep 0.1; done
check "test 1: an echo connection is pinned to b2 ($(head -1 "$work/pinned.out"))" grep -q '"pinned": "b2"' "$work/pinned.out"
resets_before=$(field echo "$E2" resets)

t_kill=$(now)
kill -KILL $(nginx_pids 2) 2>/dev/null
sleep 0.2
check "test 1: b2's nginx is gone (nothing listens on 10.20.0.12:8080)" \
  test -z "$(ip netns exec ef-b2 ss -Hltn 'sport = :8080')"
bound_down=$(python3 -c "print($INTERVAL * $FALL + $TIMEOUT)")
t_down=$(waitlog "$t_kill" 10 event=health service=web backend=$B2 to=down)
if [[ -n $t_down ]]; then
  det=$(elapsed "$t_kill" "$t_down")
  line=$(logline "$t_kill" event=health service=web backend=$B2 to=down)
  echo "#   $line"
  figure "kill -> down (web b2, nginx killed): $det s (bound interval x fall + timeout = $bound_down s)"
  within "test 1: b2 marked down, s after the kill (bound $bound_down s + ${SLACK} s slack)" "$det" "$(fsum "$bound_down" $SLACK)"
  check "test 1: reason=rst (the kernel refuses the probe SYN)" grep -q 'reason=rst' <<<"$line"
else
  fail "test 1: b2 is not marked down within 10 s of the kill"
fi
check "test 1: evenctl shows web b2 down" test "$(state web $B2)" == down
t_edown=$(waitlog "$t_kill" 10 event=health service=echo backend=$E2 to=down)
check "test 1: echo b2 (health port 8080) marked down too" test -n "$t_edown"

# The established echo connection: its next packet meets a RST from the balancer.
touch "$go"
wait "$pinned_pid" 2>/dev/null
result=$(tail -1 "$work/pinned.out")
echo "#   pinned connection after down: $result"
check "test 1: the established connection to b2 gets a RST (ECONNRESET)" grep -q '"result": "reset"' <<<"$result"
resets_after=$(field echo "$E2" resets)
check "test 1: evenflowd counted the reset for echo b2 ($resets_before -> $resets_after)" \
  test "$resets_after" -gt "$resets_before"

out=$(http_n 300)
rc=$?
echo "#   while b2 is down: $out"
check "test 1: while down: 300 requests on new connections, 0 failures" test $rc -eq 0
check "test 1: while down: none reaches b2" test "$(per_backend "$out" b2)" -eq 0

# Start it again.
t_up0=$(now)
ip netns exec ef-b2 nginx -q -c "$work/srv/b2/nginx.conf" -p "$work/srv/b2" -e "$work/srv/b2/error.log"
bound_up=$(python3 -c "print($INTERVAL * $RISE + $TIMEOUT)")
t_up=$(waitlog "$t_up0" 10 event=health service=web backend=$B2 to=up)
if [[ -n $t_up ]]; then
  rec=$(elapsed "$t_up0" "$t_up")
  echo "#   $(logline "$t_up0" event=health service=web backend=$B2 to=up)"
  figure "restart -> up (web b2): $rec s (rise $RISE x interval ${INTERVAL}s; bound rise x interval + timeout = $bound_up s)"
  within "test 1: b2 back up, s after the restart (bound $bound_up s + ${SLACK} s slack)" "$rec" "$(fsum "$bound_up" $SLACK)"
  # Not on the first success: `rise` of them (>= (rise - 1) x interval after the first).
  min_up=$(python3 -c "print(($RISE - 1) * $INTERVAL - 0.05)")
  check "test 1: not before $RISE successes (${rec}s >= ${min_up}s)" le "$min_up" "$rec"
else
  fail "test 1: b2 does not come back up within 10 s"
fi
check "test 1: evenctl shows web b2 up" test "$(state web $B2)" == up
out=$(http_n 400)
rc=$?
echo "#   after recovery: $out"
check "test 1: after recovery: 400 requests, 0 failures" test $rc -eq 0
c=()
for k in 1 2 3 4; do c+=("$(per_backend "$out" "b$k")"); done
if chi=$(python3 "$lib/stats.py" chisq "$(IFS=,; echo "${c[*]}")" 1,1,1,1); then
  pass "test 1: b2 gets its share again ($chi)"
else
  fail "test 1: share after recovery: $chi"
fi

# ================= 2. drain during a 50 MB transfer =================
echo "# test 2: drain the backend serving a 50 MB download"
want=$(sha256sum <"$work/srv/www/big" | cut -d' ' -f1)
(in_client curl -sS -m 90 --limit-rate 8M http://10.10.0.100/big | sha256sum | cut -d' ' -f1 >"$work/big.sha") &
dl_pid=$!
bgpids+=($dl_pid)
served=""
for _ in $(seq 1 50); do
  for k in 1 2 3 4; do
    if ip netns exec "ef-b$k" ss -Htn state established '( sport = :8080 )' | grep -q '10.10.0.10:'; then
      served=$k
    fi
  done
  [[ -n $served ]] && break
  sleep 0.1
done
if [[ -z $served ]]; then
  fail "test 2: the download's backend not found"
else
  addr=10.20.0.$((10 + served)):8080
  sleep 0.5
  nf0=$(field web "$addr" new_flows)
  hello0=$(grep -c '"GET /hello ' "$work/srv/b$served/access.log")
  t_drain=$(now)
  ctl drain web "$addr" >/dev/null
  check "test 2: b$served ($addr) serves the download; drained while it runs" kill -0 $dl_pid
  check "test 2: evenctl shows $addr draining" test "$(state web "$addr")" == draining
  out=$(http_n 300)
  rc=$?
  echo "#   during the drain: $out"
  check "test 2: 300 new requests during the drain, 0 failures" test $rc -eq 0
  check "test 2: no new connection reaches b$served (client view)" test "$(per_backend "$out" "b$served")" -eq 0
  sleep 0.3
  hello1=$(grep -c '"GET /hello ' "$work/srv/b$served/access.log")
  nf1=$(field web "$addr" new_flows)
  check "test 2: b$served's access log has no new request ($hello0 -> $hello1)" test "$hello1" -eq "$hello0"
  check "test 2: evenflowd new_flows of b$served unchanged ($nf0 -> $nf1)" test "$nf1" -eq "$nf0"
  wait $dl_pid
  t_done=$(now)
  got=$(cat "$work/big.sha" 2>/dev/null)
  figure "drain: the 50 MB download ran on $(elapsed "$t_drain" "$t_done") s after the drain and completed"
  check "test 2: the 50 MB download completes byte-exact through the drained backend (sha256 ${got:0:16}...)" \
    test "$got" == "$want"
  check "test 2: b$served logged the full 50 MB response" \
    grep -q '"GET /big HTTP/1.1" 200 52428800 ' "$work/srv/b$served/access.log"
  ctl enable web "$addr" >/dev/null
  check "test 2: enable: $addr up again" test "$(state web "$addr")" == up
fi

# ================= 3. failure modes =================
echo "# test 3: failure modes"
# (a) closed port: nothing ever listened on 10.20.0.12:8082.
line=$(logline "$t_start" event=health service=closed to=down)
echo "#   $line"
check "test 3: closed port: down with reason=rst" grep -q 'from=unknown to=down reason=rst' <<<"$line"
check "test 3: closed port: evenctl shows it down" test "$(state closed 10.20.0.12:8082)" == down
if code=$(in_client curl -s -m 3 -o /dev/null -w '%{http_code}' http://10.10.0.100:8082/ 2>&1); [[ $code == 000 ]]; then
  pass "test 3: closed port: the VIP refuses at once (no backend up: SYN answered with RST)"
else
  fail "test 3: closed port: VIP answered $code"
fi
check "test 3: closed port: a no_backend alarm is raised" bash -c "'$evenctl' --socket '$sock' skew | grep -q no_backend"

# (b) blackholed: the backend's kernel drops everything to 8083.
t_bh=$(now)
ip netns exec ef-b4 nft -f - <<'NFT'
table inet ef_blackhole {
  chain input { type filter hook input priority 0; policy accept; tcp dport 8083 drop; }
}
NFT
t_bhd=$(waitlog "$t_bh" 10 event=health service=blackhole to=down)
if [[ -n $t_bhd ]]; then
  line=$(logline "$t_bh" event=health service=blackhole to=down)
  echo "#   $line"
  det=$(elapsed "$t_bh" "$t_bhd")
  figure "blackhole -> down: $det s (bound interval x fall + timeout = $bound_down s)"
  check "test 3: blackholed: down with reason=timeout" grep -q 'reason=timeout' <<<"$line"
  within "test 3: blackholed backend down, s (bound $bound_down s + ${SLACK} s slack)" "$det" "$(fsum "$bound_down" $SLACK)"
else
  fail "test 3: blackholed backend not marked down within 10 s"
fi
t_bhu0=$(now)
ip netns exec ef-b4 nft delete table inet ef_blackhole
t_bhu=$(waitlog "$t_bhu0" 10 event=health service=blackhole to=up)
if [[ -n $t_bhu ]]; then
  rec=$(elapsed "$t_bhu0" "$t_bhu")
  figure "blackhole lifted -> up: $rec s (bound $bound_up s)"
  within "test 3: blackhole lifted: up again, s (bound $bound_up s + ${SLACK} s slack)" "$rec" "$(fsum "$bound_up" $SLACK)"
else
  fail "test 3: blackholed backend does not come back within 10 s of lifting"
fi
check "test 3: web and echo on b4 unaffected by the port blackhole" \
  test "$(state web 10.20.0.14:8080)" == up -a "$(state echo 10.20.0.14:9000)" == up

# (c) accepts, then resets.
st=$(state resetter 10.20.0.13:8081)
res=$(in_client python3 -c '
import socket
try:
    # The reset may arrive while connect() is still returning: it counts the same.
    s = socket.create_connection(("10.10.0.100", 8081), timeout=3)
    s.sendall(b"x")
    print("data" if s.recv(10) else "eof")
except ConnectionResetError:
    print("reset")
except OSError as e:
    print("error", e)
' 2>&1)
check "test 3: accept-then-reset: a client through the VIP gets ECONNRESET ($res)" test "$res" == reset
if [[ $st == up ]]; then
  known_limitation "test 3: accept-then-reset: the tcp check sees a good handshake (the kernel answers the SYN before the server accepts and resets), so it stays up: a kind=\"tcp\" check cannot detect this; it needs an application-level check or passive health (counting backend RSTs)"
else
  line=$(logline "$t_start" event=health service=resetter to=down)
  echo "#   $line"
  check "test 3: accept-then-reset: state $st" test "$st" == down
fi

# ---- teardown: nothing may be left ----
echo "# health transitions logged:"
grep 'event=health ' "$log" | sed 's/^/#   /'
check_nothing_left
check_daemon_log
finish
