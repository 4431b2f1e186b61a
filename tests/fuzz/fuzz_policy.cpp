// libFuzzer target: the admin config parser (text -> Policy or a Config error, never a crash).
#include <cstddef>
#include <cstdint>
#include <string>

#include "base/error.hpp"
#include "src/policy.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string text(reinterpret_cast<const char*>(data), size);
    try {
        socker::Policy p = socker::parse_policy(text, "fuzz.conf");
        (void)p;
    } catch (const socker::Error& e) {
        if (e.code() != socker::Exit::Config) __builtin_trap();  // only config errors are expected
    }
    return 0;
}
