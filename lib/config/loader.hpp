// The config loader's internals, shared by load.cpp (one reader per section) and
// checks.cpp (checks across entries). Not a public header: see load.hpp.
#pragma once

#include "config/toml_reader.hpp"

#include <optional>
#include <string>
#include <vector>

namespace evenflow::config {

// Where a pool's or service's values came from, for the checks that span entries.
struct backend_source {
    const toml::table* table = nullptr;
    bool address_ok = false;
    bool port_ok = false;
};

struct pool_source {
    const toml::table* table = nullptr;
    const toml::node* backends = nullptr;
    bool name_ok = false;
    std::optional<std::string> raw_name; // the name string even when it is invalid
    std::vector<backend_source> backends_src;
};

struct service_source {
    const toml::table* table = nullptr;
    const toml::node* vip = nullptr;
    const toml::node* pool = nullptr;
    const toml::node* table_size = nullptr;
    const toml::node* mode = nullptr;
    bool vip_ok = false;
    bool port_ok = false;
    bool pool_ok = false;
    bool table_size_ok = true; // the default is valid
};

class loader : public toml_reader {
public:
    explicit loader(std::string file) : toml_reader(std::move(file)) {}
    load_result run(const toml::table& root);

private:
    config m_config;
    std::vector<pool_source> m_pool_src;
    std::vector<service_source> m_service_src;
    std::vector<const toml::node*> m_vrrp_src; // by interface; null: no vrrp
    const toml::table* m_bgp_src = nullptr;

    // ---- sections

    void read_root(const toml::table& root);

    void read_eal(const toml::table& table);

    void read_control(const toml::table& table);

    void read_dataplane(const toml::table& table);

    void read_interface(const toml::table& table, const std::string& path);

    std::optional<vrrp_config> read_vrrp(const toml::node& node, const std::string& path,
                                         const interface_config& iface, bool address_ok);

    void read_pool(const toml::table& table, const std::string& path);

    void read_backend(const toml::table& table, const std::string& path, pool_config& pool,
                      pool_source& src);

    void read_health(const toml::table& table, const std::string& path, health_config& health);

    void read_service(const toml::table& table, const std::string& path);

    void read_skew(const toml::table& table);

    void read_bgp(const toml::table& table);

    // ---- checks across entries

    void check_services();
    void check_counts();
    // The moving gateways against VIPs and backends; [bgp] return_path against services.
    void check_reply_path();

    void check_table_size(const service_config& service, const service_source& src,
                          const std::string& path, size_t backend_count);
};

} // namespace evenflow::config
