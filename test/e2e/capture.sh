#!/usr/bin/env bash
# Packet capture of a running evenflowd with DPDK's own tool: dpdk-dumpcap attaches
# as a secondary process (the daemon's --file-prefix, inside ef-lb like the daemon)
# through the pdump server evenflowd starts after EAL init, and writes pcapng.
#
# 1. 200 HTTP requests through the VIP while dpdk-dumpcap captures both ports: no
#    failure; the daemon keeps its pid and answers throughout and after.
# 2. tshark reads the pcapng: on the client-side port the connections to the VIP
#    10.10.0.100:80 and the replies from it; on the backend-side port the same
#    connections (client address and port) with the destination rewritten to a
#    backend 10.20.0.11-14:8080, and the backends' replies; no bad IP or TCP
#    checksum; every captured connection landed on one backend only.
#
# DPDK's secondary processes share the primary's memory: evenflowd runs on 2 MB
# hugepages here (the other tiers use --no-huge), reserved for the run and given
# back after it.
#
# dpdk-dumpcap captures one port per process here (DPDK 22.11's takes the last -i).
#
#   test/e2e/capture.sh BUILD_DIR
set -uo pipefail

# shellcheck source=test/lib/harness.sh
source "$(dirname "$0")/../lib/harness.sh"
harness_init e2e-capture "${1:?usage: test/e2e/capture.sh BUILD_DIR}"
e2e=$root/test/e2e/e2e.py
needs_root "network namespaces, DPDK, hugepages"
needs_tools dpdk-dumpcap tshark nginx curl python3 ethtool ip flock mountpoint
needs_binaries "$evenflowd" "$evenctl"
make_workdir

# ---- hugepages for the run: 2 MB pages, given back on exit ----
pages=/sys/kernel/mm/hugepages/hugepages-2048kB
hugepages_before=$(cat "$pages/nr_hugepages")
mounted_hugetlbfs=0
restore_hugepages() {
  [[ -n ${prefix:-} ]] && rm -f /dev/hugepages/"$prefix"map_* 2>/dev/null
  ((mounted_hugetlbfs)) && umount /dev/hugepages 2>/dev/null
  echo "$hugepages_before" >"$pages/nr_hugepages" 2>/dev/null
  return 0
}
trap 'harness_cleanup; restore_hugepages' EXIT
need_pages=400 # evenflowd -m 512 (256 pages) and dpdk-dumpcap's capture pool
free_pages=$(cat "$pages/free_hugepages")
if ((free_pages < need_pages)); then
  echo $((hugepages_before + need_pages - free_pages)) >"$pages/nr_hugepages"
fi
free_pages=$(cat "$pages/free_hugepages")
if ((free_pages < need_pages)); then
  fail "reserve $need_pages 2 MB hugepages: only $free_pages free (memory fragmented?)"
  finish
fi
if ! mountpoint -q /dev/hugepages; then
  mkdir -p /dev/hugepages
  mount -t hugetlbfs -o pagesize=2M nodev /dev/hugepages || { fail "mount hugetlbfs on /dev/hugepages"; finish; }
  mounted_hugetlbfs=1
fi
echo "# hugepages: $free_pages free 2 MB pages (the machine had $hugepages_before)"

# ---- topology and the daemon, on hugepages ----
topology_up 4
remove_on_teardown "/var/run/dpdk/$prefix"
{
  lb_config_head 65536
  config_pool web '{ kind = "none" }' -- \
    10.20.0.11:8080:1 10.20.0.12:8080:1 10.20.0.13:8080:2 10.20.0.14:8080:1
  config_service web 10.10.0.100 80 web
} | sed -e 's/"--no-huge", //' -e 's/"-m", "1024"/"-m", "512"/' >"$work/capture.toml"
grep -q -- '--no-huge' "$work/capture.toml" && { fail "config still has --no-huge"; finish; }
start_daemon "$work/capture.toml" || finish
daemon_pid=$pid
pass "evenflowd starts on $driver with hugepages (pid $pid)"
if grep -q 'event=pdump_unavailable' "$log"; then
  fail "evenflowd could not start its pdump server" "$(grep pdump "$log")"
fi

wait_vip_http

# ---- 1. capture both ports during traffic: one dpdk-dumpcap per port ----
client_port=${driver}0 backend_port=${driver}1
dumpcap_pids=()
for side in client backend; do
  port=${side}_port
  ip netns exec ef-lb dpdk-dumpcap --file-prefix "$prefix" -i "${!port}" -w "$work/$side.pcapng" -q \
    >"$work/dumpcap-$side.log" 2>&1 &
  dumpcap_pids+=($!)
  bgpids+=($!)
done
# A dpdk-dumpcap is capturing once its pcapng header is written.
attached=0
for _ in $(seq 1 100); do
  [[ -s $work/client.pcapng && -s $work/backend.pcapng ]] && { attached=1; break; }
  sleep 0.1
done
for p in "${dumpcap_pids[@]}"; do kill -0 "$p" 2>/dev/null || attached=0; done
if ((attached)); then
  pass "dpdk-dumpcap attaches to the running daemon, one per port ($client_port, $backend_port)"
else
  fail "dpdk-dumpcap attaches to the running daemon" "$(tail -n 20 "$work"/dumpcap-*.log)"
  finish
fi
sleep 0.5
out=$(in_client python3 "$e2e" http http://10.10.0.100/hello 200 --concurrency 8)
rc=$?
echo "#   client: $out"
expect_eq "test 1: 200 requests during the capture, 0 failures" "$rc" "0"
sleep 0.5
for p in "${dumpcap_pids[@]}"; do kill -INT "$p"; done
for p in "${dumpcap_pids[@]}"; do
  for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  wait "$p" 2>/dev/null
done
for side in client backend; do
  echo "#   dpdk-dumpcap $side: $(grep -E 'Packets|Capturing' "$work/dumpcap-$side.log" | tr '\n' ' ')"
done
ctl status >/dev/null 2>&1 && [[ $(ctl --json status | json 'r["pid"]') == "$daemon_pid" ]] &&
  pass "test 1: the daemon ran on through the capture (same pid, answers)" ||
  fail "test 1: the daemon did not survive the capture"
in_client curl -sf -m 3 -o /dev/null http://10.10.0.100/hello &&
  pass "test 1: traffic still flows after dpdk-dumpcap left" ||
  fail "test 1: no traffic after dpdk-dumpcap left"

# ---- 2. the capture, read back by tshark ----
fields() { # SIDE -> src, sport, dst, dport, SYN, ACK of each TCP packet of SIDE.pcapng
  tshark -r "$work/$1.pcapng" -Y tcp -T fields -E separator=, \
    -e ip.src -e tcp.srcport -e ip.dst -e tcp.dstport -e tcp.flags.syn -e tcp.flags.ack 2>/dev/null
}
for side in client backend; do
  fields "$side" >"$work/$side.csv"
  n=$(wc -l <"$work/$side.csv")
  echo "#   $side side: $n TCP packets"
done
python3 - "$work/client.csv" "$work/backend.csv" >"$work/nat.txt" <<'PY'
import collections, csv, sys
# Connections by their first packet (a SYN: ephemeral ports come round again), and
# the client address and port that name a connection on both sides.
syn_vip = syn_backend = synack_vip = synack_backend = other = 0
to_vip, to_backend = set(), collections.defaultdict(set)
for src, sport, dst, dport, syn, ack in csv.reader(open(sys.argv[1])):
    if dst == "10.10.0.100" and dport == "80":
        to_vip.add((src, sport))
        syn_vip += syn in ("1", "True") and ack in ("0", "False")
    elif src == "10.10.0.100" and sport == "80":
        synack_vip += syn in ("1", "True") and ack in ("1", "True")
    else:
        other += 1
for src, sport, dst, dport, syn, ack in csv.reader(open(sys.argv[2])):
    if dst.startswith("10.20.0.1") and dport == "8080":
        to_backend[(src, sport)].add(dst)
        syn_backend += syn in ("1", "True") and ack in ("0", "False")
    elif src.startswith("10.20.0.1") and sport == "8080":
        synack_backend += syn in ("1", "True") and ack in ("1", "True")
    else:
        other += 1
natted = [c for c in to_vip if c in to_backend]
moved = [c for c in natted if len(to_backend[c]) != 1]
backends = sorted({b for c in natted for b in to_backend[c]})
print(f"syn_vip={syn_vip} synack_vip={synack_vip} syn_backend={syn_backend} "
      f"synack_backend={synack_backend} clients={len(to_vip)} natted={len(natted)} "
      f"moved={len(moved)} other={other} backends={','.join(backends)}")
PY
nat=$(cat "$work/nat.txt")
echo "#   $nat"
val() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" <<<"$nat"; }
expect_eq "test 2: client side: 200 SYNs to the VIP 10.10.0.100:80" "$(val syn_vip)" "200"
expect_eq "test 2: client side: 200 SYN-ACKs from the VIP" "$(val synack_vip)" "200"
expect_eq "test 2: backend side: 200 SYNs with the destination rewritten to a backend:8080" \
  "$(val syn_backend)" "200"
expect_eq "test 2: backend side: 200 SYN-ACKs from the backends" "$(val synack_backend)" "200"
expect_eq "test 2: every client address and port to the VIP is on the backend side too" \
  "$(val natted)" "$(val clients)"
expect_eq "test 2: no other TCP packet on either side" "$(val other)" "0"
expect_eq "test 2: each client address and port went to one backend" "$(val moved)" "0"
expect_eq "test 2: all four backends seen on the backend side" "$(val backends)" \
  "10.20.0.11,10.20.0.12,10.20.0.13,10.20.0.14"
# A checksum is bad when the ones'-complement sum over the pseudo-header and the segment
# does not verify. tshark also marks "Bad" a TCP checksum of 0xffff where the sum
# verifies (its tcp.checksum.ffff: "0xffff instead of 0x0000"), yet RFC 1624 says both
# are zero in ones'-complement and every stack accepts either. Linux writes 0xffff
# itself whenever the checksum comes out 0 (skb_checksum_help's CSUM_MANGLED_0 on
# veths without checksum offload): about one segment in 65,536, so once in about ten
# runs of this test, from the client's or a backend's kernel. Those are counted and
# shown apart, not as bad.
bad_filter='ip.checksum.status == "Bad" || (tcp.checksum.status == "Bad" && !tcp.checksum.ffff)'
for side in client backend; do
  total=$(tshark -r "$work/$side.pcapng" 2>/dev/null | wc -l)
  bad=$(tshark -r "$work/$side.pcapng" -o ip.check_checksum:TRUE -o tcp.check_checksum:TRUE \
    -Y "$bad_filter" 2>/dev/null | wc -l)
  expect_eq "test 2: $side side: no bad IP or TCP checksum in $total packets" "$bad" "0"
  if [[ $bad != 0 ]]; then
    tshark -r "$work/$side.pcapng" -o ip.check_checksum:TRUE -o tcp.check_checksum:TRUE \
      -Y "$bad_filter" -V -x 2>/dev/null | head -120 | sed 's/^/#   bad: /'
  fi
  tshark -r "$work/$side.pcapng" -o tcp.check_checksum:TRUE -Y tcp.checksum.ffff \
    -T fields -e ip.src -e tcp.srcport -e ip.dst -e tcp.dstport 2>/dev/null |
    sed "s/^/#   $side side: TCP checksum 0xffff (zero, RFC 1624; the sum verifies): /"
done

check_daemon_log
check_nothing_left
finish
