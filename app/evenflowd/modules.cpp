// The features evenflowd runs, in the order the control loop calls them. Adding a
// feature: its folder under modules/ and one line here (README "Adding a feature").
#include "module.hpp"
#include "modules/bgp/bgp_module.hpp"
#include "modules/health/health_module.hpp"

namespace evenflow::daemon {

std::vector<std::unique_ptr<module>> make_modules(module_context& ctx) {
    std::vector<std::unique_ptr<module>> modules;
    modules.push_back(std::make_unique<health_module>(ctx));
    modules.push_back(std::make_unique<bgp_module>(ctx));
    return modules;
}

} // namespace evenflow::daemon
