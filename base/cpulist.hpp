// The one parser of Linux CPU/node list strings ("0-3,8,10-11"), strict.
#pragma once

#include <string>
#include <vector>

namespace socker {

inline constexpr unsigned kMaxListIndex = 65535;

// Digits, '-' and ',' only, ranges ascending, indexes up to kMaxListIndex, no empty items; the
// empty string is the empty list. Returns the indexes in ascending order, each once. `what`
// names the input in the one-line Error(Exit::Usage).
std::vector<unsigned> parse_cpu_list(const std::string& text, const std::string& what);

}  // namespace socker
