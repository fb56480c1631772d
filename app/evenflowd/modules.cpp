// The features evenflowd runs, in the order the control loop calls them. Adding a
// feature: its folder under modules/ and one line here (README "Adding a feature").
#include "module.hpp"
#include "modules/bgp/bgp_module.hpp"
#include "modules/gateway/gateway_module.hpp"
#include "modules/health/health_module.hpp"
#include "modules/skew/skew_module.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>

namespace evenflow::daemon {

std::string iso_time(std::chrono::system_clock::time_point t) {
    return fmt::format("{:%Y-%m-%dT%H:%M:%S}Z", std::chrono::floor<std::chrono::seconds>(t));
}

std::vector<std::unique_ptr<module>> make_modules(module_context& ctx) {
    std::vector<std::unique_ptr<module>> modules;
    modules.push_back(std::make_unique<health_module>(ctx));
    modules.push_back(std::make_unique<skew_module>(ctx));
    auto bgp = std::make_unique<bgp_module>(ctx);
    auto gateway = std::make_unique<gateway_module>(ctx, *bgp); // holds as bgp announces
    modules.push_back(std::move(bgp));
    modules.push_back(std::move(gateway));
    return modules;
}

} // namespace evenflow::daemon
