#!/usr/bin/env bash
# Skew from the traffic's shape under real TCP (scripts/netns topology): new
# connections spread fairly over four equal backends, but every connection that lands
# on b2 downloads 2 MB, the others a few bytes. Flow counts stay fair; the bytes
# basis raises the alarm, which `evenctl skew` explains as traffic, not config, and
# which never rolls back (the guard's action is rollback, inside probation).
# Then a src_ip service on probation with action = "rollback", where one client can
# skew a backend whatever the config: spoofed SYNs from one source (counted unverified;
# a heavy_hitter alarm on SYNs naming the source, no rollback), from thousands of
# sources (no alarm at all), and real connections from one client, as from a NAT
# gateway (a heavy_hitter alarm on verified connections naming it, no rollback).
#
#   test/e2e/skew.sh BUILD_DIR
set -uo pipefail

# shellcheck source=test/lib/harness.sh
source "$(dirname "$0")/../lib/harness.sh"
harness_init skew "${1:?usage: test/e2e/skew.sh BUILD_DIR}"
e2e=$root/test/e2e/e2e.py
needs_root "network namespaces, DPDK"
needs_tools nginx curl python3 ethtool ip flock
needs_binaries "$evenflowd" "$evenctl"
make_workdir

topology_up 4
metrics_at=127.0.0.1:$((19000 + $$ % 1000))
lb_head() { lb_config_head 65536 | sed "s/^metrics = \"\"$/metrics = \"$metrics_at\"/"; }
write_config() { # FILE
  {
    lb_head
    config_pool web '{ kind = "tcp", interval = "1s", timeout = "500ms", rise = 1, fall = 3 }' -- \
      10.20.0.11:8080:1 10.20.0.12:8080:1 10.20.0.13:8080:1 10.20.0.14:8080:1
    config_service web 10.10.0.100 80 web
    config_skew 5s 2.0 100 rollback 'probation = "5m"' 'min_bytes = 20000000'
  } >"$1"
}
write_config "$work/lb.toml"
# Taken before the start: the first probes may pass before start_daemon returns.
t_start=$(now)
start_daemon "$work/lb.toml" || finish
waitlog "$t_start" 10 event=health to=up --count 4 >/dev/null || fail "every backend up first"
wait_vip_http
# An apply starts probation, so a rollback would be possible from here on.
sed 's/^min_bytes = 20000000$/min_bytes = 20000001/' "$work/lb.toml" >"$work/lb2.toml"
ctl apply "$work/lb2.toml" >/dev/null || fail "apply of the probation config"
v0=$(ctl --json status | json 'r["version"]')

t0=$(now)
in_client timeout 60 python3 "$e2e" downloads 10.10.0.100 --heavy b2 --rate 40 --seconds 20 \
  --bytes 2000000 >"$work/downloads.json" 2>&1 &
traffic=$!
alarm_at=""
for _ in $(seq 1 80); do
  sleep 0.25
  if [[ $(ctl --json skew | json '[a["basis"] for a in r["alarms"] if a["backend"] == "10.20.0.12:8080"]') == "['bytes']" ]]; then
    alarm_at=$(now)
    break
  fi
done
skew_text=$(ctl skew)
backends_text=$(ctl backends)
wait "$traffic"
echo "#   clients: $(cat "$work/downloads.json")"
while IFS= read -r line; do echo "#   $line"; done <<<"$skew_text"
check "a bytes alarm names b2" test -n "$alarm_at"
[[ -n $alarm_at ]] && figure "bytes skew: alarm $(elapsed "$t0" "$alarm_at") s after the traffic began; evenctl skew said: $(tail -n 1 <<<"$skew_text")"
expect_contains "evenctl skew explains it as traffic, not config" "$skew_text" "not the config"
expect_eq "no alarm on new connections (they are fair)" \
  "$(ctl --json skew | json 'sum(1 for a in r["alarms"] if a["basis"] == "new_flows")')" "0"
expect_eq "no rollback: the version is still $v0" "$(ctl --json status | json 'r["version"]')" "$v0"
expect_eq "the clients saw no failure" "$(json 'r["failures"]' <"$work/downloads.json")" "0"
while IFS= read -r line; do echo "#   $line"; done <<<"$backends_text"

# ---- spoofed SYNs steer nothing ----
# A src_ip service on probation with action = "rollback": every SYN from one source
# lands on one backend. 3,000 of them from one spoofed address (random ports, 1,000/s)
# used to raise a `hot` alarm and roll back a good config. Only verified handshakes
# are the config's distribution now; the spoofed SYNs are `syn_unverified`, and their
# skew is a heavy_hitter alarm on SYNs that names the source and never rolls back.
# Then 3,000 from as many spoofed sources: no alarm at all.
write_src_ip_config() { # FILE
  {
    lb_head
    config_pool web '{ kind = "tcp", interval = "1s", timeout = "500ms", rise = 1, fall = 3 }' -- \
      10.20.0.11:8080:1 10.20.0.12:8080:1 10.20.0.13:8080:1 10.20.0.14:8080:1
    config_service web 10.10.0.100 80 web
    echo 'hash = "src_ip"'
    config_skew 10s 2.0 500 rollback 'probation = "5m"' 'min_bytes = 20000000'
  } >"$1"
}
write_src_ip_config "$work/src_ip.toml"
t_v1=$(now)
out=$(ctl apply "$work/src_ip.toml" --accept-shift 2>&1) || fail "apply of the src_ip config" "$out"
v1=$(ctl --json status | json 'r["version"]')
lb_mac=$(ip -n ef-lb link show lb-c | awk '/link\/ether/ {print $2}')
unverified() { ctl --json backends web | json 'sorted((b["syn_unverified"] for b in r["backends"]), reverse=True)'; }
# kind, basis and the clients named, of every alarm
alarms() { ctl --json skew | json '[(a["kind"], a["basis"], [c["client"] for c in a.get("clients", [])]) for a in r["alarms"]]'; }
wait_no_alarm() { # the window moves on, then the hysteresis: at most 30 s
  for _ in $(seq 1 60); do
    [[ $(ctl --json skew | json 'len(r["alarms"])') == 0 ]] && return 0
    sleep 0.5
  done
  return 1
}
before=$(ctl --json backends web | json 'sum(b["syn_unverified"] for b in r["backends"])')
flood_out=$(in_client timeout 30 python3 "$root/test/e2e/flood.py" send c0 "$lb_mac" syn-vip \
  --count 3000 --pps 1000 --seconds 10 --source 198.18.9.9)
echo "#   one spoofed source: $flood_out"
sleep 3 # the sampler's next windows see the SYNs
after=$(unverified)
echo "#   unverified SYNs per backend, most first (before: $before in all): $after"
check "one spoofed source: its SYNs are counted unverified, all on one backend" python3 -c '
import sys; u = eval(sys.argv[1]); sys.exit(0 if u[0] - int(sys.argv[2]) >= 2700 and sum(u[1:]) <= int(sys.argv[2]) else 1)' "$after" "$before"
expect_eq "one spoofed source: one heavy_hitter alarm, on SYNs, naming 198.18.9.9" \
  "$(alarms)" "[('heavy_hitter', 'syns', ['198.18.9.9'])]"
skew_text=$(ctl skew)
while IFS= read -r line; do echo "#   $line"; done <<<"$skew_text"
expect_contains "evenctl skew: the traffic, not the config" "$skew_text" "198.18.9.9 opened"
expect_contains "evenctl skew: never rolled back" "$skew_text" "never rolled back"
clients_json=$(ctl --json clients web)
# (Rows are ordered by verified connections first: the earlier steps' clients may still
# be in the window with a few, ahead of a source that never completed one.)
expect_eq "evenctl clients: 198.18.9.9 the address with the most SYNs" \
  "$(json 'max(r["addresses"], key=lambda c: c["syns"])["client"]' <<<"$clients_json")" "198.18.9.9"
expect_eq "evenctl clients: 198.18.9.0/24 the network with the most SYNs" \
  "$(json 'max(r["networks"], key=lambda c: c["syns"])["client"]' <<<"$clients_json")" "198.18.9.0/24"
check "evenctl clients: at least 2,700 of its SYNs in the window, none verified" python3 -c '
import json, sys; c = max(json.loads(sys.argv[1])["addresses"], key=lambda c: c["syns"])
sys.exit(0 if c["syns"] >= 2700 and c["verified"] == 0 else 1)' "$clients_json"
ctl clients web --limit 3 | sed 's/^/#   /'
metrics=$(ip netns exec ef-lb curl -fsS "http://$metrics_at/metrics")
expect_contains "metrics: the named client, bounded labels" "$metrics" \
  'evenflow_heavy_hitter_connections{service="web",backend="'
expect_contains "metrics: no config skew alarm" "$metrics" 'evenflow_backend_skew_alarm{service="web",backend="10.20.0.11:8080"} 0'
expect_eq "one spoofed source: no rollback (version still $v1)" "$(ctl --json status | json 'r["version"]')" "$v1"
figure "3,000 SYNs from one spoofed source at 1,000/s to a src_ip service on probation with rollback: version stays $v1, unverified per backend $after, alarm: $(alarms)"
wait_no_alarm || fail "the heavy_hitter alarm clears once the window has moved on" "$(ctl skew)"

flood_out=$(in_client timeout 30 python3 "$root/test/e2e/flood.py" send c0 "$lb_mac" syn-vip \
  --count 3000 --pps 1000 --seconds 10 --distinct 3000 --seed 7)
echo "#   3,000 spoofed sources: $flood_out"
sleep 3
expect_eq "3,000 spoofed sources: no alarm at all" "$(ctl --json skew | json 'len(r["alarms"])')" "0"
expect_eq "3,000 spoofed sources: no rollback (version still $v1)" "$(ctl --json status | json 'r["version"]')" "$v1"
echo "#   $(ctl backends web | tr '\n' '|')"
wait_no_alarm || fail "no alarm before the NAT gateway's turn" "$(ctl skew)"

# ---- one real client opening every connection (a NAT gateway) ----
# 1,500 HTTP connections from the client namespace's one address: under src_ip all go
# to one backend, verified. A heavy_hitter alarm on new connections names 10.10.0.10;
# nothing rolls back.
in_client timeout 60 python3 "$e2e" http http://10.10.0.100/hello 1500 --concurrency 16 \
  >"$work/gateway.json" 2>&1 &
traffic=$!
gateway_alarm=""
for _ in $(seq 1 120); do
  sleep 0.25
  gateway_alarm=$(alarms)
  [[ $gateway_alarm == "[('heavy_hitter', 'new_flows', ['10.10.0.10'])]" ]] && break
done
wait "$traffic"
echo "#   gateway: $(cat "$work/gateway.json")"
expect_eq "one client, every connection on one backend: a heavy_hitter alarm naming it" \
  "$gateway_alarm" "[('heavy_hitter', 'new_flows', ['10.10.0.10'])]"
expect_eq "the gateway's connections all succeeded" "$(json 'r["failures"]' <"$work/gateway.json")" "0"
ctl skew | sed 's/^/#   /'
expect_eq "one client: no rollback (version still $v1)" "$(ctl --json status | json 'r["version"]')" "$v1"
expect_eq "src_ip service: no hot or starved alarm raised at all" \
  "$(loglines "$t_v1" event=skew_alarm | grep -cE 'kind=(hot|starved)')" "0"
figure "1,500 connections from one client (10.10.0.10) to a src_ip service on probation with rollback: version stays $v1; alarm: $gateway_alarm"
check_daemon_log
finish
