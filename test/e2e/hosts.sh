#!/usr/bin/env bash
# Two balancer hosts carrying traffic together, every component real: a router
# namespace runs BIRD 2 with `merge paths on` and an L4 ECMP hash
# (fib_multipath_hash_policy=1) towards two evenflowd hosts, each in its own
# namespace with af_packet ports on DPDK-owned veths and its own BIRD over its data
# port (kernel_interface, BFD 100 ms x 3); four nginx backends on a bridge reply
# through their default route, the hosts' vrrp gateway (one address and virtual MAC
# that moves between the hosts; every host rewrites replies of flows it has no entry
# for). A client namespace keeps 50 keep-alive HTTP connections (a request every
# 200 ms each) and a stream of 10 new connections a second through the VIP.
#
# Reported: the split of new connections between the hosts, then for each event the
# time until the router's route changed and the gateway moved, and the worst stall a
# long-lived connection saw; asserted for each: 0 connections reset and 0 new
# connections failed. Events: kill -9 of the host holding the gateway, its return,
# kill -9 of the other (which then holds it), its return, SIGTERM of a host (planned:
# it hands the gateway over and drains), SIGSTOP and SIGCONT, drain-host of the host
# holding the gateway and undrain-host. Last, the fingerprint alert over both hosts'
# /metrics (promtool), when they run the same config and when one runs another.
#
#   test/e2e/hosts.sh BUILD_DIR
set -uo pipefail

# shellcheck source=test/lib/harness.sh
source "$(dirname "$0")/../lib/harness.sh"
harness_init e2e-hosts "${1:?usage: test/e2e/hosts.sh BUILD_DIR}"
needs_root "network namespaces, DPDK, BIRD"
needs_tools ip nft ethtool bird birdc python3 curl nginx promtool
needs_python_modules yaml
needs_binaries "$evenflowd" "$evenctl"
make_workdir

vip=10.98.100.100 seed=5eed0123456789abcdef0123456789ab
ns_r=efh-r-$$ ns_c=efh-c-$$ ns_sw=efh-sw-$$
ns_h=("" "efh-h1-$$" "efh-h2-$$")
ns_b=("" "efh-b1-$$" "efh-b2-$$" "efh-b3-$$" "efh-b4-$$")
all_ns=("$ns_r" "$ns_c" "$ns_sw" "${ns_h[1]}" "${ns_h[2]}" "${ns_b[@]:1}")
host_addr=("" 10.98.31.2 10.98.32.2) # client side, the router's next hops
host_back=("" 10.98.20.2 10.98.20.3) # backend side; the vrrp gateway is 10.98.20.1
pids=("" "" "")
socks=("" "$work/h1/evenflow.sock" "$work/h2/evenflow.sock")
mkdir -p "$work/h1" "$work/h2"
for h in 1 2; do remove_on_teardown "/var/run/dpdk/ef-hosts-$$-$h"; done

# shellcheck disable=SC2317 # run by the EXIT trap
cleanup_hosts() {
  local h p
  [[ -f $work/stop-traffic ]] || touch "$work/stop-traffic"
  [[ -n ${traffic_pid:-} ]] && kill "$traffic_pid" 2>/dev/null
  [[ -n ${monitor_pid:-} ]] && kill "$monitor_pid" 2>/dev/null
  for h in 1 2; do
    p=${pids[$h]}
    [[ -n $p ]] && kill -CONT "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null
  done
  [[ -s $work/router.pid ]] && kill "$(cat "$work/router.pid")" 2>/dev/null
  for h in 1 2 3 4; do
    [[ -s $work/b$h/nginx.pid ]] && kill "$(cat "$work/b$h/nginx.pid")" 2>/dev/null
  done
  # Whatever still runs in the namespaces (a daemon an event restarted, BIRD, nginx):
  # deleting a namespace does not stop its processes.
  for n in "${all_ns[@]}"; do
    ip netns pids "$n" 2>/dev/null | xargs -r kill -KILL 2>/dev/null
  done
  for n in "${all_ns[@]}"; do ip netns del "$n" 2>/dev/null; done
  return 0
}
trap 'teardown; cleanup_hosts; harness_cleanup' EXIT

in_ns() { local n=$1; shift; ip netns exec "$n" "$@"; }
tx_off() { in_ns "$1" ethtool -K "$2" tx off >/dev/null; } # whole checksums, as on a wire

# ---- topology
for n in "${all_ns[@]}"; do
  ip netns add "$n" || { fail "namespace $n"; finish; }
  ip -n "$n" link set lo up
done
# client <-> router
ip link add efh-c0 netns "$ns_c" type veth peer name efh-rc netns "$ns_r"
ip -n "$ns_c" addr add 10.98.1.2/24 dev efh-c0
ip -n "$ns_r" addr add 10.98.1.1/24 dev efh-rc
for h in 1 2; do
  # router <-> host h (client side), host h (backend side) <-> the backends' bridge
  ip link add "efh-r$h" netns "$ns_r" type veth peer name "efh-h${h}f" netns "${ns_h[$h]}"
  ip link add "efh-s$h" netns "$ns_sw" type veth peer name "efh-h${h}b" netns "${ns_h[$h]}"
  ip -n "$ns_r" addr add "10.98.3$h.1/24" dev "efh-r$h"
done
ip -n "$ns_sw" link add br0 type bridge forward_delay 0 stp_state 0
for b in 1 2 3 4; do
  ip link add "efh-s$((b + 2))" netns "$ns_sw" type veth peer name eth0 netns "${ns_b[$b]}"
  ip -n "${ns_b[$b]}" addr add "10.98.20.1$b/24" dev eth0
  ip -n "${ns_b[$b]}" link set eth0 up
  ip -n "${ns_b[$b]}" route add default via 10.98.20.1 # the hosts' vrrp gateway
  tx_off "${ns_b[$b]}" eth0
done
for s in 1 2 3 4 5 6; do
  ip -n "$ns_sw" link set "efh-s$s" master br0
  ip -n "$ns_sw" link set "efh-s$s" up
done
ip -n "$ns_sw" link set br0 up
ip -n "$ns_c" link set efh-c0 up
ip -n "$ns_c" route add default via 10.98.1.1
tx_off "$ns_c" efh-c0
for i in efh-rc efh-r1 efh-r2; do
  ip -n "$ns_r" link set "$i" up
  tx_off "$ns_r" "$i"
done
in_ns "$ns_r" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.fib_multipath_hash_policy=1
for h in 1 2; do
  for i in "efh-h${h}f" "efh-h${h}b"; do
    ip -n "${ns_h[$h]}" link set "$i" up
    in_ns "${ns_h[$h]}" ethtool -K "$i" gro off >/dev/null 2>&1
    check "host $h: $i is DPDK's alone" dpdk_owned "${ns_h[$h]}" "$i"
  done
done

# ---- the router: one BGP session per host, BFD, ECMP over both
{
  router_bird_head 10.98.1.1 "efh-r*" "$work/router.log"
  cat <<ROUTER
template bgp lbhost {
  local as 65000; bfd on;
  hold time 3; keepalive time 1; connect retry time 1; error wait time 1, 5;
  graceful restart off;
  ipv4 { import where net ~ [ 10.98.100.0/24+ ]; export none; };
}
protocol bgp h1 from lbhost { neighbor 10.98.31.2 as 65001; source address 10.98.31.1; }
protocol bgp h2 from lbhost { neighbor 10.98.32.2 as 65001; source address 10.98.32.1; }
ROUTER
} >"$work/router.conf"
check "router BIRD starts" in_ns "$ns_r" bird -c "$work/router.conf" -s "$work/router.ctl" -P "$work/router.pid"

# ---- four nginx backends ("hello from bN")
for b in 1 2 3 4; do
  mkdir -p "$work/b$b/tmp"
  cat >"$work/b$b/nginx.conf" <<NGINX
daemon on; master_process on; worker_processes 1; user root;
pid $work/b$b/nginx.pid; error_log $work/b$b/error.log warn;
events { worker_connections 1024; }
http {
  access_log off; keepalive_requests 1000000; keepalive_timeout 300s;
  client_body_temp_path $work/b$b/tmp; proxy_temp_path $work/b$b/tmp;
  fastcgi_temp_path $work/b$b/tmp; uwsgi_temp_path $work/b$b/tmp; scgi_temp_path $work/b$b/tmp;
  server { listen 8080; location = /hello { default_type text/plain; return 200 "hello from b$b\n"; } }
}
NGINX
  check "backend b$b: nginx starts" in_ns "${ns_b[$b]}" nginx -q -c "$work/b$b/nginx.conf" -p "$work/b$b"
done

# ---- the two hosts: the same services, pools and hash seed; their own addresses
host_config() { # H [KEY_LINE for the pool...]
  local h=$1
  shift
  config_head --client-address "${host_addr[$h]}/24" --gateway "10.98.3$h.1" \
    --client-kernel "efh-k$h" --backend-address "${host_back[$h]}/24" \
    --backend-vrrp "{ id = 20, address = \"10.98.20.1\", peers = [\"${host_back[3 - h]}\"] }" \
    --hash-seed "$seed" \
    "ef-hosts-$$-$h" "${socks[$h]}" "127.0.0.1:9091" 65536 1 net_af_packet0 net_af_packet1 \
    "--vdev=net_af_packet0,iface=efh-h${h}f" "--vdev=net_af_packet1,iface=efh-h${h}b"
  config_pool web '{ kind = "tcp", interval = "1s", timeout = "500ms", rise = 2, fall = 3 }' "$@" -- \
    10.98.20.11:8080:1 10.98.20.12:8080:1 10.98.20.13:8080:1 10.98.20.14:8080:1
  config_service web $vip 80 web
  config_bgp "${host_addr[$h]}" "10.98.3$h.1" 'hold_time = "3s"' 'detection = "1s"' \
    'convergence = "1s"' 'drain_timeout = "5s"' 'return_path = "vrrp"' 'bfd = true'
}
for h in 1 2; do host_config "$h" >"$work/h$h.toml"; done
checked=$("$evenctl" check "$work/h1.toml" 2>&1)
expect_eq "check: the two-host config with a vrrp return path" "$?" 0
sed 's/^vrrp = .*//' "$work/h1.toml" >"$work/no-vrrp.toml"
checked=$("$evenctl" check "$work/no-vrrp.toml" 2>&1)
expect_contains "check refuses DNAT over several hosts without a vrrp gateway" "$checked" \
  "no interface on the backends' network has a vrrp gateway"

hctl() { local h=$1; shift; "$evenctl" --socket "${socks[$h]}" "$@"; }
start_host() { # H: runs evenflowd in host H's namespace; waits until it answers
  local h=$1 i
  # ip netns exec execs evenflowd: $! is the daemon, for the signals the events send
  ip netns exec "${ns_h[$h]}" "$evenflowd" --config "$work/h$h.toml" >>"$work/h$h.log" 2>&1 &
  pids[$h]=$!
  for ((i = 0; i < 200; i++)); do
    hctl "$h" status >/dev/null 2>&1 && return 0
    kill -0 "${pids[$h]}" 2>/dev/null || break
    sleep 0.1
  done
  fail "host $h: evenflowd does not answer; its log ends:" "$(tail -20 "$work/h$h.log")"
  finish
}
held() { # H -> true|false: host H holds the backends' gateway
  hctl "$1" --json status 2>/dev/null | json 'str(r["gateways"][0]["held"]).lower()' 2>/dev/null || echo unknown
}
# The router's next hops for the VIP, sorted: "10.98.31.2 10.98.32.2", "10.98.32.2", "".
nexthops() {
  ip -n "$ns_r" route show "$vip" 2>/dev/null | grep -o 'via [0-9.]*' | awk '{print $2}' | sort | xargs
}
now() { date +%s.%N; }
mark() { # NAME: the moment the next event is caused, for the traffic's judge
  t_mark=$(now)
  echo "$1 $t_mark" >>"$work/marks"
}
timed() { # WHAT BOUND SECONDS|never: a figure and a check
  if [[ $3 == never ]]; then fail "$1: never (20 s)"; else within "$1, s" "$3" "$2"; fi
  figure "$1: $3 s"
}
# Seconds from the last mark until the router's kernel route to the VIP had exactly
# these next hops ("10.98.31.2 10.98.32.2", "10.98.32.2"), from `ip monitor route`.
timed_route() { # WHAT BOUND NEXT_HOPS
  timed "$1" "$2" "$(python3 "$root/test/e2e/hosts.py" route-at "$work/routes" $vip "$t_mark" "$3")"
}
# ... until host H logged EVENT (gateway_taken: it holds the backends' gateway).
timed_log() { # WHAT BOUND H EVENT
  timed "$1" "$2" "$(python3 "$root/test/e2e/hosts.py" log-at "$work/h$3.log" "$4" "$t_mark")"
}

# The router's route changes as its kernel reports them, with their times.
timeout 900 ip -n "$ns_r" -ts monitor route >"$work/routes" 2>&1 &
monitor_pid=$!

# ---- start: host 1 first, so that it holds the gateway; then host 2
mark start
start_host 1
timed_log "host 1 started alone: it takes the gateway" 5 1 gateway_taken
start_host 2
timed_route "both hosts announced (router: two next hops)" 15 "10.98.31.2 10.98.32.2"
expect_eq "host 2 stays the gateway's backup (equal priority)" "$(held 2)" false
expect_contains "evenctl status on host 1 says it holds the gateway" "$(hctl 1 status)" \
  "gateway 10.98.20.1 on backend-side: held"
sleep 1 # the second host's first verdicts

in_ns "$ns_c" python3 "$root/test/e2e/hosts.py" traffic $vip 80 50 0.2 10 "$work/stop-traffic" "$work/traffic.json" 300 \
  >"$work/traffic.log" 2>&1 &
traffic_pid=$!
sleep 1
mark split
syns_before=()
for h in 1 2; do syns_before[$h]=$(hctl "$h" --json stats | json 'r["totals"]["syns"]'); done
sleep 5

settle() { sleep "$1"; } # traffic goes on; the window is judged at the end

syns=()
for h in 1 2; do syns[$h]=$(( $(hctl "$h" --json stats | json 'r["totals"]["syns"]') - syns_before[h] )); done
figure "split of new connections over 5 s: host 1 ${syns[1]}, host 2 ${syns[2]} SYNs"
check "both hosts take new connections" test "${syns[1]}" -gt 5 -a "${syns[2]}" -gt 5

# kill -9 of host H, which holds the gateway: withdrawn, the other host takes it
kill_host() { # H
  local h=$1 other=$((3 - $1))
  mark "kill$h"
  kill -KILL "${pids[$h]}"
  wait "${pids[$h]}" 2>/dev/null
  pids[$h]=
  timed_route "kill -9 host $h: router withdraws it" 2 "${host_addr[$other]}"
  timed_log "kill -9 host $h: host $other holds the gateway" 2 "$other" gateway_taken
  settle 4
}
return_host() { # H MARK: host H starts again, announces, and stays the gateway's backup
  mark "$2"
  start_host "$1"
  timed_route "host $1 returns ($2): announced again" 15 "10.98.31.2 10.98.32.2"
  expect_eq "host $1 returns ($2) as the gateway's backup" "$(held "$1")" false
  settle 4
}
kill_host 1
return_host 1 return1
kill_host 2 # it took the gateway
return_host 2 return2

# SIGTERM of host 1 (holds the gateway): a planned stop hands it over at once, then
# withdraws, waits for the routers and lets its connections drain.
mark term1
t_term=$(now)
kill -TERM "${pids[1]}"
timed_log "SIGTERM host 1: host 2 holds the gateway" 1 2 gateway_taken
timed_route "SIGTERM host 1: router withdraws it" 2 "10.98.32.2"
wait "${pids[1]}"
rc=$?
pids[1]=
expect_eq "SIGTERM host 1: exits 0" "$rc" 0
figure "SIGTERM host 1: exited after $(python3 -c "print(f'{$(now) - $t_term:.2f}')") s"
settle 3

return_host 1 return1b

# SIGSTOP of host 2 (holds the gateway), then SIGCONT
mark stop2
kill -STOP "${pids[2]}"
timed_route "SIGSTOP host 2: router withdraws it (BFD)" 2 "10.98.31.2"
timed_log "SIGSTOP host 2: host 1 holds the gateway" 2 1 gateway_taken
settle 3
mark cont2
kill -CONT "${pids[2]}"
timed_route "SIGCONT host 2: announced again" 15 "10.98.31.2 10.98.32.2"
settle 4

# drain-host on host 2, which holds the gateway again (at SIGCONT both held it
# with equal priorities: the higher address keeps it), then undrain-host
expect_eq "after SIGCONT host 2 holds the gateway (equal priorities: higher address)" "$(held 2)" true
mark drain2
hctl 2 drain-host >/dev/null
timed_route "drain-host host 2: router withdraws it" 2 "10.98.31.2"
timed_log "drain-host host 2: host 1 holds the gateway" 1 1 gateway_taken
settle 4
mark undrain2
hctl 2 undrain-host >/dev/null
timed_route "undrain-host host 2: announced again" 15 "10.98.31.2 10.98.32.2"
settle 4

mark end
touch "$work/stop-traffic"
wait "$traffic_pid"
traffic_pid=
if [[ ! -s $work/traffic.json ]]; then
  fail "the traffic ran and wrote its results" "$(tail -20 "$work/traffic.log")"
  finish
fi

# ---- each window: 0 resets, 0 failed new connections; the worst stall is the figure
all_marks=(split kill1 return1 kill2 return2 term1 return1b stop2 cont2 drain2 undrain2 end)
for ((i = 0; i + 1 < ${#all_marks[@]}; i++)); do
  name=${all_marks[$i]}
  r=$(python3 "$root/test/e2e/hosts.py" judge "$work/traffic.json" "$work/marks" "$name" "${all_marks[$((i + 1))]}")
  resets=$(json 'r["resets"]' <<<"$r")
  new_failed=$(json 'r["new_failed"]' <<<"$r") # (not $failed: the harness's count)
  expect_eq "$name: long-lived connections reset or failed ($(json 'r["reset_kinds"]' <<<"$r"))" "$resets" 0
  expect_eq "$name: new connections failed of $(json 'r["new_started"]' <<<"$r") ($(json 'r["new_failed_kinds"]' <<<"$r"))" "$new_failed" 0
  figure "$name: worst stall $(json 'r["worst_stall_s"]' <<<"$r") s, slowest new connection $(json 'r["new_slowest_s"]' <<<"$r") s, $(json 'r["new_started"]' <<<"$r") new"
done
python3 - "$work/traffic.json" <<'PY' | while read -r line; do figure "$line"; done
import json, sys
d = json.load(open(sys.argv[1]))
n = sum(len(t) for t in d["exchanges"].values())
print(f"traffic: {len(d['exchanges'])} long-lived connections, {n} exchanges, {len(d['new'])} new connections")
PY

# ---- the fingerprint alert over both hosts' /metrics (promtool)
scrape() { # H -> host H's fingerprint and announcement series, as promtool input lines
  in_ns "${ns_h[$1]}" curl -sf http://127.0.0.1:9091/metrics |
    grep -E '^evenflow_(config_fingerprint|bgp_vip_announced)\{' | sed "s/{/{instance=\"lb$1:9091\",job=\"evenflow\",/"
}
promtool_case() { # NAME FIRES(yes|no): promtool test over both hosts' current scrapes
  local name=$1
  { scrape 1; scrape 2; } >"$work/scrape-$name.txt"
  # The expected alert's annotations are those of conf/prometheus/alerts_test.yml's
  # firing case: one text, checked there against the rule.
  python3 - "$work/scrape-$name.txt" "$2" "$root/conf/prometheus" >"$work/promtool-$name.yml" <<'PY'
import sys, yaml
scrape, fires, conf = sys.argv[1], sys.argv[2] == "yes", sys.argv[3]
expected = next(a for t in yaml.safe_load(open(f"{conf}/alerts_test.yml"))["tests"]
                for c in t.get("alert_rule_test", []) if c["alertname"] == "EvenflowFingerprintMismatch"
                for a in c.get("exp_alerts") or [])
series = [{"series": line.rsplit(" ", 1)[0], "values": f"{line.rsplit(' ', 1)[1].strip()}x8"}
          for line in open(scrape) if line.strip()]
print(yaml.safe_dump({"rule_files": [f"{conf}/alerts.yml"], "evaluation_interval": "15s",
    "tests": [{"interval": "15s", "input_series": series, "alert_rule_test": [
        {"eval_time": "1m", "alertname": "EvenflowFingerprintMismatch",
         "exp_alerts": [expected] if fires else []}]}]}))
PY
  check "fingerprint alert over both hosts' /metrics: $name" promtool test rules "$work/promtool-$name.yml"
}
promtool_case same-config no
sed 's/10.98.20.14", port = 8080, weight = 1/10.98.20.14", port = 8080, weight = 2/' "$work/h2.toml" >"$work/h2-other.toml"
applied=$(hctl 2 apply "$work/h2-other.toml" --accept-shift 2>&1)
expect_contains "host 2 applies another weight" "$applied" "version 2 running"
promtool_case other-weights yes

for h in 1 2; do
  [[ -n ${pids[$h]} ]] || continue
  kill -TERM "${pids[$h]}"
  wait "${pids[$h]}"
  expect_eq "host $h: exits 0 at the end" "$?" 0
  pids[$h]=
done
for h in 1 2; do
  lines=$(grep -c 'level=error' "$work/h$h.log")
  expect_eq "host $h: no errors in its log" "$lines" 0
done
finish
