#!/usr/bin/env bash
# [bgp]: health-gated VIP announcements through the real BGP speaker (BIRD 2, Debian
# bird2). A router namespace runs BIRD with a kernel protocol; evenflowd runs in a host
# namespace with its client-side port on the veth to the router (net_af_packet; the
# veth's kernel stack sees none of its frames, as with a NIC DPDK owns) and drives its
# own BIRD, whose session runs over that port through the exception path: the kernel
# interface evenflowd makes (kernel_interface), holding the port's address and MAC.
# A SYN flood at the host's address, from sources that are not the peer, must not
# break the session. Each step measures how long until the router's kernel route
# to the VIP appears or goes:
#   announced at start; withdrawn when the service has no backend up, on drain-host,
#   on SIGSTOP of the daemon and on a wedged worker (BFD first, then the liveness
#   watchdog; test hook EVENFLOW_TEST_WEDGE_FILE), each announced again on recovery; kill -9 of the daemon
#   withdraws (BFD, and BIRD dies with it); SIGTERM withdraws first, waits [bgp]
#   convergence, then stops. Status and /metrics carry the fingerprint. The router's
#   route changes are read from `ip monitor route`, timed from the event.
#
#   test/e2e/bgp.sh BUILD_DIR
set -uo pipefail

# shellcheck source=test/lib/harness.sh
source "$(dirname "$0")/../lib/harness.sh"
harness_init e2e-bgp "${1:?usage: test/e2e/bgp.sh BUILD_DIR}"
needs_root "network namespaces, DPDK, BIRD"
needs_tools ip nft ethtool bird birdc python3 curl hping3
needs_binaries "$evenflowd" "$evenctl"
make_workdir

ns_r=efbgp-r-$$ ns_h=efbgp-h-$$ vip=10.97.100.100 detection=1
prefix=ef-bgp-$$
remove_on_teardown "/var/run/dpdk/$prefix" "/var/run/dpdk/$prefix-b"
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup_bgp() {
  [[ -s $work/router.pid ]] && kill "$(cat "$work/router.pid")" 2>/dev/null
  [[ -n ${monitor_pid:-} ]] && kill "$monitor_pid" 2>/dev/null
  [[ -n ${other_pid:-} ]] && kill -KILL "$other_pid" 2>/dev/null
  ip netns del "$ns_r" 2>/dev/null
  ip netns del "$ns_h" 2>/dev/null
  return 0
}
trap 'teardown; cleanup_bgp; harness_cleanup' EXIT

if ! ip netns add "$ns_r" || ! ip netns add "$ns_h"; then fail "namespaces $ns_r $ns_h"; finish; fi
ip link add efbgp-r0 netns "$ns_r" type veth peer name efbgp-h0 netns "$ns_h"
ip -n "$ns_r" addr add 10.97.30.1/24 dev efbgp-r0
for n in "$ns_r" "$ns_h"; do ip -n "$n" link set lo up; done
ip -n "$ns_r" link set efbgp-r0 up
ip -n "$ns_h" link set efbgp-h0 up
# The host's veth is evenflowd's port, which the kernel's stack must not see; the
# router's sends whole checksums, as a wire does (veth offloads them otherwise).
check "efbgp-h0 is DPDK's alone" dpdk_owned "$ns_h" efbgp-h0
check "the router's veth computes checksums" ip netns exec "$ns_r" ethtool -K efbgp-r0 tx off

{
  router_bird_head 10.97.30.1 efbgp-r0 "$work/router.log"
  cat <<ROUTER
protocol bgp h1 {
  local 10.97.30.1 as 65000; neighbor 10.97.30.2 as 65001; bfd on;
  hold time 3; keepalive time 1; connect retry time 1; error wait time 1, 5;
  graceful restart off;
  ipv4 { import where net ~ [ 10.97.100.0/24+ ]; export none; };
}
ROUTER
} >"$work/router.conf"
check "router BIRD starts" ip netns exec "$ns_r" bird -c "$work/router.conf" -s "$work/router.ctl" -P "$work/router.pid"

{
  config_head --client-address 10.97.30.2/24 --client-kernel efbgp-k0 \
    --backend-vrrp '{ id = 20, address = "10.20.0.254", peers = ["10.20.0.3"] }' \
    "$prefix" "$sock" "127.0.0.1:$((19000 + $$ % 1000))" 65536 1 net_af_packet0 net_null1 \
    "--vdev=net_af_packet0,iface=efbgp-h0" "--vdev=net_null1,no-rx=1"
  config_pool web '{ kind = "none" }' -- 10.20.0.11:8080:1 10.20.0.12:8080:1
  config_service web $vip 80 web
  config_bgp 10.97.30.2 10.97.30.1 'hold_time = "3s"' "detection = \"${detection}s\"" \
    'convergence = "1s"' 'drain_timeout = "5s"' 'return_path = "vrrp"' 'bfd = true'
} >"$work/h1.toml"

# The router's route changes as its kernel reports them, with their times: what the
# steps measure (no sampling delay, no start-up time of the measuring tool).
timeout 900 ip -n "$ns_r" -ts monitor route >"$work/routes" 2>&1 &
monitor_pid=$!
# mark: the moment of the event the next step measures from (just before it is caused)
mark() { t_mark=$(now); }
# waitroute present|absent SINCE: seconds from SINCE (epoch) until the router's kernel
# added (removed) its route to the VIP; "never" after 20 s
waitroute() {
  python3 - "$1" "$vip" "$2" "$work/routes" <<'PY'
import datetime, re, sys, time
want, vip, since, path = sys.argv[1] == "present", sys.argv[2], float(sys.argv[3]), sys.argv[4]
line_re = re.compile(r"^\[([0-9T:.-]+)\] (Deleted )?(?:\S+ )?" + re.escape(vip) + r"(?:/32)? ")
while time.time() - since < 20:
    with open(path) as f:
        for line in f:
            m = line_re.match(line)
            if not m or (m.group(2) is None) != want:
                continue
            t = datetime.datetime.fromisoformat(m.group(1)).timestamp()
            if t >= since:
                print(f"{t - since:.3f}")
                sys.exit(0)
    time.sleep(0.02)
print("never")
sys.exit(1)
PY
}
# route_samples VIP SECONDS present|absent: of samples every 5 ms for SECONDS, how many
# found the router's route to VIP present (or absent); writes the count.
route_samples() {
  python3 - "$ns_r" "$1" "$2" "$3" <<'PY'
import subprocess, sys, time
ns, vip, seconds, want = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4] == "present"
count, t0 = 0, time.time()
while time.time() - t0 < seconds:
    out = subprocess.run(["ip", "-n", ns, "route", "show", vip], capture_output=True, text=True).stdout
    count += 1 if bool(out.strip()) == want else 0
    time.sleep(0.005)
print(count)
PY
}
step() { # WHAT present|absent BOUND_S: one check and one figure, from the last mark
  local t
  t=$(waitroute "$2" "$t_mark")
  t_mark=""
  if [[ $t == never ]]; then
    fail "$1: route never $2"
  else
    within "$1: route $2 after, s" "$t" "$3"
  fi
  figure "$1: $t s"
}

checked=$("$evenctl" check "$work/h1.toml" 2>&1)
if [[ $checked != *"must not be one host"* ]]; then pass "check: return_path = \"vrrp\" with a vrrp gateway passes"; else fail "check: return_path = \"vrrp\" refused" "$checked"; fi
sed '/^return_path/d' "$work/h1.toml" >"$work/no-rp.toml"
checked=$("$evenctl" check "$work/no-rp.toml" 2>&1)
expect_contains "check: [bgp] with DNAT and no return_path is refused" "$checked" "error: bgp.return_path"
expect_contains "check: ... saying why" "$checked" "must not be one host"

daemon_in=(env EVENFLOW_TEST_WEDGE_FILE="$work/wedge" ip netns exec "$ns_h")
mark
start_daemon "$work/h1.toml" || finish
step "start -> announced" present 10
# What BIRD confirmed (a command it did not answer in time is asked again each second).
for _ in $(seq 1 30); do
  st=$(ctl --json status)
  [[ $(json 'r["bgp"]["vips"][0]["announced"]' <<<"$st") == True ]] && break
  sleep 0.1
done
expect_eq "status: BIRD runs, the VIP is announced" "$(json 'r["bgp"]["vips"][0]["announced"]' <<<"$st")" "True"
# Alone on its network (net_null: no peer's adverts), it holds the backends' gateway.
for _ in $(seq 1 30); do
  [[ $(ctl --json status | json 'r["gateways"][0]["held"]') == True ]] && break
  sleep 0.1
done
expect_eq "status: alone, the host holds the vrrp gateway" "$(ctl --json status | json 'r["gateways"][0]["held"]')" "True"
check "/metrics: evenflow_gateway_held 1" \
  bash -c "ip netns exec $ns_h curl -s http://127.0.0.1:$((19000 + $$ % 1000))/metrics | grep -q '^evenflow_gateway_held{.*} 1'"
fp=$(json 'r["fingerprint"]' <<<"$st")
check "status: a fingerprint ($fp)" test ${#fp} -eq 16
check "/metrics: evenflow_config_fingerprint with it" \
  bash -c "ip netns exec $ns_h curl -s http://127.0.0.1:$((19000 + $$ % 1000))/metrics | grep -q 'evenflow_config_fingerprint{fingerprint=\"$fp\"}'"

# The exception path: the session above ran over the data port, through the kernel
# interface evenflowd made with the port's address and MAC.
expect_eq "the kernel interface holds the host's address" \
  "$(ip -n "$ns_h" -br -4 addr show dev efbgp-k0 | awk '{print $3}')" "10.97.30.2/24"
expect_eq "the kernel interface has the port's MAC" \
  "$(ip -n "$ns_h" -br link show dev efbgp-k0 | awk '{print $3}')" \
  "$(ip -n "$ns_h" -br link show dev efbgp-h0 | awk '{print $3}')"
st=$(ctl --json stats)
expect_eq "BGP went through it both ways (stats: $(json 'r["kernel_interfaces"]' <<<"$st"))" \
  "$(json 'r["kernel_interfaces"][0]["to_kernel"] > 0 and r["kernel_interfaces"][0]["from_kernel"] > 0 and r["totals"]["to_host_peer"] > 0' <<<"$st")" "True"
# A flood at the host's address from a source that is not the peer (SYNs to BGP's port,
# 4 s at about 5 times the host lane's budget): the peer's lane keeps the session,
# BFD's 300 ms included. (Faster floods starve the router's and our BIRD of this
# machine's two cores, whatever the lanes do: the generator shares them.)
# session_since: "SECONDS_OF_DAY STATE" of the router's session (BIRD prints the time
# it entered that state, give or take a millisecond between two calls)
session_since() {
  birdc -s "$work/router.ctl" show protocols h1 |
    awk '$1 == "h1" {split($5, t, ":"); printf "%.3f %s\n", t[1] * 3600 + t[2] * 60 + t[3], $6}'
}
# same_session BEFORE AFTER: both established, at the same time (to 0.1 s)
same_session() {
  awk -v a="$1" -v b="$2" 'BEGIN {
    split(a, x, " "); split(b, y, " ")
    exit !(x[2] == "Established" && y[2] == "Established" && (x[1] - y[1])^2 < 0.01) }'
}
since_before=$(session_since)
drops_before=$(ctl --json stats | json 'r["drops"].get("control_budget", 0)')
route_samples "$vip" 5 absent >"$work/flood-gaps" &
samples_pid=$!
ip netns exec "$ns_r" timeout 4 hping3 -q -S -p 179 -a 10.97.31.7 -i u20 10.97.30.2 >/dev/null 2>&1 &
flood_pid=$!
wait "$samples_pid" "$flood_pid"
st=$(ctl --json stats)
flooded=$(( $(json 'r["drops"].get("control_budget", 0)' <<<"$st") - drops_before ))
figure "flood at the host's address: $flooded dropped over the host lane's budget, $(json 'r["totals"]["to_host"]' <<<"$st") passed to the kernel in all"
check "the flood was dropped over budget ($flooded), not passed whole to the kernel" test "$flooded" -gt 20000
expect_eq "the flood: samples without the VIP's route" "$(cat "$work/flood-gaps")" "0"
since_after=$(session_since)
check "the flood: the router's session never restarted (established since $since_before, then $since_after)" \
  same_session "$since_before" "$since_after"

mark
ctl disable web 10.20.0.11:8080 >/dev/null
ctl disable web 10.20.0.12:8080 >/dev/null
step "no backend up -> withdrawn" absent 1
mark
ctl enable web 10.20.0.11:8080 >/dev/null
step "a backend back -> announced" present 1
expect_eq "drain/disable change the fingerprint" "$(ctl --json status | json 'r["fingerprint"] != "'"$fp"'"')" "True"
ctl enable web 10.20.0.12:8080 >/dev/null
expect_eq "and back: the same fingerprint" "$(ctl --json status | json 'r["fingerprint"]')" "$fp"

mark
check "drain-host" ctl drain-host
step "drain-host -> withdrawn" absent 1
mark
check "undrain-host" ctl undrain-host
step "undrain-host -> announced" present 1
# With --timeout it waits for the flows to end; with none (net_null carries no
# traffic) it answers at once. (A deferred answer with live flows: the two-host tier.)
mark
expect_contains "drain-host --timeout with no flow answers at once" \
  "$(ctl drain-host --timeout 30 2>&1)" "0 flows active"
step "drain-host --timeout -> withdrawn" absent 1
mark
check "undrain-host again" ctl undrain-host
step "undrain-host -> announced again" present 1

# A VIP added and removed by applies (BIRD reconfigured each time): the announced VIP
# stays announced throughout; the new one is announced, then withdrawn.
{ cat "$work/h1.toml"; config_service api 10.97.100.101 80 web; } >"$work/h1-two.toml"
bird_log=${sock%.sock}-bird/bird.log
disabled_before=$(grep -c "Disabling protocol vip_${vip//./_}\$" "$bird_log")
route_samples "$vip" 3 absent >"$work/gaps" &
gaps_pid=$!
sleep 0.3
mark
check "apply: a second VIP" ctl apply "$work/h1-two.toml"
vip_first=$vip vip=10.97.100.101
step "a VIP added by apply -> announced" present 2
mark
check "apply: the second VIP removed" ctl apply "$work/h1.toml"
step "the VIP removed by apply -> withdrawn" absent 2
vip=$vip_first
wait "$gaps_pid"
expect_eq "the announced VIP stayed announced through both reconfigures (samples without its route)" \
  "$(cat "$work/gaps")" "0"
expect_eq "BIRD never disabled the announced VIP's protocol in those reconfigures" \
  "$(grep -c "Disabling protocol vip_${vip//./_}\$" "$bird_log")" "$disabled_before"

# What BIRD is given: none of the daemon's descriptors, a listener on its own address.
bird_pid=$(ctl --json status | json 'r["bgp"]["pid"]')
shared_fds=$(python3 - "$pid" "$bird_pid" <<'PY'
import os, sys
def targets(p):
    out = {}
    for fd in os.listdir(f"/proc/{p}/fd"):
        try:
            out[int(fd)] = os.readlink(f"/proc/{p}/fd/{fd}")
        except OSError:
            pass
    return out
daemon, bird = targets(sys.argv[1]), targets(sys.argv[2])
print(sorted(t for fd, t in bird.items() if fd > 2 and t in set(daemon.values())))
PY
)
expect_eq "BIRD holds none of the daemon's descriptors" "$shared_fds" "[]"
expect_eq "BIRD runs as the user bird, with no capability but its own four" \
  "$(awk '/^Uid:/ {print $2} /^CapEff:/ {print $2}' "/proc/$bird_pid/status" | tr '\n' ' ')" \
  "$(id -u bird) 0000000000003c00 "
expect_eq "BIRD listens on the host's address only (strict bind)" \
  "$(ip netns exec "$ns_h" ss -Hltn 'sport = :179' | awk '{print $4}' | sort -u | tr '\n' ' ')" "10.97.30.2:179 "
# A second daemon whose socket shares the directory: its BIRD has files of its own,
# and the first's session and configuration are untouched.
{
  config_head --client-address 10.97.30.3/24 "$prefix-b" "$work/other.sock" "" 4096 1 \
    net_null0 net_null1 "--vdev=net_null0,no-rx=1" "--vdev=net_null1,no-rx=1"
  config_pool web '{ kind = "none" }' -- 10.20.0.11:8080:1
  config_service web $vip 80 web
  config_bgp 10.97.30.3 10.97.30.1 'return_path = "single"'
} >"$work/other.toml"
conf_before=$(sha256sum <"${sock%.sock}-bird/bird.conf")
since_before=$(session_since)
"${daemon_in[@]}" "$evenflowd" --config "$work/other.toml" >"$work/other.log" 2>&1 &
other_pid=$!
for _ in $(seq 1 100); do
  [[ -S $work/other-bird/bird.ctl ]] && "$evenctl" --socket "$work/other.sock" status >/dev/null 2>&1 && break
  sleep 0.1
done
check "a second daemon beside it runs its BIRD in other-bird/" test -S "$work/other-bird/bird.ctl"
sleep 1
expect_eq "the first daemon's BIRD configuration is untouched" \
  "$(sha256sum <"${sock%.sock}-bird/bird.conf")" "$conf_before"
since_after=$(session_since)
check "the first daemon's session is untouched ($since_before, then $since_after)" \
  same_session "$since_before" "$since_after"
kill -TERM "$other_pid"
wait "$other_pid"
expect_eq "the second daemon stops cleanly" "$?" "0"

# The watchdog killed: a new one at once, and it still withdraws a frozen daemon.
wdog=$(ctl --json status | json 'r["bgp"]["watchdog_pid"]')
kill -KILL "$wdog"
for _ in $(seq 1 50); do
  [[ $(ctl --json status | json 'r["bgp"]["watchdog_pid"]') != "$wdog" ]] && break
  sleep 0.1
done
check "the watchdog killed: the log says so" grep -q 'event=bgp_watchdog_died' "$log"
check "the watchdog killed: a new one runs" \
  kill -0 "$(ctl --json status | json 'r["bgp"]["watchdog_pid"]')"

# A frozen daemon forwards nothing, BFD's packets included: the router's BFD (100 ms x
# 3) drops the session first. The freeze outlasts [bgp] detection, so the watchdog
# stops BIRD too, and BIRD starts again with the daemon.
mark
kill -STOP "$pid"
step "SIGSTOP of evenflowd -> withdrawn (BFD)" absent "$((detection + 1))"
sleep "$((detection + 1))"
mark
kill -CONT "$pid"
step "SIGCONT -> announced again" present 10
check "SIGSTOP: the watchdog stopped BIRD (logged once the daemon runs)" \
  grep -q 'event=bgp_speaker_exited.*by="watchdog' "$log"

# A wedged worker 0 sends nothing (the kernel's frames leave through it): the same.
watchdog_kills=$(grep -c 'event=bgp_speaker_exited.*by="watchdog' "$log")
mark
echo 0 >"$work/wedge"
step "worker 0 wedged -> withdrawn (BFD)" absent "$((detection + 1))"
sleep "$((detection + 1))"
check "wedged: the watchdog stopped BIRD again" \
  test "$(grep -c 'event=bgp_speaker_exited.*by="watchdog' "$log")" -gt "$watchdog_kills"
mark
rm -f "$work/wedge"
step "worker 0 polls again -> announced again" present 10

mark
kill -KILL "$pid"
wait "$pid" 2>/dev/null
pid=
step "kill -9 of evenflowd -> withdrawn (BFD; BIRD dies with it)" absent 1
sleep 0.2
expect_eq "no BIRD of the host is left" "$(pgrep -f "^/usr/sbin/bird -f -c ${sock%.sock}-bird/bird.conf" | wc -l)" "0"

mark
start_daemon "$work/h1.toml" || finish
step "restart -> announced" present 10

# drain-host outlives a crash: kill -9 of a drained host, and it starts drained.
mark
check "drain-host before a crash" ctl drain-host
step "drain-host -> withdrawn" absent 1
mark
kill -KILL "$pid"
wait "$pid" 2>/dev/null
pid=
# Its BIRD watchdog (a fork: it shares DPDK's mappings, and with them the lock on
# DPDK's runtime files) exits within one 20 ms poll of the daemon's death; a start
# before that is refused by EAL. (Under systemd, the unit's cgroup is killed whole.)
for _ in $(seq 1 100); do pgrep -x evenflow-wdog >/dev/null || break; sleep 0.02; done
mark
start_daemon "$work/h1.toml" || finish
expect_eq "restarted after kill -9: still drained (status)" \
  "$(ctl --json status | json 'r["host_drained"]')" "True"
check "restarted after kill -9: the log says the drain was resumed" \
  grep -q 'event=host_drain_resumed' "$log"
expect_eq "restarted after kill -9: the VIP stays withdrawn (samples with its route in 3 s)" \
  "$(route_samples "$vip" 3 present)" "0"
# The session comes up again first (BIRD started, the router's connect retry), then:
for _ in $(seq 1 150); do [[ $(session_since) == *Established* ]] && break; sleep 0.1; done
mark
check "undrain-host" ctl undrain-host
step "undrain-host after the restart -> announced" present 2
t_term=$(now)
mark
kill -TERM "$pid"
step "SIGTERM -> withdrawn first" absent 1
for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
t_gone=$(now)
wait "$pid" 2>/dev/null
rc=$?
pid=
expect_eq "SIGTERM: clean exit" "$rc" "0"
figure "SIGTERM -> process gone: $(elapsed "$t_term" "$t_gone") s (convergence 1s, then 1s quiet)"
check "SIGTERM: the log has stop_withdrawing and stop_drained" grep -q 'event=stop_drained' "$log"

check_daemon_log
finish
