#!/usr/bin/env bash
# Scale tier: the control plane with an edge host's number of VIPs and backends.
# evenflowd runs on net_null ports (nothing answers, so every health check fails and
# thousands of verdicts arrive in a burst) with generated configs:
#   1,000 services x 10 backends, and 100 services x 100 backends (a quarter of each
#   in a sanitizer build).
# For each: start time, apply time (every weight changed; one service changed),
# `evenctl status` latency sampled every 50 ms through both applies and the health
# burst (p50/p99/max), the control loop's longest iteration, /metrics size and render
# time, RSS before and after, probes/s, time until every backend is down, time to stop.
# Fails on a control-loop iteration over 250 ms, a status reply over 250 ms, a stop over
# 1 s (in a sanitizer build these three are reported, not asserted: harness `within`), an
# apply that is not applied, or a backend left up.
#
#   test/scale/run.sh BUILD_DIR
set -uo pipefail

build=${1:?usage: test/scale/run.sh BUILD_DIR}
build=$(cd "$build" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
evenflowd=$build/app/evenflowd
evenctl=$build/app/evenctl
measure=$here/measure.py

# shellcheck source=test/lib/harness.sh
source "$root/test/lib/harness.sh"
harness_init scale "$build"
needs_root "DPDK EAL, /run"
needs_tools python3 curl
needs_binaries "$evenflowd" "$evenctl"
make_workdir

max_stall_ms=250
metrics_port=$((19600 + $$ % 300))
json_get() { json "$2" <<<"$1"; }

scale_case() { # NAME SERVICES BACKENDS
  local name=$1 services=$2 backends=$3 total=$(($2 * $3))
  local dir=$work/$name
  mkdir -p "$dir"
  local prefix=ef-scale-$name-$$
  remove_on_teardown "/var/run/dpdk/$prefix"
  config_head --memory 2048 --client-address 10.100.255.254/16 \
    --backend-address 10.20.255.254/16 \
    "$prefix" "$sock" "127.0.0.1:$metrics_port" 65536 1 net_null0 net_null1 \
    --vdev=net_null0,no-rx=1 --vdev=net_null1,no-rx=1 >"$dir/head.toml"
  local gen=(python3 "$here/genconfig.py" --services "$services" --backends "$backends"
    --head "$dir/head.toml")
  "${gen[@]}" >"$dir/v1.toml"
  "${gen[@]}" --weight-offset 1 >"$dir/v2.toml"
  "${gen[@]}" --weight-offset 2 --changed-services 1 >"$dir/v3.toml"
  local t0 t1 t_start
  t0=$(now)
  t_start=$t0
  rm -rf "${sock%/*}/state" # each shape is a fresh host: its history starts at version 1
  if ! start_daemon "$dir/v1.toml" "$dir/evenflowd.log"; then
    fail "$name: evenflowd did not start"
    return
  fi
  t1=$(now)
  figure "$name: start (config of $services services x $backends backends, all tables built): $(elapsed "$t0" "$t1") s"
  local rss0
  rss0=$(python3 "$measure" rss "$pid")

  rm -f "$dir/stop"
  python3 "$measure" sample "$sock" "$dir/samples.json" --interval 0.05 --stop-file "$dir/stop" &
  local sampler=$!
  bgpids+=("$sampler")
  sleep 0.5

  t0=$(now)
  local out
  out=$(ctl apply "$dir/v2.toml" --accept-shift 2>&1)
  t1=$(now)
  expect_contains "$name: apply with every weight changed" "$out" "version 2 running"
  figure "$name: apply, every service changed: $(elapsed "$t0" "$t1") s"
  t0=$(now)
  out=$(ctl apply "$dir/v3.toml" --accept-shift 2>&1)
  t1=$(now)
  expect_contains "$name: apply with one service changed" "$out" "version 3 running"
  figure "$name: apply, one service changed: $(elapsed "$t0" "$t1") s"

  # The health burst, during the applies: every backend goes down (interval 1 s, fall 2).
  if python3 "$measure" wait-state "$sock" down "$total" --timeout 60 >/dev/null; then
    pass "$name: all $total backends down"
    figure "$name: every unreachable backend down $(elapsed "$t_start" "$(python3 "$measure" last-down "$dir/evenflowd.log")") s after the daemon was started"
  else
    fail "$name: not every backend went down"
  fi
  sleep 1
  touch "$dir/stop"
  wait "$sampler"
  local p
  p=$(python3 "$measure" percentiles "$dir/samples.json")
  figure "$name: evenctl status latency during applies and the health burst (ms): $p"
  local status_max
  status_max=$(json_get "$p" 'r["max"]')
  within "$name: slowest status reply during applies and the health burst, ms" \
    "$status_max" "$max_stall_ms"

  local status loop_max
  status=$(ctl --json status)
  loop_max=$(json_get "$status" 'r["control_loop"]["max_ms"]')
  figure "$name: longest control-loop iteration: $loop_max ms (slowest step: $(json_get "$status" 'r["control_loop"]["slowest_step"] + " " + str(round(r["control_loop"]["slowest_step_ms"], 1))') ms)"
  within "$name: longest control-loop iteration, ms" "$loop_max" "$max_stall_ms"
  local probes
  probes=$(json_get "$status" 'r["health"]')
  figure "$name: health: $probes"
  local up0 up1 sent0 sent1
  sent0=$(json_get "$status" 'r["health"]["probes_sent"]')
  up0=$(now)
  sleep 3
  sent1=$(json_get "$(ctl --json status)" 'r["health"]["probes_sent"]')
  up1=$(now)
  figure "$name: probes/s: $(python3 -c "print(round(($sent1 - $sent0) / ($up1 - $up0)))")"

  local m_start m_end size
  m_start=$(now)
  size=$(curl -fsS "http://127.0.0.1:$metrics_port/metrics" | wc -c)
  m_end=$(now)
  figure "$name: /metrics (metrics_backends = all): $size bytes, served in $(elapsed "$m_start" "$m_end") s"
  check "$name: /metrics answers" test "$size" -gt 1000
  local series
  series=$(curl -fsS "http://127.0.0.1:$metrics_port/metrics" | grep -vc '^#')
  figure "$name: /metrics series: $series"

  local rss1
  rss1=$(python3 "$measure" rss "$pid")
  figure "$name: RSS ${rss0} MB at start, ${rss1} MB after two applies and the health burst"

  # SIGTERM while an apply of every service is being built: honoured within a second.
  ctl apply "$dir/v1.toml" --accept-shift >/dev/null 2>&1 &
  local applier=$!
  sleep 0.3
  t0=$(now)
  stop_daemon
  t1=$(now)
  wait "$applier" 2>/dev/null
  local stop_s
  stop_s=$(elapsed "$t0" "$t1")
  figure "$name: stop, SIGTERM in the middle of an apply of every service: $stop_s s"
  within "$name: stop, SIGTERM during an apply of every service, s" "$stop_s" 1
}

if ((sanitized)); then
  # The same code paths at a quarter of the size: the sanitizer build looks for memory
  # and UB errors (its figures are not the product's), at 3-4x the CPU per service.
  scale_case 250x10 250 10
  scale_case 25x100 25 100
else
  scale_case 1000x10 1000 10
  scale_case 100x100 100 100
fi
finish
