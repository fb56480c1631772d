#include "gateway_module.hpp"

#include "control/log.hpp"

#include <fmt/format.h>

namespace evenflow::daemon {

using api::json;
using control::log_event;

namespace {

bool holds(const dataplane::slow_path::gateway& g) {
    return g.election.current() == net::vrrp_election::role::master;
}

} // namespace

bool gateway_module::start(std::string*) {
    const auto now = clock::now();
    m_ctx.slow_path->start_gateways(m_ctx.changes.manager().running().interfaces, now);
    for (const auto& g : m_ctx.slow_path->gateways()) {
        m_holding.push_back(false);
        log_event("info", "gateway_started",
                  {{"interface", m_ctx.shared.interfaces[g.iface].name},
                   {"address", g.settings.address.to_string()},
                   {"id", std::to_string(g.settings.id)},
                   {"priority", std::to_string(g.settings.priority)}});
    }
    return true;
}

void gateway_module::tick(clock::time_point now) {
    if (m_ctx.slow_path == nullptr || m_ctx.slow_path->gateways().empty()) {
        return;
    }
    const auto& gateways = m_ctx.slow_path->gateways();
    m_ctx.slow_path->tick_gateways(!m_stopping && m_bgp.in_service(), now);
    m_stop_seen = m_stopping;
    for (size_t i = 0; i < gateways.size(); ++i) {
        const auto& g = gateways[i];
        if (holds(g) == m_holding[i]) {
            continue;
        }
        m_holding[i] = holds(g);
        const auto& peer = g.election.last_peer();
        log_event(m_holding[i] ? "info" : "warning",
                  m_holding[i] ? "gateway_taken" : "gateway_released",
                  {{"interface", m_ctx.shared.interfaces[g.iface].name},
                   {"address", g.settings.address.to_string()},
                   {"priority", std::to_string(g.election.priority())},
                   {"peer", peer.sender.is_unspecified() ? "none" : peer.sender.to_string()},
                   {"peer_priority", std::to_string(peer.priority)}});
    }
}

bool gateway_module::holds_stop(clock::time_point now) {
    // Handed over at the stop request (out of service): frames already on their way
    // here are still forwarded until the hand-over settles.
    if (m_ctx.slow_path == nullptr || m_ctx.slow_path->gateways().empty()) {
        return false;
    }
    return !m_stop_seen || m_ctx.slow_path->gateway_handover_pending(now);
}

void gateway_module::stop() {
    // Twice (the daemon's shutdown runs again from its destructor), the second time
    // without a slow path; or before one existed (a start refused early).
    if (m_ctx.slow_path != nullptr) {
        m_ctx.slow_path->resign_gateways(clock::now());
    }
}

void gateway_module::collect_metrics(exposition& out) {
    if (m_ctx.slow_path == nullptr || m_ctx.slow_path->gateways().empty()) {
        return;
    }
    const auto& gateways = m_ctx.slow_path->gateways();
    out.help("evenflow_gateway_held", "gauge",
             "1 while this host holds the backends' vrrp gateway on the interface.");
    for (const auto& g : gateways) {
        out.sample("evenflow_gateway_held",
                   {{"interface", m_ctx.shared.interfaces[g.iface].name},
                    {"address", g.settings.address.to_string()}},
                   holds(g) ? 1.0 : 0.0);
    }
    out.help("evenflow_gateway_transitions_total", "counter",
             "Times this host took or released the vrrp gateway.");
    for (const auto& g : gateways) {
        out.sample("evenflow_gateway_transitions_total",
                   {{"interface", m_ctx.shared.interfaces[g.iface].name}},
                   double(g.election.transitions()));
    }
    out.help("evenflow_gateway_adverts_total", "counter",
             "VRRP adverts sent, received from peers, and refused (not a peer, another "
             "address, malformed).");
    for (const auto& g : gateways) {
        const std::string iface = m_ctx.shared.interfaces[g.iface].name;
        out.sample("evenflow_gateway_adverts_total", {{"interface", iface}, {"direction", "sent"}},
                   double(g.adverts_sent));
        out.sample("evenflow_gateway_adverts_total",
                   {{"interface", iface}, {"direction", "received"}}, double(g.adverts_received));
        out.sample("evenflow_gateway_adverts_total",
                   {{"interface", iface}, {"direction", "refused"}}, double(g.adverts_refused));
    }
}

void gateway_module::status(json& out) {
    if (m_ctx.slow_path == nullptr) {
        return;
    }
    json list = json::array();
    const auto now = clock::now();
    for (const auto& g : m_ctx.slow_path->gateways()) {
        const auto& peer = g.election.last_peer();
        json item;
        item["interface"] = m_ctx.shared.interfaces[g.iface].name;
        item["address"] = g.settings.address.to_string();
        item["id"] = g.settings.id;
        item["held"] = holds(g);
        item["priority"] = g.election.priority();
        item["in_service"] = g.election.in_service();
        item["since_s"] = std::chrono::duration<double>(now - g.since).count();
        item["transitions"] = g.election.transitions();
        item["peer"] = peer.sender.is_unspecified() ? json() : json(peer.sender.to_string());
        item["peer_priority"] = peer.priority;
        item["peer_heard_s_ago"] =
            peer.sender.is_unspecified()
                ? json()
                : json(std::chrono::duration<double>(now - g.election.last_peer_at()).count());
        item["adverts_sent"] = g.adverts_sent;
        item["adverts_received"] = g.adverts_received;
        item["adverts_refused"] = g.adverts_refused;
        list.push_back(item);
    }
    out["gateways"] = list;
}

} // namespace evenflow::daemon
