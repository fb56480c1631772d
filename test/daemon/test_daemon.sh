#!/usr/bin/env bash
# Daemon tier: evenflowd as a real process (net_null ports), driven by evenctl.
# Usage: test_daemon.sh BUILD_DIR
set -uo pipefail

# shellcheck source=test/lib/harness.sh
source "$(dirname "$0")/../lib/harness.sh"
harness_init daemon "${1:?usage: test_daemon.sh BUILD_DIR}"
needs_root "DPDK EAL, /run"
needs_tools python3 curl dpdk-telemetry.py
needs_binaries "$evenflowd" "$evenctl"
make_workdir
prefix=evenflow-daemon-test-$$
remove_on_teardown "/var/run/dpdk/$prefix" "/var/run/dpdk/$prefix-2" "/var/run/dpdk/$prefix-3"
metrics_port=$((19000 + $$ % 1000))

write_config() { # FILE [EXTRA_BACKEND]: net_null ports, pool web behind 10.10.0.100:80
  {
    config_head "$prefix" "$sock" "127.0.0.1:$metrics_port" 65536 1 net_null0 net_null1 \
      "--vdev=net_null0,no-rx=1" "--vdev=net_null1,no-rx=1"
    config_pool web '{ kind = "none" }' -- \
      10.20.0.11:8080:1 10.20.0.12:8080:1 10.20.0.13:8080:2 "${@:2}"
    config_service web 10.10.0.100 80 web
  } >"$1"
}

write_config "$work/v1.toml"
write_config "$work/v2.toml" 10.20.0.14:8080:1
sed 's/weight = 1 },$/weight = 1, colour = "blue" },/' "$work/v2.toml" >"$work/bad.toml"

# ---- start ----
# The test hook lets the tier wedge a worker (see "a wedged worker" below).
daemon_in=(env EVENFLOW_TEST_WEDGE_FILE="$work/wedge")
start_daemon "$work/v1.toml" "$work/daemon.log" || finish
daemon_in=()
pass "evenflowd answers on its socket"
expect_eq "socket mode is 0660" "$(stat -c %a "$sock")" "660"

status=$(ctl --json status)
expect_eq "status: version 1" "$(json 'r["version"]' <<<"$status")" "1"
expect_eq "status: one worker" "$(json 'len(r["workers"])' <<<"$status")" "1"
expect_eq "status: uptime is a number" "$(json 'type(r["uptime_s"]).__name__' <<<"$status")" "float"

expect_contains "services table" "$(ctl services)" "10.10.0.100:80"
backends=$(ctl backends)
expect_contains "backends table header" "$backends" "EXPECTED"
expect_contains "backends: 13 has half the weight" "$(grep 10.20.0.13 <<<"$backends")" "50.0%"

# ---- apply a good config ----
out=$(ctl apply "$work/v2.toml"); rc=$?
expect_eq "apply good: exit 0" "$rc" "0"
expect_contains "apply good: version 2" "$out" "version 2 running"
expect_contains "apply good: diff names the new backend" "$out" "10.20.0.14:8080"
expect_eq "backends after apply" "$(json 'len(r["backends"])' <<<"$(ctl --json backends web)")" "4"

# ---- apply a bad config: refused, old one still serving ----
out=$(ctl apply "$work/bad.toml" 2>&1); rc=$?
expect_eq "apply bad: exit 1" "$rc" "1"
expect_contains "apply bad: names file, line and key" "$out" "bad.toml:"
expect_contains "apply bad: unknown key" "$out" "colour"
expect_eq "apply bad: version still 2" "$(json 'r["version"]' <<<"$(ctl --json status)")" "2"
expect_eq "apply bad: 4 backends still" "$(json 'len(r["backends"])' <<<"$(ctl --json backends)")" "4"

# ---- history and rollback ----
hist=$(ctl --json history)
expect_eq "history: two versions" "$(json 'len(r["history"])' <<<"$hist")" "2"
expect_eq "history: uid recorded" "$(json 'r["history"][1]["uid"]' <<<"$hist")" "$(id -u)"
out=$(ctl rollback); rc=$?
expect_eq "rollback: exit 0" "$rc" "0"
expect_contains "rollback: version 3" "$out" "version 3 running"
expect_eq "rollback: 3 backends" "$(json 'len(r["backends"])' <<<"$(ctl --json backends)")" "3"
out=$(ctl rollback 42 2>&1); rc=$?
expect_eq "rollback to unknown version: exit 1" "$rc" "1"
expect_contains "rollback to unknown version: says so" "$out" "version 42 is not kept"

# ---- guarded apply: a config that moves most weight onto one backend ----
write_config "$work/shift.toml"
sed -i 's/10.20.0.11", port = 8080, weight = 1/10.20.0.11", port = 8080, weight = 36/' "$work/shift.toml"
out=$(ctl apply "$work/shift.toml" 2>&1); rc=$?
expect_eq "shift: refused with exit 1" "$rc" "1"
expect_contains "shift: review names the backend" "$out" "backend 10.20.0.11:8080 expected share 25.0% -> 92.3%"
expect_eq "shift: running config untouched" "$(json 'r["version"]' <<<"$(ctl --json status)")" "3"
check_out=$("$evenctl" check "$work/shift.toml" 2>&1); rc=$?
expect_eq "shift: check exits 0 (a warning)" "$rc" "0"
expect_contains "shift: check flags the dominant backend" "$check_out" "holds 92.3% of pool web's weight"
# diff: the same review, nothing applied
out=$(ctl diff "$work/shift.toml" 2>&1); rc=$?
expect_eq "diff of the shift: exit 1 (apply would refuse)" "$rc" "1"
expect_contains "diff of the shift: the changes" "$out" "changes against version 3:"
expect_contains "diff of the shift: the review" "$out" "expected share 25.0% -> 92.3%"
out=$(ctl diff "$work/v2.toml" 2>&1); rc=$?
expect_eq "diff of v2: exit 0 (apply would accept)" "$rc" "0"
expect_contains "diff of v2: names the new backend" "$out" "10.20.0.14:8080"
expect_contains "diff of v2: the verdict" "$out" "apply would accept this config"
out=$(ctl diff "$work/bad.toml" 2>&1); rc=$?
expect_eq "diff of a bad config: exit 1" "$rc" "1"
expect_contains "diff of a bad config: the error" "$out" "colour"
expect_eq "diff: nothing applied" "$(json 'r["version"]' <<<"$(ctl --json status)")" "3"
expect_eq "status: the daemon's release" "$(json 'r["evenflow_version"]' <<<"$(ctl --json status)")" \
  "$("$evenctl" --version | awk '{print $NF}')"
out=$(ctl apply "$work/shift.toml" --accept-shift 2>&1); rc=$?
expect_eq "shift: --accept-shift applies" "$rc" "0"
expect_contains "shift: version 4" "$out" "version 4 running"
ctl rollback >/dev/null

# ---- status: the running config against its file (read off the control loop) ----
file_field() { ctl --json status | json "r['file'].get('$1')"; }
expect_eq "file: the running config is the file's" "$(file_field differs)" "False"
cp "$work/v1.toml" "$work/v1.kept"
cp "$work/v2.toml" "$work/v1.toml"
expect_eq "file edited (b4 added): status says it differs" "$(file_field differs)" "True"
expect_eq "file edited: the diff counts its change" "$(file_field changes)" "1"
echo 'colour = "blue"' >>"$work/v1.toml"
expect_contains "file broken: status says it does not load" "$(file_field error)" \
  "v1.toml does not load (1 errors)"
expect_contains "file broken: evenctl status says so" "$(ctl status)" "does not load"
rm "$work/v1.toml"
expect_contains "file removed: status says it cannot be read" "$(file_field error)" "cannot read"
cp "$work/v1.kept" "$work/v1.toml"
expect_eq "file restored: the running config is the file's again" "$(file_field differs)" "False"
expect_eq "file: the daemon still answers, version 5" "$(json 'r["version"]' <<<"$(ctl --json status)")" "5"

# ---- drain / disable / enable ----
state_of() { ctl --json backends web | json "[b['state'] for b in r['backends'] if b['backend']=='$1'][0]"; }
ctl drain web 10.20.0.11:8080 >/dev/null
expect_eq "drain" "$(state_of 10.20.0.11:8080)" "draining"
ctl disable web 10.20.0.12:8080 >/dev/null
expect_eq "disable" "$(state_of 10.20.0.12:8080)" "disabled"
ctl enable web 10.20.0.11:8080 >/dev/null
expect_eq "enable" "$(state_of 10.20.0.11:8080)" "up"
out=$(ctl drain web 10.20.0.99:8080 2>&1); rc=$?
expect_eq "drain unknown backend: exit 1" "$rc" "1"
expect_contains "drain unknown backend: message" "$out" "has no backend 10.20.0.99:8080"

# ---- stats, skew ----
expect_contains "stats" "$(ctl stats)" "rx_packets"
expect_eq "skew: no alarms" "$(ctl skew)" "no alarms"
clients_text=$(ctl clients web)
expect_contains "clients: the window's totals" "$clients_text" "web: 0 verified connections, 0 SYNs"
expect_contains "clients: by address and by network" "$clients_text" "NETWORK"
out=$(ctl clients nosuch 2>&1); rc=$?
expect_eq "clients of an unknown service: exit 2 (usage)" "$rc" "2"
expect_contains "clients of an unknown service: says so" "$out" 'no service "nosuch"'
out=$(ctl clients web --limit 0 2>&1); rc=$?
expect_contains "clients --limit 0: a usage error" "$out" "N must be a positive integer"
out=$(ctl clients web --limit 101 2>&1); rc=$?
expect_eq "clients --limit 101: exit 2 (usage)" "$rc" "2"
expect_contains "clients --limit 101: refused" "$out" "limit must be 1 to 100"

# ---- Prometheus exposition and DPDK telemetry ----
for _ in $(seq 1 30); do # rendered once a second and on every change: allow a refresh
  metrics=$(curl -fsS "http://127.0.0.1:$metrics_port/metrics"); rc=$?
  [[ $metrics == *'backend="10.20.0.13:8080"} 0.5'* ]] && break
  sleep 0.1
done
expect_eq "metrics: served" "$rc" "0"
expect_contains "metrics: config version" "$metrics" "evenflow_config_version "
expect_contains "metrics: per-backend expected share" "$metrics" 'evenflow_backend_expected_share{service="web",backend="10.20.0.13:8080"} 0.5'
expect_contains "metrics: refused applies counted" "$metrics" 'evenflow_config_apply_refused_total{reason="invalid"} 1'
if command -v promtool >/dev/null; then
  promtool_out=$(promtool check metrics <<<"$metrics" 2>&1); rc=$?
  expect_eq "metrics: promtool check metrics ($promtool_out)" "$rc" "0"
else
  fail "metrics: promtool is not installed (scripts/bootstrap installs prometheus)"
fi
expect_contains "metrics: per-service aggregates" "$metrics" 'evenflow_service_active_flows{service="web"} 0'
expect_contains "metrics: heavy-hitter alarms apart from config skew" "$metrics" 'evenflow_backend_heavy_hitter_alarm{service="web",backend="10.20.0.13:8080"} 0'
expect_contains "metrics: every backend exported by default" "$metrics" 'evenflow_metrics_backends_exported 3'

# metrics_backends bounds the per-backend series; the per-service ones stay.
running=$(json 'r["version"]' <<<"$(ctl --json status)")
not_up=$(ctl --json backends | json "sum(1 for b in r['backends'] if b['state'] not in ('up', 'unknown'))")
{
  sed -n '1,/^\[dataplane\]/p' "$work/v1.toml" | sed '$d'
  echo 'metrics_backends = "alarmed"'
  echo
  sed -n '/^\[dataplane\]/,$p' "$work/v1.toml"
} >"$work/bounded.toml"
out=$(ctl apply "$work/bounded.toml" 2>&1)
expect_contains "metrics: metrics_backends applies" "$out" 'control.metrics_backends: all -> alarmed'
bounded=$(curl -fsS "http://127.0.0.1:$metrics_port/metrics")
expect_contains "metrics: \"alarmed\" exports the $not_up backend(s) not up" "$bounded" "evenflow_metrics_backends_exported $not_up"
expect_eq "metrics: their series only" "$(grep -c '^evenflow_backend_expected_share{' <<<"$bounded")" "$not_up"
expect_contains "metrics: per-service aggregates stay" "$bounded" 'evenflow_service_new_flows_total{service="web"}'
ctl apply "$work/v1.toml" >/dev/null
expect_eq "metrics: both applies made versions" "$(json 'r["version"]' <<<"$(ctl --json status)")" "$((running + 2))"

# ---- a wedged worker: the skew judgement waits for its sketches, then goes on ----
# Counters read beyond what the client sketches hold would make a few clients' skew
# look like the config's; so a tick whose sketches are incomplete is held back, for
# at most 5 s (then the judgement goes on, said in the log).
held=$(ctl --json status | json 'r["control_loop"]["skew_ticks_held"]')
echo 0 >"$work/wedge"
sleep 7.5
rm -f "$work/wedge"
held_after=$(ctl --json status | json 'r["control_loop"]["skew_ticks_held"]')
check "wedged worker: 5 skew ticks held back ($held -> $held_after)" test "$((held_after - held))" -eq 5
expect_contains "wedged worker: the log says the judgement went on without its sketches" \
  "$(cat "$work/daemon.log")" "event=skew_clients_incomplete"
sleep 2
held_later=$(ctl --json status | json 'r["control_loop"]["skew_ticks_held"]')
expect_eq "worker back: no tick held any more" "$held_later" "$held_after"

telemetry=$(echo "/evenflow/status" | timeout 10 dpdk-telemetry.py -f "$prefix" 2>&1)
expect_contains "telemetry: /evenflow/status" "$telemetry" '"version":'

# ---- evenctl top in a terminal (tmux): renders, refreshes, quits on q ----
if command -v tmux >/dev/null; then
  session="evenflow-top-$$"
  tmux new-session -d -s "$session" -x 160 -y 40 "$evenctl --socket $sock top; echo TOP-EXITED; sleep 30"
  sleep 2.5
  screen=$(tmux capture-pane -p -t "$session")
  expect_contains "top: header" "$screen" "evenflow top  version"
  expect_contains "top: service section" "$screen" "service web"
  expect_contains "top: backend row with a share bar" "$screen" "10.20.0.13:8080"
  expect_contains "top: alarms line" "$screen" "no alarms"
  tmux send-keys -t "$session" q
  sleep 1
  expect_contains "top: q quits" "$(tmux capture-pane -p -t "$session")" "TOP-EXITED"
  tmux kill-session -t "$session" 2>/dev/null
else
  fail "top: tmux is not installed (scripts/bootstrap installs it)"
fi

# ---- bad input on the socket: error reply, connection and daemon survive ----
reply=$(python3 - "$sock" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
f = s.makefile("rwb")
out = []
for line in [b"this is not json\n", b"[1,2]\n", b'{"cmd": 5}\n', b'{"cmd": "rollback", "version": "x"}\n', b'{"cmd": "status"}\n']:
    f.write(line); f.flush()
    out.append(f.readline().decode().strip())
print("\n".join(out))
PY
)
expect_contains "malformed line: error reply" "$(sed -n 1p <<<"$reply")" '"ok":false'
expect_contains "non-object: error reply" "$(sed -n 2p <<<"$reply")" "malformed request"
expect_contains "bad cmd type: error reply" "$(sed -n 3p <<<"$reply")" "missing \\\"cmd\\\""
expect_contains "bad field type: error reply" "$(sed -n 4p <<<"$reply")" "malformed request"
expect_contains "same connection still served" "$(sed -n 5p <<<"$reply")" '"ok":true'

# ---- usage errors ----
ctl frobnicate >/dev/null 2>&1; expect_eq "unknown command: exit 2" "$?" "2"
ctl drain web >/dev/null 2>&1; expect_eq "missing argument: exit 2" "$?" "2"
"$evenctl" --socket "$work/nobody.sock" status >"$work/out" 2>&1; rc=$?
expect_eq "no daemon: exit 2" "$rc" "2"
expect_contains "no daemon: what to do" "$(cat "$work/out")" "is evenflowd running?"
"$evenctl" check "$work/bad.toml" >/dev/null 2>&1; expect_eq "check bad: exit 1" "$?" "1"
"$evenctl" check "$work/v2.toml" >/dev/null 2>&1; expect_eq "check good: exit 0" "$?" "0"

# ---- the pick hash's seed: unset, generated, kept, never shown ----
expect_contains "check: warns that without hash_seed hosts pick differently" \
  "$("$evenctl" check "$work/v2.toml" 2>&1)" "dataplane.hash_seed: unset: each host generates its own"
sed 's/^flow_capacity = .*/&\nhash_seed = "00112233445566778899aabbccddeeff"/' "$work/v2.toml" >"$work/seeded.toml"
seeded_check=$("$evenctl" check "$work/seeded.toml" 2>&1); rc=$?
expect_eq "check with hash_seed: exit 0" "$rc" "0"
check "check with hash_seed: no seed warning" test "${seeded_check/hash_seed/}" == "$seeded_check"
seed_file=${sock%/*}/state/hash_seed
check "the seed evenflowd generated is kept in state_dir ($seed_file)" grep -Eqx '[0-9a-f]{32}' "$seed_file"
seed=$(cat "$seed_file" 2>/dev/null)
shown=$( (ctl --json status; ctl --json stats; ctl --json backends; ctl history; curl -fsS "http://127.0.0.1:$metrics_port/metrics"; cat "$work/daemon.log") 2>&1)
check "the seed is in no status, stats, backends, history, /metrics or log" \
  test -n "$seed" -a "${shown/$seed/}" == "$shown"

# ---- hostile and careless socket clients: status keeps answering ----
# (the control loop serves one request per client at a time, writes without blocking,
# evicts the longest idle client at the connection cap, and reads at most 4 MiB a line)
for case in flood-no-read idle big-line slow reconnect; do
  out=$(python3 "$(dirname "$0")/hostile.py" "$sock" "$case" --seconds 3)
  echo "#   $out"
  figure "control socket under '$case': $(json '"status p50 %s ms, max %s ms, %s samples, %s errors" % (r["p50_ms"], r["max_ms"], r["samples"], r["errors"])' <<<"$out")"
  # The stall these clients caused before was seconds (4.7 s for flood-no-read); a
  # bound of one second catches that kind, not the scheduling noise of a 2-core VM
  # shared with builds (max 360 ms seen there; ~50 ms on a quiet one). Measured, normal
  # build, quiet machine, 6 runs of this tier: 'reconnect' (the worst case) median
  # 15-26 ms, max 73-101 ms; the others median ~0.5 ms, max ~6 ms. A compile beside it
  # pushed the reconnect median to 106 ms once: the bound of 100 ms stays 4x the
  # measured median.
  # How many answers fit in 3 s is a speed: the sanitizer build (clang's ASan+UBSan
  # served 'reconnect' at a median of 123 ms: 15 answers) only needs them all answered.
  samples_needed=20 answered="over 20 samples"
  ((sanitized)) && samples_needed=0 answered="0 errors; the sample count is a speed here"
  check "hostile client '$case': status answered every time ($answered)" \
    python3 -c 'import json,sys; r=json.loads(sys.argv[1]); sys.exit(0 if r["errors"] == 0 and r["samples"] > int(sys.argv[2]) else 1)' "$out" "$samples_needed"
  within "hostile client '$case': median status reply, ms" "$(json 'r["p50_ms"]' <<<"$out")" 100
  within "hostile client '$case': slowest status reply, ms" "$(json 'r["max_ms"]' <<<"$out")" 1000
done
expect_contains "big line: told why it was closed" "$(python3 "$(dirname "$0")/hostile.py" "$sock" big-line --seconds 0.5)" "request too large"
sock_stats=$(ctl --json status | json 'r["control_socket"]')
echo "#   control socket: $sock_stats"
check "idle connections beyond the cap were evicted, not refused" \
  python3 -c 'import ast,sys; r=ast.literal_eval(sys.argv[1]); sys.exit(0 if r["evicted"] > 0 else 1)' "$sock_stats"

# ---- a second daemon on the same socket refuses to start ----
timeout 60 "$evenflowd" --config "$work/v1.toml" >"$work/second.log" 2>&1; rc=$?
expect_eq "second daemon: exit 1" "$rc" "1"
expect_contains "second daemon: says why" "$(cat "$work/second.log")" "another evenflowd answers"
ctl status >/dev/null 2>&1; expect_eq "first daemon still serving" "$?" "0"

# ---- SIGHUP re-reads the file ----
cp "$work/v2.toml" "$work/v1.toml"
before_hup=$(json 'r["version"]' <<<"$(ctl --json status)")
kill -HUP "$pid"
for _ in $(seq 1 50); do
  [[ $(json 'r["version"]' <<<"$(ctl --json status)") == $((before_hup + 1)) ]] && break
  sleep 0.1
done
expect_eq "SIGHUP: applied as the next version" "$(json 'r["version"]' <<<"$(ctl --json status)")" "$((before_hup + 1))"

# ---- SIGTERM: clean shutdown, no socket left ----
stop_daemon; rc=$?
expect_eq "SIGTERM: exit 0" "$rc" "0"
if [[ -e $sock ]]; then fail "SIGTERM: socket removed"; else pass "SIGTERM: socket removed"; fi
expect_contains "log: structured apply line" "$(cat "$work/daemon.log")" "event=apply version=2"

# ---- a start refused after the metrics server has started exits at once ----
# (httplib's stop() did nothing until its thread listened: a refusal right after the
# start could leave evenflowd joining that thread for minutes.) Five times: it raced.
{ cat "$work/v2.toml"; config_bgp 10.97.30.2 10.97.30.1 'speaker = "/nonexistent/bird"' 'return_path = "single"'; } \
  >"$work/nobird.toml"
refused_slowest=0
for attempt in 1 2 3 4 5; do
  t0=$(now)
  timeout 60 "$evenflowd" --config "$work/nobird.toml" >"$work/nobird.log" 2>&1; rc=$?
  took=$(elapsed "$t0" "$(now)")
  refused_slowest=$(python3 -c "print(max($refused_slowest, $took))")
  [[ $rc == 1 ]] || break
done
expect_eq "refused after metrics started: exit 1, five times" "$rc" "1"
expect_contains "refused after metrics started: says why" "$(cat "$work/nobird.log")" \
  "speaker /nonexistent/bird cannot be run"
figure "start refused by [bgp] after the metrics server started: slowest exit of 5: $refused_slowest s"
within "start refused after the metrics server started: exits, s" "$refused_slowest" 10

# ---- two workers on one CPU (--lcores): both run, both take part in RCU ----
sed -e 's/"-l", "0-1"/"--lcores", "0@0,1@1,2@1"/' -e 's/^workers = \[1\]/workers = [1, 2]/' \
  -e "s/$prefix/$prefix-2/" "$work/v2.toml" >"$work/two.toml"
sed -i "s/^metrics = .*/metrics = \"\"\nsocket_group = \"nogroup\"/" "$work/two.toml"
start_daemon "$work/two.toml" "$work/two.log"
two=$(ctl --json status)
expect_eq "two workers: both reported" "$(json 'len(r["workers"])' <<<"$two")" "2"
expect_eq "two workers: lcores 1 and 2" "$(json '[w["lcore"] for w in r["workers"]]' <<<"$two")" "[1, 2]"
# net_null has no RSS of the client's fields: the workers hand packets to owners.
expect_eq "two workers: ports steer by hand-off" "$(json '[p["steering"] for p in r["ports"]]' <<<"$two")" "['handoff', 'handoff']"
expect_eq "one worker: nothing to steer" "$(json '[p["steering"] for p in r["ports"]]' <<<"$status")" "['single', 'single']"
sed 's/weight = 2 }/weight = 3 }/' "$work/two.toml" >"$work/two_b.toml"
out=$(ctl apply "$work/two_b.toml" 2>&1); rc=$?
expect_contains "two workers: new version" "$out" "running"
expect_eq "two workers: an apply completes its grace period over both" "$rc" "0"

# ---- roles (this daemon's socket belongs to group nogroup): the group reads, only
# ---- root and [control] admins change state ----
expect_eq "roles: the socket's group is nogroup" "$(stat -c %G "$sock")" "nogroup"
chmod 644 "$work"/*.toml
as_nobody() { setpriv --reuid=65534 --regid=65534 --groups=65534 "$evenctl" --socket "$sock" "$@" 2>&1; }
out=$(as_nobody status); rc=$?
expect_eq "roles: a group member reads status" "$rc" "0"
out=$(as_nobody apply "$work/two.toml"); rc=$?
expect_eq "roles: a group member's apply is refused (exit 1)" "$rc" "1"
expect_contains "roles: the refusal names the uid" "$out" "uid 65534 may not apply"
out=$(as_nobody drain web 10.20.0.11:8080); rc=$?
expect_contains "roles: drain refused too" "$out" "uid 65534 may not drain"
sed 's/^socket_group = .*/&\nadmins = [65534]/' "$work/two_b.toml" >"$work/two_admins.toml"
chmod 644 "$work/two_admins.toml"
ctl apply "$work/two_admins.toml" >/dev/null
out=$(as_nobody drain web 10.20.0.11:8080); rc=$?
expect_eq "roles: an admin uid drains" "$rc" "0"
stop_daemon; rc=$?
expect_eq "two workers: SIGTERM exit 0" "$rc" "0"

# ---- the series guard: four equal backends, one raised 1 -> 2 -> 6 -> 18 in quick
# ---- applies; each step is small, the series is a funnel (judged against the baseline) ----
series_config() { # FILE WEIGHT_OF_10.20.0.11
  {
    config_head "$prefix-3" "$sock" "127.0.0.1:$metrics_port" 65536 1 net_null0 net_null1 \
      "--vdev=net_null0,no-rx=1" "--vdev=net_null1,no-rx=1"
    config_pool web '{ kind = "none" }' -- \
      "10.20.0.11:8080:$2" 10.20.0.12:8080:1 10.20.0.13:8080:1 10.20.0.14:8080:1
    config_service web 10.10.0.100 80 web
  } >"$1"
}
for w in 1 2 6 18; do series_config "$work/series-$w.toml" "$w"; done
cp "$work/series-1.toml" "$work/series.toml"
# A fresh host: no state_dir from the daemons above, so its history starts at version 1.
rm -rf "${sock%/*}/state"
start_daemon "$work/series.toml" "$work/series.log" || finish
me=$(id -u)
fresh_status() { # status --json once its drift describes the running version and baseline
  local st
  for _ in $(seq 1 50); do
    st=$(ctl --json status)
    [[ $(json '(r["baseline"]["drift_of"]["version"], r["baseline"]["drift_of"]["baseline"]) == (r["version"], r["baseline"]["version"])' <<<"$st") == True ]] && break
    sleep 0.1
  done
  echo "$st"
}
drift_of() { # BACKEND -> its drift from the baseline in status, rounded
  fresh_status | json "round(([d['drift'] for d in r['baseline']['drift'] if d['backend']=='$1'] + [0])[0], 4)"
}
metrics_with() { # TEXT: the exposition once it has it (rendered once a second)
  local m
  for _ in $(seq 1 30); do
    m=$(curl -fsS "http://127.0.0.1:$metrics_port/metrics")
    [[ $m == *"$1"* ]] && break
    sleep 0.1
  done
  echo "$m"
}
out=$(ctl apply "$work/series-2.toml" 2>&1); rc=$?
expect_eq "series: step 1 (25% -> 40%, x1.6) applies" "$rc" "0"
expect_eq "series: baseline still v1" "$(ctl --json status | json 'r["baseline"]["version"]')" "1"
expect_eq "series: status shows 10.20.0.11's drift from it" "$(drift_of 10.20.0.11:8080)" "0.15"
expect_eq "series: ...and the others'" "$(drift_of 10.20.0.12:8080)" "-0.05"
expect_eq "series: four backends drifted" "$(fresh_status | json 'r["baseline"]["backends_drifted"]')" "4"
sleep 1
out=$(ctl apply "$work/series-6.toml" 2>&1); rc=$?
echo "# the refusal of step 2:"
sed 's/^/#   /' <<<"$out"
expect_eq "series: step 2 (40% -> 66.7%, x1.7 from the running version) refused, exit 1" "$rc" "1"
expect_contains "series: the refusal names the baseline" "$out" \
  "backend 10.20.0.11:8080 expected share 25.0% (baseline v1, "
expect_contains "series: ...and tells the series" "$out" \
  "-> 66.7% across 2 applies (v2 uid $me, candidate): x2.7, limit x2.0"
expect_contains "series: ...and the funnel check warns about" "$out" \
  "candidate): more than all the others together: the funnel \`evenctl check\` warns about"
expect_eq "series: still version 2" "$(ctl --json status | json 'r["version"]')" "2"
metrics=$(metrics_with 'evenflow_backend_baseline_drift{service="web",backend="10.20.0.11:8080"} 0.15')
expect_contains "series: /metrics has the baseline version" "$metrics" "evenflow_config_baseline_version 1"
expect_contains "series: /metrics has each backend's drift" "$metrics" \
  'evenflow_backend_baseline_drift{service="web",backend="10.20.0.11:8080"} 0.15
'
expect_contains "series: /metrics, a shrinking one too" "$metrics" \
  'evenflow_backend_baseline_drift{service="web",backend="10.20.0.12:8080"} -0.05'
expect_contains "series: no accepted shift" "$metrics" "evenflow_config_baseline_accepted 0"

# SIGHUP carrying the same series: the same guard, the same story in the log.
cp "$work/series-6.toml" "$work/series.toml"
kill -HUP "$pid"
for _ in $(seq 1 50); do grep -q 'event=apply_refused.*via=sighup' "$work/series.log" && break; sleep 0.1; done
hup=$(grep 'event=apply_refused.*via=sighup' "$work/series.log" | tail -1)
echo "#   $hup"
expect_contains "series: SIGHUP refused" "$hup" 'reason="distribution shift"'
expect_contains "series: SIGHUP refusal names the baseline and the series" "$hup" \
  "expected share 25.0% (baseline v1, "
expect_contains "series: SIGHUP refusal, the same series" "$hup" \
  "-> 66.7% across 2 applies (v2 uid $me, candidate): x2.7, limit x2.0"
expect_eq "series: SIGHUP left version 2 running" "$(ctl --json status | json 'r["version"]')" "2"

# Accepted: applies, moves the baseline, and the history says who.
out=$(ctl apply "$work/series-6.toml" --accept-shift 2>&1); rc=$?
expect_eq "series: --accept-shift applies" "$rc" "0"
expect_contains "series: version 3" "$out" "version 3 running"
status=$(ctl --json status)
expect_eq "series: the baseline moved to v3" "$(json 'r["baseline"]["version"]' <<<"$status")" "3"
expect_eq "series: baseline accepted by uid $me" \
  "$(json '(r["baseline"]["accepted_shift"], r["baseline"]["uid"], r["baseline"]["accepted_from"])' <<<"$status")" \
  "(True, $me, 1)"
expect_eq "series: history marks v3 accepted" "$(ctl --json history | json '[e["version"] for e in r["history"] if e["accepted_shift"]]')" "[3]"
expect_contains "series: history says so" "$(ctl history)" "(--accept-shift: the series baseline from here)"
expect_contains "series: status says so" "$(ctl status)" "baseline v3 since"
metrics=$(metrics_with 'evenflow_backend_accepted_drift{service="web",backend="10.20.0.11:8080"} 0.416667')
expect_contains "series: /metrics, the baseline moved" "$metrics" "evenflow_config_baseline_version 3"
expect_contains "series: /metrics, an accepted baseline" "$metrics" "evenflow_config_baseline_accepted 1"
expect_contains "series: /metrics, the drift it accepted" "$metrics" \
  'evenflow_backend_accepted_drift{service="web",backend="10.20.0.11:8080"} 0.416667'
grep -q 'event=apply version=3 .*accepted_shift=' "$work/series.log"
expect_eq "series: the log names the accepted shift" "$?" "0"
# Step 3 (66.7% -> 85.7%) is judged against the accepted v3: within the limits.
out=$(ctl apply "$work/series-18.toml" 2>&1); rc=$?
expect_eq "series: step 3 against the moved baseline applies" "$rc" "0"
# A rollback inside the window is always allowed, and brings back v2's baseline (v1).
out=$(ctl rollback 2 2>&1); rc=$?
expect_eq "series: rollback to v2 inside the window: exit 0" "$rc" "0"
expect_eq "series: the baseline is v1 again" "$(ctl --json status | json 'r["baseline"]["version"]')" "1"
stop_daemon; rc=$?
expect_eq "series: SIGTERM exit 0" "$rc" "0"
finish
