// What changes between two configs, phrased for a human review.
#pragma once

#include "config/config.hpp"

#include <string>
#include <vector>

namespace evenflow::config {

// One line per change, stable order (services, pools, backends, then settings):
//   "+ service api 10.10.0.101:80 -> pool api"
//   "- backend web 10.20.0.13:8080 (weight 2)"
//   "~ backend web 10.20.0.12:8080: weight 1 -> 3"
//   "~ skew.threshold: 2 -> 3"
// Empty when the configs are equivalent.
std::vector<std::string> diff(const config& before, const config& after);

} // namespace evenflow::config
