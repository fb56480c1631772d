#include "snapshot/snapshot.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <bit>
#include <cstring>

#include <fmt/format.h>

namespace evenflow {

std::string_view to_string(backend_state s) {
    return name_of(s);
}

uint32_t backend_registry::id_for(const std::string& service, const net::ip_addr& address,
                                  uint16_t port) {
    auto k = std::make_tuple(service, address, port);
    if (auto it = m_ids.find(k); it != m_ids.end()) {
        return it->second;
    }
    uint32_t id = balance::no_backend;
    if (!m_free.empty()) {
        id = m_free.back();
        m_free.pop_back();
    } else if (m_next < max_ids) {
        id = m_next++;
    } else {
        return balance::no_backend;
    }
    m_ids.emplace(std::move(k), id);
    return id;
}

uint32_t backend_registry::find(const std::string& service, const net::ip_addr& address,
                                uint16_t port) const {
    auto it = m_ids.find(std::make_tuple(service, address, port));
    return it == m_ids.end() ? balance::no_backend : it->second;
}

std::string snapshot_backend::key() const {
    if (address.is_v4()) {
        return fmt::format("{}:{}", address.to_string(), port);
    }
    return fmt::format("[{}]:{}", address.to_string(), port);
}

uint32_t snapshot_service::flow_hash(const net::flow_key& key) const {
    uint64_t words[net::pick_key::max_words];
    static_assert(sizeof(net::flow_key) == sizeof words);
    if (hash == config::hash_mode::five_tuple) {
        std::memcpy(words, &key, sizeof key); // padding included: always zero
        return pick_key.hash(words, 5);
    }
    std::memcpy(words, key.src.bytes.data(), 16);
    if (hash == config::hash_mode::src_ip) {
        return pick_key.hash(words, 2);
    }
    words[2] = key.src_port;
    return pick_key.hash(words, 3);
}

namespace {

// Per packet (find_service): inlined by force, as GCC 12's heuristics dropped it once
// this file grew (+7 instructions per packet in the gate).
[[gnu::always_inline]] inline uint32_t service_slot_hash(const net::ip_addr& vip, uint16_t port_be,
                                                         uint8_t proto) {
    uint32_t h = net::crc32c(vip.bytes.data(), vip.bytes.size(), proto);
    return net::crc32c(&port_be, sizeof port_be, h);
}

} // namespace

const snapshot_service* snapshot::find_service(const net::ip_addr& vip, uint16_t port_be,
                                               uint8_t proto) const {
    if (m_service_slots.empty()) {
        return nullptr;
    }
    size_t mask = m_service_slots.size() - 1;
    for (size_t i = service_slot_hash(vip, port_be, proto) & mask;; i = (i + 1) & mask) {
        const service_slot& slot = m_service_slots[i];
        if (slot.service < 0) {
            return nullptr;
        }
        if (slot.port_be == port_be && slot.proto == proto && slot.vip == vip) {
            return &services[size_t(slot.service)];
        }
    }
}

bool snapshot::is_vip(const net::ip_addr& ip) const {
    return std::binary_search(m_vips.begin(), m_vips.end(), ip);
}

bool snapshot::is_backend(const net::ip_addr& address, uint16_t port_be) const {
    auto key = std::make_pair(address, port_be);
    auto it = std::lower_bound(m_by_endpoint.begin(), m_by_endpoint.end(), key,
                               [](const auto& e, const auto& k) { return e.first < k; });
    return it != m_by_endpoint.end() && it->first == key;
}

const snapshot_service* snapshot::service_of_reply(const net::ip_addr& backend,
                                                   uint16_t backend_port_be,
                                                   const net::ip_addr& client,
                                                   uint16_t client_port_be) const {
    auto key = std::make_pair(backend, backend_port_be);
    auto it = std::lower_bound(m_by_endpoint.begin(), m_by_endpoint.end(), key,
                               [](const auto& e, const auto& k) { return e.first < k; });
    const snapshot_service* found = nullptr;
    size_t candidates = 0;
    for (; it != m_by_endpoint.end() && it->first == key; ++it) {
        const snapshot_backend& b = backends[it->second];
        const snapshot_service& svc = services[b.service_index];
        ++candidates;
        net::flow_key forward;
        forward.src = client;
        forward.src_port = client_port_be;
        forward.dst = svc.vip;
        forward.dst_port = svc.port_be;
        forward.proto = svc.proto;
        if (svc.pick(svc.flow_hash(forward)) != b.id) {
            continue;
        }
        if (found != nullptr) {
            return nullptr; // two services would have sent this client here
        }
        found = &svc;
    }
    if (candidates == 1 && found == nullptr) {
        // The only service it serves, even if its pick has moved since (a removed or
        // down backend keeps its flows): its VIP is the only one the client can know.
        return &services[backends[std::lower_bound(
                                      m_by_endpoint.begin(), m_by_endpoint.end(), key,
                                      [](const auto& e, const auto& k) { return e.first < k; })
                                      ->second]
                             .service_index];
    }
    return found;
}

build_result build_snapshot(const config::config& cfg, backend_registry& registry,
                            const std::map<uint32_t, backend_state>& states, uint64_t version) {
    return build_snapshot(std::make_shared<const config::config>(cfg), registry, states, version,
                          {});
}

build_result build_snapshot(std::shared_ptr<const config::config> cfg, backend_registry& registry,
                            const std::map<uint32_t, backend_state>& states, uint64_t version,
                            const build_options& options) {
    snapshot_builder builder(std::move(cfg), registry, states, version, options);
    while (!builder.step(std::chrono::hours(1))) {
    }
    return builder.finish();
}

snapshot_builder::snapshot_builder(std::shared_ptr<const config::config> cfg,
                                   backend_registry& registry,
                                   std::map<uint32_t, backend_state> states, uint64_t version,
                                   build_options options)
    : m_registry(registry), m_states(std::move(states)), m_options(options),
      m_snap(std::make_unique<snapshot>()) {
    m_snap->version = version;
    m_snap->cfg = std::move(cfg);
    m_pick_key = net::pick_key(m_snap->cfg->dataplane.hash_seed.value_or(options.fallback_seed));
    m_snap->m_backend_by_id.assign(backend_registry::max_ids, -1);
    for (const config::pool_config& p : m_snap->cfg->pools) {
        m_pools.emplace(p.name, &p);
    }
    if (m_options.previous != nullptr) {
        for (const snapshot_service& svc : m_options.previous->services) {
            m_before.emplace(svc.name, &svc);
        }
    }
}

bool snapshot_builder::step(std::chrono::steady_clock::duration budget) {
    auto deadline = std::chrono::steady_clock::now() + budget;
    const auto& services = m_snap->cfg->services;
    while (m_error.empty() && m_next < services.size()) {
        add_service(services[m_next++]);
        if (std::chrono::steady_clock::now() >= deadline) {
            break;
        }
    }
    return done();
}

bool snapshot_builder::done() const {
    return !m_error.empty() || m_next == m_snap->cfg->services.size();
}

void snapshot_builder::add_service(const config::service_config& sc) {
    static const auto empty_table = std::make_shared<const std::vector<uint32_t>>(1, 0u);
    snapshot& snap = *m_snap;
    auto pool_it = m_pools.find(sc.pool);
    if (pool_it == m_pools.end()) {
        m_error = fmt::format("service {}: pool {} does not exist", sc.name, sc.pool);
        return;
    }
    const config::pool_config* pool = pool_it->second;
    snapshot_service svc;
    svc.index = uint16_t(snap.services.size());
    svc.name = sc.name;
    svc.pool = sc.pool;
    svc.vip = sc.vip;
    svc.port = sc.port;
    svc.port_be = htons(sc.port);
    svc.proto = 6;
    svc.hash = sc.hash;
    svc.pick_key = m_pick_key;
    svc.mode = sc.mode;

    uint64_t total_weight = 0;
    for (const config::backend_config& bc : pool->backends) {
        total_weight += bc.weight;
    }
    for (const config::backend_config& bc : pool->backends) {
        snapshot_backend b;
        b.id = m_registry.id_for(sc.name, bc.address, bc.port);
        if (b.id == balance::no_backend) {
            m_error = fmt::format("service {}: backend id space ({}) exhausted; restart the "
                                  "daemon to renumber",
                                  sc.name, backend_registry::max_ids - 1);
            return;
        }
        b.service_index = svc.index;
        b.address = bc.address;
        b.port = bc.port;
        b.port_be = htons(bc.port);
        b.weight = bc.weight;
        if (auto it = m_states.find(b.id); it != m_states.end()) {
            b.state = it->second;
        } else {
            b.state = bc.weight == 0 ? backend_state::draining : backend_state::unknown;
        }
        b.expected_share = total_weight == 0 ? 0.0 : double(bc.weight) / double(total_weight);
        if (takes_new_flows(b.state) && bc.weight > 0) {
            svc.members.push_back({b.id, b.key(), bc.weight});
            svc.has_backend_up = true;
        }
        snap.m_backend_by_id[b.id] = int32_t(snap.backends.size());
        svc.backend_indexes.push_back(uint32_t(snap.backends.size()));
        snap.backends.push_back(std::move(b));
    }

    const snapshot_service* reused = nullptr;
    if (auto it = m_before.find(svc.name); m_options.with_tables && it != m_before.end() &&
                                           it->second->table_size() == sc.table_size &&
                                           it->second->members == svc.members) {
        reused = it->second;
    }
    if (!m_options.with_tables) {
        svc.set_table(empty_table);
    } else if (reused != nullptr) {
        // Same members, same size: the same table, and the same slot counts.
        svc.set_table(reused->table);
        ++m_reused;
        for (uint32_t i : svc.backend_indexes) {
            snapshot_backend& b = snap.backends[i];
            const snapshot_backend* old = m_options.previous->find_backend(b.id);
            b.slots = old != nullptr ? old->slots : 0;
            b.predicted_share = double(b.slots) / double(svc.table_size());
        }
    } else {
        svc.set_table(std::make_shared<const std::vector<uint32_t>>(
            balance::build_maglev_table(svc.members, sc.table_size)));
        ++m_built;
        // Slot counts per id; the scratch array is cleared again for the next service.
        thread_local std::vector<uint32_t> counts(backend_registry::max_ids, 0);
        for (uint32_t id : *svc.table) {
            ++counts[id];
        }
        for (uint32_t i : svc.backend_indexes) {
            snapshot_backend& b = snap.backends[i];
            b.slots = counts[b.id];
            b.predicted_share = double(b.slots) / double(svc.table_size());
        }
        for (uint32_t id : *svc.table) {
            counts[id] = 0;
        }
    }
    snap.services.push_back(std::move(svc));
}

build_result snapshot_builder::finish() {
    if (!m_error.empty()) {
        return {nullptr, m_error};
    }
    snapshot& snap = *m_snap;
    for (uint32_t i = 0; i < snap.backends.size(); ++i) {
        snap.m_by_endpoint.push_back({{snap.backends[i].address, snap.backends[i].port_be}, i});
    }
    std::sort(snap.m_by_endpoint.begin(), snap.m_by_endpoint.end());
    for (const snapshot_service& svc : snap.services) {
        snap.m_vips.push_back(svc.vip);
    }
    std::sort(snap.m_vips.begin(), snap.m_vips.end());
    snap.m_vips.erase(std::unique(snap.m_vips.begin(), snap.m_vips.end()), snap.m_vips.end());
    // Open-addressing service index at most half full, so probes stay short.
    size_t slots = std::bit_ceil(std::max<size_t>(8, snap.services.size() * 2));
    snap.m_service_slots.assign(slots, {});
    for (const snapshot_service& svc : snap.services) {
        size_t mask = slots - 1;
        size_t i = service_slot_hash(svc.vip, svc.port_be, svc.proto) & mask;
        while (snap.m_service_slots[i].service >= 0) {
            i = (i + 1) & mask;
        }
        snap.m_service_slots[i] = {svc.vip, svc.port_be, svc.proto, int16_t(svc.index)};
    }
    return {std::move(m_snap), {}};
}

} // namespace evenflow
