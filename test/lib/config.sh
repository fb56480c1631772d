# shellcheck shell=bash
# evenflowd config files for the test tiers (and scripts/demo), written as TOML on
# stdout. Every tier runs the same shape of daemon: EAL on lcores 0-1 without
# hugepages or PCI, one control socket, two interfaces (client side 10.10.0.2/24,
# backend side 10.20.0.1/24); only the devices and a few sizes differ.
#
#   config_head [--memory MB] [--timeouts INLINE_TABLE] [--gateway ADDR] \
#               [--client-address PREFIX] [--backend-address PREFIX] [--lcores SPEC] \
#               [--client-kernel NAME] [--backend-vrrp INLINE_TABLE] [--hash-seed HEX] \
#               PREFIX SOCKET METRICS FLOW_CAPACITY WORKERS DEV0 DEV1 [EAL_ARG...]
#       [eal]: file prefix PREFIX, -m MB (default 512), then the EAL_ARGs (the --vdev
#       arguments that create DEV0 and DEV1, and any other); [control]: SOCKET and the
#       METRICS address ("" for none), state_dir beside the socket (SOCKET's dir/state); [dataplane]: WORKERS (the contents of the TOML
#       list, "1" or "1, 2"), FLOW_CAPACITY and --timeouts; [[interfaces]]: client-side
#       on DEV0 (with --gateway, and --client-kernel as its kernel_interface),
#       backend-side on DEV1 (with --backend-vrrp as its vrrp gateway); --hash-seed
#       is [dataplane] hash_seed (hosts behind one ECMP route share it).
#   config_pool NAME HEALTH [KEY_LINE...] -- ADDR:PORT:WEIGHT...
#       a [[pools]] table; HEALTH is its inline table ('{ kind = "none" }'), each
#       KEY_LINE one more line of the table ('drain_timeout = "2s"').
#   config_service NAME VIP PORT POOL
#       a [[services]] table (tcp).
#   config_skew WINDOW THRESHOLD MIN_FLOWS ACTION [KEY_LINE...]
#       the [skew] table.
#   config_bgp ADDRESS PEER [LINE...]
#       the [bgp] table of a host (below).
#   router_bird_head ROUTER_ID PATTERN LOG
#       the start of a router's BIRD configuration in the BGP tiers (below).

toml_str() { # TEXT -> a TOML basic string
  local s=${1//\\/\\\\}
  printf '"%s"' "${s//\"/\\\"}"
}

config_head() {
  local memory=512 timeouts="" gateway="" client_address=10.10.0.2/24 backend_address=10.20.0.1/24
  local cores='"-l", "0-1"' client_kernel= backend_vrrp= hash_seed=
  while [[ ${1:-} == --* ]]; do
    case "$1" in
      --memory) memory=$2 ;;
      --client-address) client_address=$2 ;;
      --lcores) cores="\"--lcores\", $(toml_str "$2")" ;; # e.g. 0@0,1@1,2@1: two workers on one CPU
      --backend-address) backend_address=$2 ;;
      --timeouts) timeouts=$2 ;;
      --gateway) gateway=$2 ;;
      --client-kernel) client_kernel=$2 ;;
      --backend-vrrp) backend_vrrp=$2 ;;
      --hash-seed) hash_seed=$2 ;;
      *) echo "config_head: unknown option $1" >&2; return 2 ;;
    esac
    shift 2
  done
  local prefix=$1 socket=$2 metrics=$3 flows=$4 workers=$5 dev0=$6 dev1=$7
  shift 7
  local extra="" a
  for a in "$@"; do extra+="${extra:+, }$(toml_str "$a")"; done
  echo "[eal]"
  echo "args = [$cores, \"--no-huge\", \"-m\", \"$memory\", \"--no-pci\", \"--file-prefix\", $(toml_str "$prefix")${extra:+,
        $extra}]"
  cat <<TOML

[control]
socket = $(toml_str "$socket")
metrics = $(toml_str "$metrics")
state_dir = $(toml_str "${socket%/*}/state")

[dataplane]
workers = [$workers]
flow_capacity = $flows
${timeouts:+timeouts = $timeouts
}${hash_seed:+hash_seed = $(toml_str "$hash_seed")
}
[[interfaces]]
name = "client-side"
device = $(toml_str "$dev0")
address = $(toml_str "$client_address")
${gateway:+gateway = $(toml_str "$gateway")
}${client_kernel:+kernel_interface = $(toml_str "$client_kernel")
}
[[interfaces]]
name = "backend-side"
device = $(toml_str "$dev1")
address = $(toml_str "$backend_address")
${backend_vrrp:+vrrp = $backend_vrrp}
TOML
}

config_pool() {
  local name=$1 health=$2 spec addr port
  shift 2
  printf '\n[[pools]]\nname = %s\nhealth = %s\n' "$(toml_str "$name")" "$health"
  while (($#)) && [[ $1 != -- ]]; do
    echo "$1"
    shift
  done
  shift
  echo "backends = ["
  for spec in "$@"; do
    addr=${spec%%:*} spec=${spec#*:}
    port=${spec%%:*}
    echo "  { address = $(toml_str "$addr"), port = $port, weight = ${spec#*:} },"
  done
  echo "]"
}

config_service() {
  printf '\n[[services]]\nname = %s\nvip = %s\nport = %s\nprotocol = "tcp"\npool = %s\n' \
    "$(toml_str "$1")" "$(toml_str "$2")" "$3" "$(toml_str "$4")"
}

config_skew() {
  printf '\n[skew]\nwindow = %s\nthreshold = %s\nmin_flows = %s\naction = %s\n' \
    "$(toml_str "$1")" "$2" "$3" "$(toml_str "$4")"
  shift 4
  (($#)) && printf '%s\n' "$@"
  return 0
}

# [bgp] for a host at ADDRESS (AS 65001, its router_id and next_hop) peering with a
# router at PEER (AS 65000); further lines (KEY = VALUE) follow as given.
config_bgp() { # ADDRESS PEER [LINE...]
  printf '\n[bgp]\nlocal_as = 65001\nrouter_id = %s\nnext_hop = %s\npeers = [{ address = %s, as = 65000 }]\n' \
    "$(toml_str "$1")" "$(toml_str "$1")" "$(toml_str "$2")"
  shift 2
  (($#)) && printf '%s\n' "$@"
  return 0
}

# The router side of the BGP tiers: BIRD 2 logging to LOG, installing what BGP learns
# as one ECMP route (merge paths), BFD 100 ms x 3 on the interfaces matching PATTERN;
# the caller adds its bgp protocols.
router_bird_head() { # ROUTER_ID PATTERN LOG
  cat <<ROUTER
log "$3" all;
router id $1;
protocol device { }
protocol kernel { ipv4 { import none; export where source = RTS_BGP; }; merge paths on; }
protocol bfd { interface "$2" { min rx interval 100 ms; min tx interval 100 ms; multiplier 3; }; }
ROUTER
}
