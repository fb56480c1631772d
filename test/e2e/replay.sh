#!/usr/bin/env bash
# A bad-config incident replayed end to end with real TCP in the namespace topology:
# a config that passes validation but points the health check of three of four web
# backends at a wrong port, applied under steady traffic. The skew guard must raise an
# alarm and roll back on its own.
#
#   test/e2e/replay.sh BUILD_DIR
#
# Good config (version 1): pool "web" b1..b4:8080 and pool "echo" b1..b4:9000, both with
# health { tcp, interval 500ms, timeout 300ms, fall 2, rise 2 }; [skew] window 2s,
# threshold 2.0, min_flows 100, action rollback, probation 60s.
# Bad config (version 2): the web pool's health `port = 8089`. Health is per pool, so the
# port applies to all four; only b1 listens on 8089 (an extra listener started here),
# so b2, b3, b4 fail their probes (RST) and go down while they are perfectly healthy.
# `evenctl check` accepts it and the apply guard lets it through (weights unchanged).
#
# Traffic (client namespace, started before the apply, running throughout): new HTTP
# connections at RATE/s to the web VIP, 20 long-lived echo connections and 20 long-lived
# HTTP keep-alive connections (web), each exchanging every 100 ms.
#
# Measured (from evenflowd's log times): apply -> backends down -> alarm -> automatic
# rollback -> backends up again; targets: alarm <= 2 s after the backends go down,
# rollback <= 5 s after the apply. Resets of established connections are counted per
# pool: the echo pool is untouched by the bad config (target: zero); web keep-alive
# connections pinned to b2..b4 are reset by design when those backends are marked down
# (a down backend's flows are answered with RST), and that count is reported as is.
# An `evenctl skew` output taken during the alarm is printed. Ends with
# "N passed, N failed"; exits non-zero on failure; tears everything down on exit.
# Must not run concurrently with the other e2e scripts (shared ef- names).
set -uo pipefail

# shellcheck source=test/lib/harness.sh
source "$(dirname "$0")/../lib/harness.sh"
harness_init replay "${1:?usage: test/e2e/replay.sh BUILD_DIR}"
hp=$root/test/e2e/health.py

RATE=${EVENFLOW_REPLAY_RATE:-300} # new HTTP connections per second
LONG=20                           # long-lived connections of each kind
INTERVAL=0.5 TIMEOUT=0.3 RISE=2 FALL=2
ALARM_TARGET=2.0    # s from the backends going down to the alarm
ROLLBACK_TARGET=5.0 # s from the apply to the automatic rollback

needs_root "network namespaces, DPDK"
needs_tools nginx curl python3 ethtool ip flock
needs_binaries "$evenflowd" "$evenctl"
make_workdir
states() { # SERVICE -> "ADDR:PORT=state ..."
  ctl --json backends "$1" | json '" ".join(b["backend"] + "=" + b["state"] for b in r["backends"])'
}

# ---- topology, servers ----
topology_up 4
# The wrong health port: only b1 listens there.
ip netns exec ef-b1 setsid python3 "$hp" listen 10.20.0.11 8089 >"$work/listen8089.log" 2>&1 </dev/null &
bgpids+=($!)

write_config() { # FILE WEB_HEALTH_EXTRA
  local health="{ kind = \"tcp\", interval = \"500ms\", timeout = \"300ms\", rise = $RISE, fall = $FALL"
  {
    lb_config_head 262144
    config_pool web "$health$2 }" -- 10.20.0.1{1,2,3,4}:8080:1
    config_pool echo "$health }" -- 10.20.0.1{1,2,3,4}:9000:1
    config_service web 10.10.0.100 80 web
    config_service echo 10.10.0.100 9000 echo
    config_skew 2s 2.0 100 rollback 'probation = "60s"'
  } >"$1"
}
write_config "$work/good.toml" ""
write_config "$work/bad.toml" ", port = 8089"

# ---- daemon ----
t_start=$(now)
start_daemon "$work/good.toml" || finish
pass "evenflowd starts on $driver (pid $pid)"
if waitlog "$t_start" 10 event=health to=up --count 8 >/dev/null; then
  pass "all 8 backends (web, echo) up"
else
  fail "backends come up: $(states web) $(states echo)"
  finish
fi
v_good=$(ctl --json status | json 'r["version"]')

# The bad config is valid: check accepts it (no errors).
if ctl check "$work/bad.toml" >"$work/check.txt" 2>&1; then
  pass "evenctl check accepts the bad config (it is valid: the mistake is semantic)"
else
  fail "evenctl check rejects the bad config: $(head -5 "$work/check.txt")"
fi

# ---- steady traffic ----
echo "# traffic: $RATE new HTTP connections/s, $LONG echo + $LONG HTTP keep-alive long-lived connections (every 100 ms)"
ip netns exec ef-client python3 "$hp" traffic --rate "$RATE" --echo $LONG --keepalive $LONG \
  --interval 0.1 --duration 60 --stop "$work/stop" --ready "$work/ready" >"$work/traffic.json" 2>"$work/traffic.err" &
traffic_pid=$!
bgpids+=($traffic_pid)
for _ in $(seq 1 100); do [[ -f $work/ready ]] && break; sleep 0.1; done
[[ -f $work/ready ]] || { fail "traffic starts: $(cat "$work/traffic.err")"; finish; }
sleep 4 # two full skew windows of fair traffic
out=$(ctl skew)
check "steady traffic: no alarm before the apply ($out)" test "$out" == "no alarms"
ctl backends web | sed 's/^/#   /'

# ---- the bad apply ----
t_apply=$(now)
apply_out=$(ctl apply "$work/bad.toml" 2>&1)
rc=$?
t_applied=$(now)
echo "#   evenctl apply bad.toml (rc $rc): $(tr '\n' ' ' <<<"$apply_out")"
check "the bad config is accepted by apply (guard: no weight shift)" test $rc -eq 0
v_bad=$(ctl --json status | json 'r["version"]')

# Watch: capture `evenctl skew` and `evenctl backends web` during the alarm.
skew_capture="" backends_capture="" skew_at=""
deadline=$(($(date +%s) + 15))
while (($(date +%s) < deadline)); do
  if [[ -z $skew_capture ]]; then
    s=$(ctl skew 2>&1)
    if [[ $s != "no alarms" ]]; then
      skew_at=$(now)
      skew_capture=$s
      backends_capture=$(ctl backends web 2>&1)
    fi
  fi
  if [[ -n $skew_capture ]] && grep -q 'event=auto_rollback' "$log" &&
    [[ $(loglines "$t_apply" event=health service=web to=up | wc -l) -ge 3 ]]; then
    break
  fi
  sleep 0.1
done

# ---- figures from the log ----
mapfile -t downs < <(loglines "$t_apply" event=health service=web to=down)
t_down1=$(waitlog "$t_apply" 0 event=health service=web to=down --count 1)
t_down3=$(waitlog "$t_apply" 0 event=health service=web to=down --count 3)
t_alarm=$(waitlog "$t_apply" 0 'event=skew_alarm|no_backend_alarm')
t_rb=$(waitlog "$t_apply" 0 event=auto_rollback)
t_up3=$(waitlog "${t_rb:-$t_apply}" 0 event=health service=web to=up --count 3)
echo "# log from the apply on:"
loglines "$t_apply" 'event=apply|apply_change|health|skew_alarm|skew_clear|no_backend_alarm|auto_rollback|auto_rollback_failed' |
  sed 's/^/#   /'

check "three web backends go down after the apply (${#downs[@]})" test ${#downs[@]} -ge 3
check "they are b2, b3, b4 (b1 listens on the wrong port too)" \
  bash -c "! printf '%s\n' \"\$@\" | grep -q 'backend=10.20.0.11:8080'" _ "${downs[@]}"
if [[ -n $t_down3 ]]; then
  figure "apply -> first backend down: $(elapsed "$t_apply" "$t_down1") s; -> third down: $(elapsed "$t_apply" "$t_down3") s"
fi
if [[ -n $t_alarm && -n $t_down3 ]]; then
  a1=$(elapsed "$t_down1" "$t_alarm")
  a3=$(elapsed "$t_down3" "$t_alarm")
  first_alarm=$(loglines "$t_apply" 'event=skew_alarm|no_backend_alarm' | head -1)
  figure "backends down -> alarm: $a1 s after the first, $a3 s after the third (target <= $ALARM_TARGET s); apply -> alarm: $(elapsed "$t_apply" "$t_alarm") s"
  echo "#   first alarm: $first_alarm"
  within "alarm, s after the first backend went down" "$a1" "$ALARM_TARGET"
else
  fail "no alarm after the apply (downs: ${#downs[@]})"
fi
if [[ -n $t_rb ]]; then
  r=$(elapsed "$t_apply" "$t_rb")
  figure "apply -> automatic rollback: $r s (target <= $ROLLBACK_TARGET s); alarm -> rollback: $(elapsed "${t_alarm:-$t_rb}" "$t_rb") s"
  echo "#   $(loglines "$t_apply" event=auto_rollback | head -1)"
  within "automatic rollback, s after the apply" "$r" "$ROLLBACK_TARGET"
else
  fail "no automatic rollback within 15 s of the apply"
fi
v_now=$(ctl --json status | json 'r["version"]')
running_origin=$(ctl --json history | python3 -c '
import json, sys
print([e["origin"] for e in json.load(sys.stdin)["history"] if e["running"]][0])')
check "running version $v_now ($running_origin) after $v_good (good) and $v_bad (bad)" \
  test "$v_now" -gt "$v_bad" -a "$running_origin" == "rollback to $v_good"
if [[ -n $t_up3 ]]; then
  figure "rollback -> b2..b4 up again: $(elapsed "$t_rb" "$t_up3") s (rise $RISE x interval ${INTERVAL}s); apply -> all up: $(elapsed "$t_apply" "$t_up3") s"
  check "after the rollback b2, b3, b4 come back up" true
else
  fail "b2..b4 up again after the rollback: $(states web)"
fi
if [[ -n $skew_capture ]]; then
  echo "# evenctl skew, $(elapsed "$t_apply" "$skew_at") s after the apply:"
  sed 's/^/#   /' <<<"$skew_capture"
  echo "# evenctl backends web at the same moment:"
  sed 's/^/#   /' <<<"$backends_capture"
  pass "evenctl skew shows the alarm"
else
  fail "evenctl skew never showed an alarm"
fi

# ---- let traffic settle on the good config, then stop it ----
sleep 3
touch "$work/stop"
for _ in $(seq 1 150); do kill -0 $traffic_pid 2>/dev/null || break; sleep 0.1; done
t_end=$(now)
report=$(cat "$work/traffic.json")
if [[ -z $report ]]; then
  fail "traffic report: $(tail -5 "$work/traffic.err")"
  finish
fi
python3 - "$report" "$t_apply" "${t_down1:-0}" "${t_up3:-$t_end}" "${t_rb:-0}" >"$work/summary.txt" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
t_apply, t_down1, t_up3, t_rb = (float(a) for a in sys.argv[2:6])
t0 = r["t0"]
print(f"traffic: {r['requests_ok']} requests ok, {r['requests_failed']} failed, {r['skipped']} skipped, "
      f"achieved {r['rate_achieved']}/s over {r['seconds']} s; failure kinds {r['failure_kinds']}")
print("new connections per second by backend (s = seconds after the apply):")
for sec, b in r["per_second"].items():
    rel = int(sec) + t0 - t_apply
    row = " ".join(f"{k}={b.get(k, 0):<4}" for k in ("b1", "b2", "b3", "b4", "fail"))
    print(f"  {rel:+6.1f}  {row}")
fails = r["failures"]
in_episode = [f for f in fails if t_down1 - 1 <= f["at"] <= t_up3 + 0.5]
print(f"new-connection failures: {len(fails)} total, {len(in_episode)} between the first down and "
      f"the recovery: " + ", ".join(f"{f['at'] - t_apply:+.2f}s {f['kind']}" for f in fails[:12]))
for kind in ("echo", "keepalive"):
    cs = [c for c in r["longlived"] if c["kind"] == kind]
    errs = [c for c in cs if c["error"]]
    by = {}
    for c in cs:
        by[c["backend"]] = by.get(c["backend"], 0) + 1
    print(f"{kind}: {len(cs)} long-lived connections {dict(sorted((str(k), v) for k, v in by.items()))}, "
          f"{sum(c['exchanges'] for c in cs)} exchanges, {len(errs)} ended in error: " +
          ", ".join(f"{c['backend']}:{c['error']}@{(c['error_at'] or 0) - t_apply:+.2f}s" for c in errs))
print("JSON " + json.dumps({
    "failures_total": len(fails),
    "refused": sum(1 for f in fails if f["kind"] == "refused"),
    "failures_after_recovery": sum(1 for f in fails if f["at"] > t_up3 + 0.5),
    "failures_before_apply": sum(1 for f in fails if f["at"] < t_apply),
    "echo_errors": sum(1 for c in r["longlived"] if c["kind"] == "echo" and c["error"]),
    "echo_resets": sum(1 for c in r["longlived"] if c["kind"] == "echo" and c["error"] == "reset"),
    "ka_total": sum(1 for c in r["longlived"] if c["kind"] == "keepalive"),
    "ka_on_down": sum(1 for c in r["longlived"] if c["kind"] == "keepalive" and c["backend"] in ("b2", "b3", "b4")),
    "ka_resets": sum(1 for c in r["longlived"] if c["kind"] == "keepalive" and c["error"] == "reset"),
    "ka_errors_on_b1": sum(1 for c in r["longlived"] if c["kind"] == "keepalive" and c["backend"] == "b1" and c["error"]),
    "ka_other_errors": sum(1 for c in r["longlived"] if c["kind"] == "keepalive" and c["error"] not in (None, "reset")),
    "rate": r["rate_achieved"],
    "last_seconds_backends": sorted({k for sec, b in list(r["per_second"].items())[-3:-1] for k in b if k != "fail"}),
}))
PY
sed '/^JSON /d; s/^/#   /' "$work/summary.txt"
s=$(sed -n 's/^JSON //p' "$work/summary.txt")
g() { json "r['$1']" <<<"$s"; }
figure "resets of established connections: echo pool (untouched by the bad config) $(g echo_resets) of $LONG; web keep-alive $(g ka_resets) of $(g ka_total) ($(g ka_on_down) were pinned to b2..b4, reset by design when those were marked down)"
figure "new HTTP connections: $(g failures_total) failed of all sent at $(g rate)/s"
check "steady traffic before the apply: no failed request" test "$(g failures_before_apply)" -eq 0
check "echo pool: zero resets (zero errors) of established long-lived connections" test "$(g echo_errors)" -eq 0
check "web keep-alive: no error on connections pinned to b1 (the backend that stayed up)" test "$(g ka_errors_on_b1)" -eq 0
check "web keep-alive: resets only where the backend was marked down ($(g ka_resets) <= $(g ka_on_down))" \
  test "$(g ka_resets)" -le "$(g ka_on_down)" -a "$(g ka_other_errors)" -eq 0
check "no new connection refused (a SYN answered with RST while b1 is up would be a balancer bug; $(g refused) refused)" \
  test "$(g refused)" -eq 0
check "no failed new connection after the recovery" test "$(g failures_after_recovery)" -eq 0
check "after the rollback new connections reach all four backends again ($(g last_seconds_backends))" \
  test "$(g last_seconds_backends)" == "['b1', 'b2', 'b3', 'b4']"

# ---- teardown ----
check_nothing_left
check_daemon_log
finish
