// An immutable, self-contained view of the configuration that workers read:
// services with their Maglev tables, backends with stable ids and states.
// Built by the control thread, published by one pointer store, never modified.
#pragma once

#include "config/choices.hpp"

#include "balance/maglev.hpp"
#include "config/config.hpp"
#include "net/flow_key.hpp"
#include "net/pick_hash.hpp"

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

namespace evenflow {

// What the control plane knows about a backend. Long-lived: kept outside snapshots
// and fed into each build, so a config apply does not reset health verdicts.
enum class backend_state : uint8_t {
    unknown, // no health verdict yet: receives traffic (fail open, like a fresh pool)
    up,
    down,     // failed health checks: out of the Maglev table, its flows reset
    draining, // no new flows; existing flows continue (weight 0 or `evenctl drain`)
    disabled, // taken out by an operator: out of the table, its flows reset
};
constexpr auto choice_names(backend_state) { // config/choices.hpp
    return std::to_array<std::string_view>({"unknown", "up", "down", "draining", "disabled"});
}
std::string_view to_string(backend_state s);

// Whether a backend in this state is given Maglev slots.
inline bool takes_new_flows(backend_state s) {
    return s == backend_state::unknown || s == backend_state::up;
}

// Stable ids for (service, address, port), so per-backend counters and pinned flows
// keep meaning across applies. An id is reused only once nothing refers to it (see
// config_manager::reclaim_ids). Control thread only.
class backend_registry {
public:
    static constexpr uint32_t max_ids = 1u << 16; // ids 1..max_ids-1; 0 is "no backend"
    using key = std::tuple<std::string, net::ip_addr, uint16_t>;

    // The id for this backend, assigned on first sight (a freed id first); 0 when the
    // id space is exhausted.
    uint32_t id_for(const std::string& service, const net::ip_addr& address, uint16_t port);
    // The id if assigned, else 0; never assigns.
    uint32_t find(const std::string& service, const net::ip_addr& address, uint16_t port) const;
    // Frees every id for which `unused(key, id)` holds; returns how many.
    template <typename F>
    size_t release_if(F&& unused) {
        size_t n = 0;
        for (auto it = m_ids.begin(); it != m_ids.end();) {
            if (unused(it->first, it->second)) {
                m_free.push_back(it->second);
                it = m_ids.erase(it);
                ++n;
            } else {
                ++it;
            }
        }
        return n;
    }
    uint32_t assigned() const { return uint32_t(m_ids.size()); } // ids in use

private:
    std::map<key, uint32_t> m_ids;
    std::vector<uint32_t> m_free;
    uint32_t m_next = 1;
};

struct snapshot_backend {
    uint32_t id = 0;
    uint16_t service_index = 0;
    net::ip_addr address;
    uint16_t port = 0;    // host byte order
    uint16_t port_be = 0; // network byte order, for rewriting
    uint32_t weight = 0;
    backend_state state = backend_state::unknown;
    double expected_share = 0.0;  // configured weight / total configured weight of the pool
    double predicted_share = 0.0; // slots / table size in this snapshot's Maglev table
    uint32_t slots = 0;
    // When draining: the data-plane clock (ms) after which its remaining flows are
    // reset; 0 = no deadline. Stamped by the daemon before publishing.
    uint64_t drain_deadline_ms = 0;
    std::string key() const; // "ADDR:PORT"
};

struct snapshot_service {
    uint16_t index = 0;
    std::string name;
    std::string pool;
    net::ip_addr vip;
    uint16_t port = 0;    // host byte order
    uint16_t port_be = 0; // network byte order
    uint8_t proto = 6;
    config::hash_mode hash = config::hash_mode::five_tuple;
    config::forward_mode mode = config::forward_mode::dnat;
    // Maglev: slot -> backend id (0 = none). Immutable and shared: a snapshot in which
    // the service's members did not change reuses the previous snapshot's table, so a
    // health verdict or an apply costs what the services it touches cost.
    std::shared_ptr<const std::vector<uint32_t>> table;
    // What the table was built from (members taking new flows, in config order).
    std::vector<balance::maglev_backend> members;
    std::vector<uint32_t> backend_indexes; // into snapshot::backends
    bool has_backend_up = false;
    // Set by the daemon during an apply's probation when backends of the service are
    // down: a failure right after a config change may be the config's (a wrong
    // health port), so flows pinned to them keep going instead of being reset.
    bool keep_pinned_flows = false;

    // The flow's hash for this service's hashing mode (5-tuple or source address),
    // keyed by the fleet's hash_seed (see net::pick_key).
    uint32_t flow_hash(const net::flow_key& key) const;
    net::pick_key pick_key;
    // The Maglev pick for that hash; balance::no_backend when none is up.
    uint32_t pick(uint32_t hash) const { return m_slots[hash % m_table_size]; }
    uint32_t table_size() const { return m_table_size; }
    void set_table(std::shared_ptr<const std::vector<uint32_t>> t) {
        table = std::move(t);
        m_slots = table->data();
        m_table_size = uint32_t(table->size());
    }

private:
    // The hot path's copy of table->data() and its size: one load less per pick.
    const uint32_t* m_slots = nullptr;
    uint32_t m_table_size = 0;
};

struct snapshot {
    uint64_t version = 0;
    std::shared_ptr<const config::config> cfg; // shared with the config history
    std::vector<snapshot_service> services;
    std::vector<snapshot_backend> backends;

    // Hot path: the service listening on (vip, port, proto), or nullptr.
    const snapshot_service* find_service(const net::ip_addr& vip, uint16_t port_be,
                                         uint8_t proto) const;
    // Hot path: the backend with this id, or nullptr when it is not in this snapshot.
    const snapshot_backend* find_backend(uint32_t id) const {
        if (id >= m_backend_by_id.size() || m_backend_by_id[id] < 0) {
            return nullptr;
        }
        return &backends[size_t(m_backend_by_id[id])];
    }
    // Whether `ip` is a VIP of some service (the balancer answers ARP and ICMP echo
    // for it). A binary search: workers answer ARP with it.
    bool is_vip(const net::ip_addr& ip) const;
    // Whether (address, port) is a backend of some service.
    bool is_backend(const net::ip_addr& address, uint16_t port_be) const;
    // For a reply whose flow entry no worker has (a restart, a flow from before an
    // ECMP change): the service whose VIP it must carry. A backend of one service
    // answers for it; one shared by several services answers for the service whose
    // Maglev pick for this client is that backend (what the forward packets did, as
    // long as the backend set is unchanged). nullptr when none or several fit.
    const snapshot_service* service_of_reply(const net::ip_addr& backend, uint16_t backend_port_be,
                                             const net::ip_addr& client,
                                             uint16_t client_port_be) const;

    // Building blocks, filled by build_snapshot.
    std::vector<int32_t> m_backend_by_id;
    struct service_slot {
        net::ip_addr vip;
        uint16_t port_be = 0;
        uint8_t proto = 0;
        int16_t service = -1; // -1 = empty slot
    };
    std::vector<service_slot> m_service_slots; // open addressing, power-of-two size
    // Backend endpoint -> the backends (indexes) at that address and port, sorted.
    std::vector<std::pair<std::pair<net::ip_addr, uint16_t>, uint32_t>> m_by_endpoint;
    std::vector<net::ip_addr> m_vips; // sorted, unique
};

struct build_result {
    std::unique_ptr<snapshot> value;
    std::string error; // set when value is null
};

// Builds a snapshot of a validated config. `states` overrides the state of backends by
// id (health verdicts, operator actions); a backend absent from it is `unknown`, or
// `draining` when its configured weight is 0. With `previous`, a service whose
// table size and members are unchanged shares its Maglev table instead of building it.
// `with_tables = false` builds everything but the tables (shares for a review).
struct build_options {
    const snapshot* previous = nullptr;
    bool with_tables = true;
    // The backend pick's key, when the config sets no [dataplane] hash_seed (the
    // daemon's generated one; the public all-zero seed elsewhere).
    net::hash_seed fallback_seed{};
};
build_result build_snapshot(std::shared_ptr<const config::config> cfg, backend_registry& registry,
                            const std::map<uint32_t, backend_state>& states, uint64_t version,
                            const build_options& options);
// Builds a snapshot a few services at a time, so that the control thread can build
// a large config between its other work (ARP, probes, the socket): step() builds
// services until its time budget is spent. `registry` and `options.previous` must
// outlive the builder. build_snapshot() is the same, all at once.
class snapshot_builder {
public:
    snapshot_builder(std::shared_ptr<const config::config> cfg, backend_registry& registry,
                     std::map<uint32_t, backend_state> states, uint64_t version,
                     build_options options);
    // True once every service is built (or the build failed).
    bool step(std::chrono::steady_clock::duration budget);
    bool done() const;
    // The snapshot, or the error; once done.
    build_result finish();
    size_t tables_built() const { return m_built; }
    size_t tables_reused() const { return m_reused; }

private:
    void add_service(const config::service_config& sc);

    backend_registry& m_registry;
    std::map<uint32_t, backend_state> m_states;
    build_options m_options;
    net::pick_key m_pick_key;
    std::unique_ptr<snapshot> m_snap;
    std::map<std::string_view, const config::pool_config*> m_pools;
    std::map<std::string_view, const snapshot_service*> m_before; // previous, by name
    size_t m_next = 0;                                            // next service to build
    size_t m_built = 0, m_reused = 0;
    std::string m_error;
};

// A copy of `cfg`, every table built (evenctl check, tests).
build_result build_snapshot(const config::config& cfg, backend_registry& registry,
                            const std::map<uint32_t, backend_state>& states, uint64_t version);

} // namespace evenflow
