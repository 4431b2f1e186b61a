#include "base/cpulist.hpp"

#include <algorithm>

#include "base/error.hpp"

namespace socker {

std::vector<unsigned> parse_cpu_list(const std::string& text, const std::string& what) {
    std::vector<unsigned> out;
    auto bad = [&](const std::string& why) {
        return Error(Exit::Usage, what, text, 0, why + " (expected a CPU list such as 0-3,8)");
    };
    size_t i = 0;
    auto number = [&]() -> unsigned {
        if (i >= text.size() || text[i] < '0' || text[i] > '9') throw bad("expected a number");
        unsigned long v = 0;
        while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
            v = v * 10 + static_cast<unsigned long>(text[i] - '0');
            if (v > kMaxListIndex) throw bad("index above " + std::to_string(kMaxListIndex));
            ++i;
        }
        return static_cast<unsigned>(v);
    };
    while (i < text.size()) {
        const unsigned lo = number();
        unsigned hi = lo;
        if (i < text.size() && text[i] == '-') {
            ++i;
            hi = number();
            if (hi < lo) throw bad("descending range");
        }
        for (unsigned c = lo; c <= hi; ++c) out.push_back(c);
        if (i < text.size()) {
            if (text[i] != ',') throw bad(std::string("unexpected character '") + text[i] + "'");
            ++i;
            if (i == text.size()) throw bad("trailing comma");
        }
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
}

}  // namespace socker
