#!/usr/bin/env bash
# [bgp]: health-gated VIP announcements through the real BGP speaker (BIRD 2, Debian
# bird2). A router namespace runs BIRD with a kernel protocol; evenflowd runs in a host
# namespace on net_null ports (no traffic: this tier is about what the router sees)
# and drives its own BIRD. Each step measures how long until the router's kernel route
# to the VIP appears or goes:
#   announced at start; withdrawn when the service has no backend up, on drain-host,
#   on SIGSTOP of the daemon and on a wedged worker (the liveness watchdog, test hook
#   EVENFLOW_TEST_WEDGE_FILE), each announced again on recovery; kill -9 of the daemon
#   withdraws (BIRD dies with it); SIGTERM withdraws first, waits [bgp] convergence,
#   then stops. Status and /metrics carry the fingerprint.
#
#   test/e2e/bgp.sh BUILD_DIR
set -uo pipefail

# shellcheck source=test/lib/harness.sh
source "$(dirname "$0")/../lib/harness.sh"
harness_init e2e-bgp "${1:?usage: test/e2e/bgp.sh BUILD_DIR}"
needs_root "network namespaces, DPDK, BIRD"
needs_tools ip bird birdc python3 curl
needs_binaries "$evenflowd" "$evenctl"
make_workdir

ns_r=efbgp-r-$$ ns_h=efbgp-h-$$ vip=10.97.100.100 detection=1
prefix=ef-bgp-$$
remove_on_teardown "/var/run/dpdk/$prefix"
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup_bgp() {
  [[ -s $work/router.pid ]] && kill "$(cat "$work/router.pid")" 2>/dev/null
  ip netns del "$ns_r" 2>/dev/null
  ip netns del "$ns_h" 2>/dev/null
  return 0
}
trap 'teardown; cleanup_bgp; harness_cleanup' EXIT

if ! ip netns add "$ns_r" || ! ip netns add "$ns_h"; then fail "namespaces $ns_r $ns_h"; finish; fi
ip link add efbgp-r0 netns "$ns_r" type veth peer name efbgp-h0 netns "$ns_h"
ip -n "$ns_r" addr add 10.97.30.1/24 dev efbgp-r0
ip -n "$ns_h" addr add 10.97.30.2/24 dev efbgp-h0
for n in "$ns_r" "$ns_h"; do ip -n "$n" link set lo up; done
ip -n "$ns_r" link set efbgp-r0 up
ip -n "$ns_h" link set efbgp-h0 up

cat >"$work/router.conf" <<ROUTER
log "$work/router.log" all;
router id 10.97.30.1;
protocol device { }
protocol kernel { ipv4 { import none; export where source = RTS_BGP; }; merge paths on; }
protocol bgp h1 {
  local 10.97.30.1 as 65000; neighbor 10.97.30.2 as 65001;
  hold time 3; keepalive time 1; connect retry time 1; error wait time 1, 5;
  graceful restart off;
  ipv4 { import where net ~ [ 10.97.100.0/24+ ]; export none; };
}
ROUTER
check "router BIRD starts" ip netns exec "$ns_r" bird -c "$work/router.conf" -s "$work/router.ctl" -P "$work/router.pid"

{
  config_head "$prefix" "$sock" "127.0.0.1:$((19000 + $$ % 1000))" 65536 1 net_null0 net_null1 \
    "--vdev=net_null0,no-rx=1" "--vdev=net_null1,no-rx=1"
  config_pool web '{ kind = "none" }' -- 10.20.0.11:8080:1 10.20.0.12:8080:1
  config_service web $vip 80 web
  config_bgp 10.97.30.2 10.97.30.1 'hold_time = "3s"' "detection = \"${detection}s\"" \
    'convergence = "1s"' 'drain_timeout = "5s"' 'return_path = "ecmp"'
} >"$work/h1.toml"

# waitroute present|absent: seconds until the router's kernel has (no) route to the VIP
waitroute() {
  python3 - "$1" "$ns_r" "$vip" <<'PY'
import subprocess, sys, time
want, ns, vip = sys.argv[1] == "present", sys.argv[2], sys.argv[3]
t0 = time.time()
while time.time() - t0 < 20:
    out = subprocess.run(["ip", "-n", ns, "route", "show", vip], capture_output=True, text=True).stdout
    if bool(out.strip()) == want:
        print(f"{time.time() - t0:.3f}")
        sys.exit(0)
    time.sleep(0.005)
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
step() { # WHAT present|absent BOUND_S: one check and one figure
  local t
  t=$(waitroute "$2")
  if [[ $t == never ]]; then
    fail "$1: route never $2"
  else
    within "$1: route $2 after, s" "$t" "$3"
  fi
  figure "$1: $t s"
}

checked=$("$evenctl" check "$work/h1.toml" 2>&1)
if [[ $checked != *"must not be one host"* ]]; then pass "check: no return-path warning with return_path set"; else fail "check: return-path warning with return_path set" "$checked"; fi
sed '/^return_path/d' "$work/h1.toml" >"$work/no-rp.toml"
checked=$("$evenctl" check "$work/no-rp.toml" 2>&1)
expect_contains "check: [bgp] without return_path warns about DNAT replies" "$checked" "must not be one host"

daemon_in=(env EVENFLOW_TEST_WEDGE_FILE="$work/wedge" ip netns exec "$ns_h")
start_daemon "$work/h1.toml" || finish
step "start -> announced" present 10
st=$(ctl --json status)
expect_eq "status: BIRD runs, the VIP is announced" "$(json 'r["bgp"]["vips"][0]["announced"]' <<<"$st")" "True"
fp=$(json 'r["fingerprint"]' <<<"$st")
check "status: a fingerprint ($fp)" test ${#fp} -eq 16
check "/metrics: evenflow_config_fingerprint with it" \
  bash -c "ip netns exec $ns_h curl -s http://127.0.0.1:$((19000 + $$ % 1000))/metrics | grep -q 'evenflow_config_fingerprint{fingerprint=\"$fp\"}'"

ctl disable web 10.20.0.11:8080 >/dev/null
ctl disable web 10.20.0.12:8080 >/dev/null
step "no backend up -> withdrawn" absent 1
ctl enable web 10.20.0.11:8080 >/dev/null
step "a backend back -> announced" present 1
expect_eq "drain/disable change the fingerprint" "$(ctl --json status | json 'r["fingerprint"] != "'"$fp"'"')" "True"
ctl enable web 10.20.0.12:8080 >/dev/null
expect_eq "and back: the same fingerprint" "$(ctl --json status | json 'r["fingerprint"]')" "$fp"

check "drain-host" ctl drain-host
step "drain-host -> withdrawn" absent 1
check "undrain-host" ctl undrain-host
step "undrain-host -> announced" present 1
# With --timeout it waits for the flows to end; with none (net_null carries no
# traffic) it answers at once. (A deferred answer with live flows: the two-host tier.)
expect_contains "drain-host --timeout with no flow answers at once" \
  "$(ctl drain-host --timeout 30 2>&1)" "0 flows active"
step "drain-host --timeout -> withdrawn" absent 1
check "undrain-host again" ctl undrain-host
step "undrain-host -> announced again" present 1

# A VIP added and removed by applies (BIRD reconfigured each time): the announced VIP
# stays announced throughout; the new one is announced, then withdrawn.
{ cat "$work/h1.toml"; config_service api 10.97.100.101 80 web; } >"$work/h1-two.toml"
bird_log=${sock%.sock}-bird.log
disabled_before=$(grep -c "Disabling protocol vip_${vip//./_}\$" "$bird_log")
route_samples "$vip" 3 absent >"$work/gaps" &
gaps_pid=$!
sleep 0.3
check "apply: a second VIP" ctl apply "$work/h1-two.toml"
vip_first=$vip vip=10.97.100.101
step "a VIP added by apply -> announced" present 2
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
expect_eq "BIRD listens on the host's address only (strict bind)" \
  "$(ip netns exec "$ns_h" ss -Hltn 'sport = :179' | awk '{print $4}' | sort -u | tr '\n' ' ')" "10.97.30.2:179 "
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

kill -STOP "$pid"
step "SIGSTOP of evenflowd -> withdrawn (detection ${detection}s)" absent "$((detection + 1))"
kill -CONT "$pid"
step "SIGCONT -> announced again" present 10

echo 0 >"$work/wedge"
step "worker 0 wedged -> withdrawn (detection ${detection}s)" absent "$((detection + 1))"
rm -f "$work/wedge"
step "worker 0 polls again -> announced again" present 10
check "the log says who killed BIRD" grep -q 'event=bgp_speaker_exited.*by="watchdog' "$log"

kill -KILL "$pid"
wait "$pid" 2>/dev/null
pid=
step "kill -9 of evenflowd -> withdrawn (BIRD dies with it)" absent 1
sleep 0.2
expect_eq "no BIRD of the host is left" "$(pgrep -f "^/usr/sbin/bird -f -c ${sock%.sock}-bird.conf" | wc -l)" "0"

start_daemon "$work/h1.toml" || finish
step "restart -> announced" present 10

# drain-host outlives a crash: kill -9 of a drained host, and it starts drained.
check "drain-host before a crash" ctl drain-host
step "drain-host -> withdrawn" absent 1
kill -KILL "$pid"
wait "$pid" 2>/dev/null
pid=
start_daemon "$work/h1.toml" || finish
expect_eq "restarted after kill -9: still drained (status)" \
  "$(ctl --json status | json 'r["host_drained"]')" "True"
check "restarted after kill -9: the log says the drain was resumed" \
  grep -q 'event=host_drain_resumed' "$log"
expect_eq "restarted after kill -9: the VIP stays withdrawn (samples with its route in 3 s)" \
  "$(route_samples "$vip" 3 present)" "0"
check "undrain-host" ctl undrain-host
step "undrain-host after the restart -> announced" present 2
t_term=$(now)
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
