# The part of evenflowd's config every e2e script shares: EAL on the topology's two
# DPDK ports, the control socket, one worker, the two interfaces. Callers append
# their pools, services and [skew].
# Uses the caller's: prefix, sock, vdevs (array, from `scripts/netns eal`), driver.
# shellcheck shell=bash

e2e_config_head() { # FLOW_CAPACITY
  cat <<TOML
[eal]
args = ["-l", "0-1", "--no-huge", "-m", "1024", "--no-pci", "--file-prefix", "$prefix",
        "${vdevs[0]}", "${vdevs[1]}"]

[control]
socket = "$sock"
metrics = ""

[dataplane]
workers = [1]
flow_capacity = $1
timeouts = { syn = "5s", established = "300s", closing = "10s" }

[[interfaces]]
name = "client-side"
device = "${driver}0"
address = "10.10.0.2/24"

[[interfaces]]
name = "backend-side"
device = "${driver}1"
address = "10.20.0.1/24"
TOML
}
