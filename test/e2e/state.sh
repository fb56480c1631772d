#!/usr/bin/env bash
# Restart-safe state ([control] state_dir, lib/control/state_store.hpp) under real TCP
# (scripts/netns topology):
# 1. apply v2 (b4 removed: not the file's backend set), disable b3, then 10 HTTP
#    keep-alive connections exchanging every 200 ms; kill -9 evenflowd and start it on
#    the same file: version 2 and the disabled b3 are back, status says "resumed" and
#    that the running config differs from the file; the connections: 0 resets, worst
#    stall reported.
# 2. A corrupted state.json, then a torn version file: the daemon starts from the file
#    and says why (log and status).
# 3. A file edited since the state was saved is the desired state: it wins.
#
#   test/e2e/state.sh BUILD_DIR
set -uo pipefail

# shellcheck source=test/lib/harness.sh
source "$(dirname "$0")/../lib/harness.sh"
harness_init e2e-state "${1:?usage: test/e2e/state.sh BUILD_DIR}"
hp=$root/test/e2e/health.py
needs_root "network namespaces, DPDK"
needs_tools nginx curl python3 ethtool ip flock
needs_binaries "$evenflowd" "$evenctl"
make_workdir
topology_up 4
state=$work/state

write_config() { # FILE BACKEND_NUMBERS...
  local file=$1 k web=()
  shift
  for k in "$@"; do web+=("10.20.0.$((10 + k)):8080:1"); done
  {
    lb_config_head 65536
    config_pool web '{ kind = "none" }' -- "${web[@]}"
    config_service web 10.10.0.100 80 web
  } >"$file"
}
write_config "$work/v1.toml" 1 2 3 4
write_config "$work/v2.toml" 1 2 3

st() { ctl --json status | json "$1"; }
kill9() { # kills evenflowd (no clean stop)
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  pid=
}

start_daemon "$work/v1.toml" || finish
for _ in $(seq 1 50); do in_client curl -sf -m 2 -o /dev/null http://10.10.0.100/hello && break; sleep 0.2; done
expect_eq "first start: from the file (no state yet)" "$(st 'r["state"]["start"]')" "file"
check "first start: state.json is written" test -s "$state/state.json"
check "apply v2 (b4 removed)" ctl apply "$work/v2.toml"
check "disable b3" ctl disable web 10.20.0.13:8080
expect_eq "status: the running config differs from the file" "$(st 'r["file"]["differs"]')" "True"

# ---- 1. kill -9 and restart under 10 keep-alive connections ----
rm -f "$work/stop" "$work/ready"
in_client python3 "$hp" traffic --rate 0 --echo 0 --keepalive 10 --interval 0.2 --stall 10 \
  --duration 60 --stop "$work/stop" --ready "$work/ready" >"$work/traffic.json" 2>"$work/traffic.err" &
tpid=$!
bgpids+=("$tpid")
for _ in $(seq 1 50); do [[ -e $work/ready ]] && break; sleep 0.1; done
check "test 1: 10 keep-alive connections run" test -e "$work/ready"
sleep 1
t_kill=$(now)
kill9
start_daemon "$work/v1.toml" || finish
t_back=$(now)
figure "kill -9 -> evenflowd answers again: $(elapsed "$t_kill" "$t_back") s"
expect_eq "test 1: resumed version 2" "$(st 'r["version"]')" "2"
expect_eq "test 1: status says resumed from state_dir" "$(st 'r["state"]["start"]')" "resumed"
expect_eq "test 1: status says the running config differs from the file" "$(st 'r["file"]["differs"]')" "True"
check "test 1: the log says which version, from where" grep -q "event=state_resumed.*version=2.*dir=$state" "$log"
b=$(ctl --json backends web)
expect_eq "test 1: b3 is disabled again" \
  "$(json '[x["state"] for x in r["backends"] if x["backend"] == "10.20.0.13:8080"]' <<<"$b")" "['disabled']"
expect_eq "test 1: b4 is not back (v2 runs)" \
  "$(json 'len([x for x in r["backends"] if x["backend"] == "10.20.0.14:8080"])' <<<"$b")" "0"
shown=$(ctl status)
expect_contains "test 1: evenctl status names the resumed version" "$shown" "resumed version 2"
expect_contains "test 1: evenctl status says the config differs from the file" "$shown" "differs from $work/v1.toml"
sleep 3
touch "$work/stop"
wait "$tpid"
report=$(cat "$work/traffic.json")
errors=$(json '[c["error"] for c in r["longlived"] if c["error"]]' <<<"$report")
stall=$(json 'max(c["max_gap_s"] for c in r["longlived"])' <<<"$report")
expect_eq "test 1: 10 keep-alive connections across kill -9 + restart: 0 errors" "$errors" "[]"
expect_eq "test 1: 10 connections ran" "$(json 'len(r["longlived"])' <<<"$report")" "10"
figure "kill -9 + restart (resumed v2, b3 disabled): 10 keep-alive connections, 0 resets; worst stall $stall s"

# ---- 2. corrupted and torn state ----
kill9
echo '{"format": 1, "next_vers' >"$state/state.json"
start_daemon "$work/v1.toml" || finish
expect_eq "test 2: corrupted state.json: started from the file" "$(st 'r["state"]["start"]')" "file"
expect_contains "test 2: status says why" "$(st 'r["state"]["reason"]')" "not valid JSON"
check "test 2: the log says why (warning)" grep -q 'level=warning event=state_not_resumed.*not valid JSON' "$log"
expect_eq "test 2: the file's backends run" "$(ctl --json backends web | json 'len(r["backends"])')" "4"
check "test 2: apply v2 again" ctl apply "$work/v2.toml"
v=$(st 'r["version"]')
kill9
f="$state/v$v.toml"
check "test 2: version $v has its file" test -s "$f"
head -c 100 "$f" >"$f.cut" && mv "$f.cut" "$f"
start_daemon "$work/v1.toml" || finish
expect_eq "test 2: torn version file: started from the file" "$(st 'r["state"]["start"]')" "file"
expect_contains "test 2: status says why" "$(st 'r["state"]["reason"]')" "does not match its hash"
check "test 2: versions keep growing across restarts" test "$(st 'r["version"]')" -gt "$v"

# ---- 3. an edited file wins ----
check "test 3: apply v2" ctl apply "$work/v2.toml"
kill9
echo "# edited" >>"$work/v1.toml"
start_daemon "$work/v1.toml" || finish
expect_eq "test 3: edited file: started from the file" "$(st 'r["state"]["start"]')" "file"
expect_contains "test 3: status says the file changed" "$(st 'r["state"]["reason"]')" "changed since version"
expect_eq "test 3: running config is the file's" "$(st 'r["file"]["differs"]')" "False"

check_daemon_log
check_nothing_left
finish
