#!/usr/bin/env bash
# End-to-end tier: real TCP through evenflowd between network namespaces
# (scripts/netns), real servers (nginx, an echo server), real clients.
#
#   test/e2e/run.sh BUILD_DIR [--skip-figures]
#
# 1. 2,000 HTTP requests on separate connections: no failure; per-backend counts in the
#    backends' own access logs match the weights (chi-square p > 0.001) and equal
#    evenflowd's per-backend new_flows.
# 2. A 50 MB download through the VIP arrives byte-exact (sha256).
# 3. 50 long-lived echo connections (every 100 ms) survive 50 applies that add and
#    remove other backends: no reset, no stall > 2 s.
# 4. Removing a backend moves only its flows: established connections stay, new ones
#    spread over the rest.
# 5. A figure: requests/s and throughput through evenflowd, directly to one backend, and
#    through nftables DNAT (numgen random) in the same topology.
# Ends with "N passed, N failed"; exits non-zero if anything failed. Leaves nothing
# behind (namespaces, veths, processes, sockets, files), also on failure or Ctrl-C.
set -uo pipefail

build=${1:?usage: test/e2e/run.sh BUILD_DIR [--skip-figures]}
shift
figures=1
for a in "$@"; do
  case "$a" in
    --skip-figures) figures=0 ;;
    *) echo "usage: test/e2e/run.sh BUILD_DIR [--skip-figures]" >&2; exit 2 ;;
  esac
done
build=$(cd "$build" && pwd)
# Figures from a sanitizer build would measure the sanitizer: skip them there.
sanitize=$(python3 -c '
import json, sys
for o in json.load(open(sys.argv[1])):
    if o["name"] == "b_sanitize":
        print(o["value"])' "$build/meson-info/intro-buildoptions.json" 2>/dev/null)
if [[ -n $sanitize && $sanitize != none ]]; then
  figures=0
  echo "# sanitizer build ($sanitize): test 5 (figures) skipped"
fi
root=$(cd "$(dirname "$0")/../.." && pwd)
evenflowd=$build/app/evenflowd
evenctl=$build/app/evenctl
netns=$root/scripts/netns
e2e=$root/test/e2e/e2e.py
# shellcheck source=test/e2e/config.sh
source "$root/test/e2e/config.sh"
started=$(date +%s)

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "ok   - $*"; }
fail() { failed=$((failed + 1)); echo "FAIL - $*"; }
check() { # WHAT COMMAND... : pass if the command succeeds
  local what=$1
  shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}
finish() {
  echo "e2e runtime: $(($(date +%s) - started)) s"
  echo "$passed passed, $failed failed"
  ((failed == 0))
  exit $?
}

if [[ $(id -u) -ne 0 ]]; then
  fail "the e2e tier needs root (network namespaces, DPDK)"
  finish
fi
for tool in nginx ab nft curl python3 ethtool ip; do
  command -v "$tool" >/dev/null || { fail "missing tool: $tool (run scripts/bootstrap)"; finish; }
done
for bin in "$evenflowd" "$evenctl"; do
  [[ -x $bin ]] || { fail "missing $bin (build it first)"; finish; }
done

work=$(mktemp -d /tmp/evenflow-e2e.XXXXXX)
chmod 755 "$work"
sock=$work/evenflow.sock
prefix=ef-e2e-$$
pid=
teardown() {
  if [[ -n $pid ]]; then
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
    pid=
  fi
  "$netns" down >/dev/null 2>&1
  rm -rf "/var/run/dpdk/$prefix"
}
cleanup() {
  teardown
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ctl() { "$evenctl" --socket "$sock" "$@"; }
in_client() { ip netns exec ef-client "$@"; }
json() { # EXPR (on r) < JSON
  python3 -c 'import json,sys; r=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"
}

# ---- topology and servers ----
nbackends=6 # b1..b4 serve at first; b5, b6 come and go
if ! "$netns" up --backends $nbackends; then
  fail "scripts/netns up"
  finish
fi
driver=$("$netns" driver)
echo "# DPDK driver: $driver"
mapfile -t vdevs < <("$netns" eal)
if ! "$netns" serve "$work/srv" >"$work/serve.log" 2>&1; then
  cat "$work/serve.log"
  fail "backend servers start"
  finish
fi

# write_config FILE "WEB_SPEC" "ECHO_SPEC": specs are "K:WEIGHT ..." for backend bK.
write_config() {
  local file=$1 web=$2 echo_=$3 k w
  {
    e2e_config_head 65536
    cat <<TOML

[[pools]]
name = "web"
health = { kind = "none" }
backends = [
TOML
    for spec in $web; do
      k=${spec%%:*} w=${spec#*:}
      echo "  { address = \"10.20.0.$((10 + k))\", port = 8080, weight = $w },"
    done
    cat <<TOML
]

[[pools]]
name = "echo"
health = { kind = "none" }
drain_timeout = "2s"
backends = [
TOML
    for spec in $echo_; do
      k=${spec%%:*} w=${spec#*:}
      echo "  { address = \"10.20.0.$((10 + k))\", port = 9000, weight = $w },"
    done
    cat <<TOML
]

[[services]]
name = "web"
vip = "10.10.0.100"
port = 80
protocol = "tcp"
pool = "web"

[[services]]
name = "echo"
vip = "10.10.0.100"
port = 9000
protocol = "tcp"
pool = "echo"

[skew]
window = "10s"
threshold = 2.0
min_flows = 500
action = "alert"
TOML
  } >"$file"
}

web_weights="1:1 2:1 3:2 4:1"
echo_base="1:1 2:1 3:1 4:1"
write_config "$work/base.toml" "$web_weights" "$echo_base"

start_daemon() {
  LSAN_OPTIONS="suppressions=$root/test/lib/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}" \
    ip netns exec ef-lb "$evenflowd" --config "$work/base.toml" >>"$work/evenflowd.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do
    [[ -S $sock ]] && ctl status >/dev/null 2>&1 && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  return 1
}

if ! start_daemon; then
  fail "evenflowd starts on $driver"
  tail -30 "$work/evenflowd.log"
  finish
fi
pass "evenflowd starts on $driver (pid $pid)"
if ctl check "$work/base.toml" >"$work/check.txt" 2>&1; then pass "evenctl check accepts the e2e config"; else
  fail "evenctl check rejects the e2e config: $(cat "$work/check.txt")"
fi

# Readiness: the first request also resolves the client and the backends by ARP.
ready=0
for _ in $(seq 1 50); do
  if in_client curl -sf -m 2 -o /dev/null http://10.10.0.100/hello; then ready=1; break; fi
  sleep 0.2
done
if ((ready)); then pass "HTTP through the VIP answers"; else
  fail "HTTP through the VIP answers"
  ctl stats
  finish
fi

backend_ids=(1 2 3 4)
new_flows() { # prints "ADDR:PORT new_flows" for SERVICE
  ctl --json backends "$1" | python3 -c '
import json, sys
for b in json.load(sys.stdin)["backends"]:
    print(b["backend"], b["new_flows"])'
}

# ---- 1. 2,000 requests, distribution by the backends' own logs ----
echo "# test 1: 2000 HTTP requests on separate connections"
new_flows web >"$work/flows-before"
for k in "${backend_ids[@]}"; do : >"$work/srv/b$k/access.log"; done
# Our own client: exactly one connection per request (ab opens a few extra ones).
out=$(in_client python3 "$e2e" http http://10.10.0.100/hello 2000 --concurrency 16)
rc=$?
echo "#   client: $out"
if [[ $rc -eq 0 ]]; then
  pass "test 1: 2000 requests on 2000 connections, 0 failures"
else
  fail "test 1: 2000 requests: $out"
fi
client_count() { json "r['per_backend'].get('b$1', 0)" <<<"$out"; }
sleep 0.5 # nginx writes its log line after the response
new_flows web >"$work/flows-after"
counts=() weights=()
total_logged=0 foreign=0 mismatch=""
for k in "${backend_ids[@]}"; do
  log=$work/srv/b$k/access.log
  c=$(grep -c '"GET /hello ' "$log")
  f=$(grep '"GET /hello ' "$log" | grep -vc '^10\.10\.0\.10 ')
  counts+=("$c")
  weights+=("$(tr ' ' '\n' <<<"$web_weights" | awk -F: -v k="$k" '$1 == k {print $2}')")
  total_logged=$((total_logged + c))
  foreign=$((foreign + f))
  addr=10.20.0.$((10 + k)):8080
  b=$(awk -v a="$addr" '$1 == a {print $2}' "$work/flows-before")
  a=$(awk -v a="$addr" '$1 == a {print $2}' "$work/flows-after")
  d=$((a - b))
  cc=$(client_count "$k")
  echo "#   b$k ($addr) weight ${weights[-1]}: access log $c, evenflowd new_flows +$d, client saw $cc"
  [[ $d -eq $c && $cc -eq $c ]] || mismatch+=" b$k(log $c, evenflowd $d, client $cc)"
done
check "test 1: the backends logged all 2000 requests ($total_logged)" test "$total_logged" -eq 2000
check "test 1: backends see the real client address 10.10.0.10 ($foreign others)" test "$foreign" -eq 0
if out=$(python3 "$root/test/lib/stats.py" chisq "$(IFS=,; echo "${counts[*]}")" "$(IFS=,; echo "${weights[*]}")"); then
  pass "test 1: distribution matches weights: $out"
else
  fail "test 1: distribution does not match weights: $out"
fi
if [[ -z $mismatch ]]; then
  pass "test 1: evenflowd's per-backend new_flows equal the access logs (and the client's view)"
else
  fail "test 1: evenflowd's new_flows, the access logs and the client differ:$mismatch"
fi

# ---- 2. 50 MB byte-exact ----
echo "# test 2: 50 MB through the VIP"
want=$(sha256sum <"$work/srv/www/big" | cut -d' ' -f1)
t0=$(date +%s.%N)
got=$(in_client curl -sS -m 60 http://10.10.0.100/big | sha256sum | cut -d' ' -f1)
t1=$(date +%s.%N)
echo "#   $(python3 -c "import sys; print(f'{50*8*1.048576/(float(sys.argv[2])-float(sys.argv[1])):.0f} Mbit/s')" "$t0" "$t1")"
if [[ $got == "$want" ]]; then pass "test 2: 50 MB arrive byte-exact (sha256 $want)"; else
  fail "test 2: 50 MB sha256 $got, want $want"
fi

# ---- 3. long-lived connections across 50 applies ----
echo "# test 3: 50 long-lived connections, 50 applies adding/removing b5, b6"
write_config "$work/c1.toml" "$web_weights 5:1" "$echo_base 5:1"
write_config "$work/c2.toml" "$web_weights 5:1 6:2" "$echo_base 5:1 6:1"
write_config "$work/c3.toml" "$web_weights 6:1" "$echo_base 6:1"
write_config "$work/c4.toml" "$web_weights" "$echo_base"
v0=$(ctl --json status | json 'r["version"]')
out=$(in_client timeout 120 python3 "$e2e" longlived --evenctl "$evenctl" --socket "$sock" \
  --conns 50 --interval 0.1 --stall 2.0 --applies 50 --gap 0.1 \
  --configs "$work/c1.toml,$work/c2.toml,$work/c3.toml,$work/c4.toml")
rc=$?
echo "#   $out"
v1=$(ctl --json status | json 'r["version"]')
if [[ $rc -eq 0 ]]; then
  pass "test 3: 50 connections, 50 applies: 0 resets, 0 stalls > 2 s"
else
  fail "test 3: long-lived connections across applies (rc $rc)"
fi
check "test 3: 50 applies took effect (version $v0 -> $v1)" test "$v1" -eq $((v0 + 50))

# ---- 4. removing one backend moves only its flows ----
echo "# test 4: remove b2 from the echo pool"
ctl apply "$work/base.toml" >/dev/null
write_config "$work/no-b2.toml" "$web_weights" "1:1 3:1 4:1"
out=$(in_client timeout 60 python3 "$e2e" remove --evenctl "$evenctl" --socket "$sock" \
  --conns 40 --config "$work/no-b2.toml" --removed b2 --remaining 3 --new 300 --wait-drain 3)
rc=$?
echo "#   $out"
if [[ $rc -eq 0 ]]; then
  pass "test 4: established connections stay, new ones avoid b2 and spread over b1, b3, b4"
else
  fail "test 4: backend removal (rc $rc)"
fi
python3 -c '
import json, sys
r = json.loads(sys.argv[1])
on = r["before"].get("b2", 0)
alive = r["removed_backend_conns_alive_after_apply"]
later = sum(1 for v in r.get("after_drain_removed", {}).values() if v == "alive")
total = sum(r["before"].values())
print(f"#   observed: {on} of {total} connections were on b2; after the apply "
      f"{alive} of them still work; 3 s later (past drain_timeout 2s) {later} still work")
' "$out" 2>/dev/null || true
ctl apply "$work/base.toml" >/dev/null

echo "# evenflowd counters after tests 1-4:"
ctl stats | sed 's/^/#   /'

# ---- 5. figures: evenflowd vs direct vs nftables ----
measure() { # LABEL NS URL_BASE -> a table row
  local label=$1 ns=$2 base=$3 rps best=0 mbps
  rps=$(ip netns exec "$ns" ab -q -n 5000 -c 32 -s 10 "$base/hello" 2>&1 |
    awk '/^Requests per second:/ {print $4} /^Failed requests:/ {f=$3} END {if (f != 0) print "(failed " f ")"}' | tr '\n' ' ')
  for _ in 1 2 3; do
    mbps=$(ip netns exec "$ns" curl -sS -m 60 -o /dev/null -w '%{speed_download}' "$base/big" 2>/dev/null |
      awk '{printf "%.0f", $1 * 8 / 1e6}')
    [[ -n $mbps ]] && ((mbps > best)) && best=$mbps
  done
  printf '%-34s %16s %18s\n' "$label" "$rps" "$best"
}
if ((figures)); then
  echo "# test 5: figures (not pass/fail); ab -n 5000 -c 32 /hello (new connection per request),"
  echo "#         curl of the 50 MB file, best of 3; one 2-core machine runs client, balancer, backends"
  rows=$(mktemp "$work/rows.XXXX")
  measure "evenflowd ($driver, 4 backends)" ef-client http://10.10.0.100 >>"$rows"
  # The rest without evenflowd (its worker busy-polls a core).
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null
  pid=
  rm -rf "/var/run/dpdk/$prefix"
  measure "direct to one backend (veth+bridge)" ef-sw http://10.20.0.11:8080 >>"$rows"
  # nftables DNAT: the kernel of ef-lb becomes the balancer, same addresses, same weights.
  if ip netns exec ef-lb sh -ec '
      ip addr add 10.10.0.2/24 dev lb-c
      ip addr add 10.10.0.100/32 dev lb-c
      ip addr add 10.20.0.1/24 dev lb-b
      sysctl -qw net.ipv4.ip_forward=1
      nft -f - <<NFT
table ip ef_lb {
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    ip daddr 10.10.0.100 tcp dport 80 dnat to numgen random mod 5 map { 0 : 10.20.0.11, 1 : 10.20.0.12, 2 : 10.20.0.13, 3 : 10.20.0.13, 4 : 10.20.0.14 } : 8080
  }
}
NFT
    ' 2>"$work/nft.err"; then
    in_client ip neigh flush dev c0
    measure "nftables DNAT (numgen, 4 backends)" ef-client http://10.10.0.100 >>"$rows"
  else
    echo "#   nftables setup failed: $(cat "$work/nft.err")"
  fi
  printf '%-34s %16s %18s\n' "path" "requests/s" "download Mbit/s"
  cat "$rows"
fi

# ---- teardown: nothing may be left ----
teardown
left=""
[[ -n $(ip netns list | grep '^ef-') ]] && left+=" namespaces"
ls /var/run/dpdk/ 2>/dev/null | grep -q "^$prefix$" && left+=" dpdk-runtime-dir"
[[ -e $sock ]] && left+=" socket"
pgrep -f "$work" >/dev/null && left+=" processes"
if [[ -z $left ]]; then pass "teardown leaves nothing behind"; else fail "teardown left:$left"; fi
if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:|level=(error|fatal)' "$work/evenflowd.log"; then
  fail "evenflowd's log has errors or sanitizer reports:"
  grep -E -m 20 'ERROR|runtime error:|level=(error|fatal)' "$work/evenflowd.log"
else
  pass "evenflowd's log has no errors or sanitizer reports"
fi
finish
