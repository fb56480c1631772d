#include "control/clients.hpp"

#include "net/flow_key.hpp"

#include <algorithm>
#include <map>

namespace evenflow::control {

using flow::client_event;
using flow::client_event_count;

size_t client_key_hash::operator()(const client_key& k) const {
    struct {
        net::ip_addr client;
        uint32_t tag;
    } bytes{k.client, k.tag};
    return net::crc32c(&bytes, sizeof bytes, 0x2545f491u);
}

void client_window::reset() {
    m_buckets.clear();
    m_window_counts.clear();
}

void client_window::add_to_window(const client_key& key, const client_event_counts& c) {
    m_window_counts[key] += c;
}

void client_window::remove_from_window(const client_key& key, const client_event_counts& c) {
    auto it = m_window_counts.find(key);
    if (it == m_window_counts.end()) {
        return;
    }
    bool empty = true;
    for (size_t e = 0; e < client_event_count; ++e) {
        it->second[e] -= c[e];
        empty = empty && it->second[e].count == 0;
    }
    if (empty) {
        m_window_counts.erase(it);
    }
}

void client_window::trim(bucket& b, bool in_window) {
    if (b.counts.size() <= kept_per_second) {
        return;
    }
    std::vector<std::pair<client_key, client_event_counts>> all(b.counts.begin(), b.counts.end());
    std::vector<uint8_t> keep(all.size(), 0);
    std::vector<size_t> order(all.size());
    for (size_t e = 0; e < client_event_count; ++e) {
        for (size_t i = 0; i < order.size(); ++i) {
            order[i] = i;
        }
        std::nth_element(order.begin(), order.begin() + ptrdiff_t(kept_per_second), order.end(),
                         [&](size_t x, size_t y) {
                             return all[x].second[e].lower_bound() > all[y].second[e].lower_bound();
                         });
        for (size_t i = 0; i < kept_per_second; ++i) {
            keep[order[i]] = 1;
        }
    }
    b.counts.clear();
    for (size_t i = 0; i < all.size(); ++i) {
        if (keep[i] != 0) {
            b.counts.emplace(all[i].first, all[i].second);
        } else if (in_window) {
            remove_from_window(all[i].first, all[i].second);
        }
    }
}

void client_window::add(clock::time_point now,
                        std::span<const flow::client_sketches::buffer* const> sealed) {
    bucket fresh{now, now, {}};
    for (const flow::client_sketches::buffer* buffer : sealed) {
        for (size_t e = 0; e < client_event_count; ++e) {
            (*buffer)[e].for_each([&](const flow::client_sketch::slot& slot) {
                client_event_counts& c = fresh.counts[client_key{slot.client, slot.tag}];
                c[e] += client_counts{slot.count, slot.error};
            });
        }
    }
    trim(fresh, false);
    const clock::duration span = m_window / long(max_buckets);
    if (!m_buckets.empty() && now - m_buckets.back().first < span) {
        bucket& current = m_buckets.back();
        current.last = now;
        for (const auto& [key, c] : fresh.counts) {
            current.counts[key] += c;
            add_to_window(key, c);
        }
        trim(current, true);
    } else {
        for (const auto& [key, c] : fresh.counts) {
            add_to_window(key, c);
        }
        m_buckets.push_back(std::move(fresh));
    }
    // As the skew detector's window: a second leaves once it is a window old.
    while (m_buckets.size() > 1 && now - m_buckets.front().last >= m_window) {
        for (const auto& [key, c] : m_buckets.front().counts) {
            remove_from_window(key, c);
        }
        m_buckets.pop_front();
    }
}

client_event_counts client_window::counts(const client_key& key) const {
    auto it = m_window_counts.find(key);
    return it == m_window_counts.end() ? client_event_counts{} : it->second;
}

std::vector<client_window::ranked> client_window::of_backend(uint32_t backend_id, bool networks,
                                                             client_event event, uint64_t at_least,
                                                             size_t limit) const {
    std::vector<ranked> out;
    for (const auto& [key, c] : m_window_counts) {
        if (key.backend_id() == backend_id && key.is_network() == networks &&
            c[size_t(event)].lower_bound() >= at_least) {
            out.push_back({key, c});
        }
    }
    auto heavier = [&](const ranked& a, const ranked& b) {
        uint64_t x = a.counts[size_t(event)].lower_bound(),
                 y = b.counts[size_t(event)].lower_bound();
        return x != y ? x > y : a.key.client < b.key.client;
    };
    if (out.size() > limit) {
        std::partial_sort(out.begin(), out.begin() + ptrdiff_t(limit), out.end(), heavier);
        out.resize(limit);
    } else {
        std::sort(out.begin(), out.end(), heavier);
    }
    return out;
}

std::vector<client_window::client_row> client_window::top(std::span<const uint32_t> backend_ids,
                                                          bool networks, size_t limit) const {
    std::vector<uint32_t> wanted(backend_ids.begin(), backend_ids.end());
    std::sort(wanted.begin(), wanted.end());
    std::map<net::ip_addr, client_row> rows;
    for (const auto& [key, c] : m_window_counts) {
        if (key.is_network() != networks ||
            !std::binary_search(wanted.begin(), wanted.end(), key.backend_id())) {
            continue;
        }
        client_row& row = rows[key.client];
        row.client = key.client;
        row.network = networks;
        row.total += c;
        row.backends.emplace_back(key.backend_id(), c);
    }
    auto weight = [](const client_event_counts& c) {
        return std::pair(c[size_t(client_event::verified)].lower_bound(),
                         c[size_t(client_event::syn)].lower_bound());
    };
    std::vector<client_row> out;
    out.reserve(rows.size());
    for (auto& [addr, row] : rows) {
        std::sort(row.backends.begin(), row.backends.end(), [&](const auto& a, const auto& b) {
            return weight(a.second) > weight(b.second);
        });
        out.push_back(std::move(row));
    }
    auto heavier = [&](const client_row& a, const client_row& b) {
        return weight(a.total) > weight(b.total);
    };
    const size_t n = std::min(limit, out.size());
    std::partial_sort(out.begin(), out.begin() + ptrdiff_t(n), out.end(), heavier);
    out.resize(n);
    return out;
}

} // namespace evenflow::control
