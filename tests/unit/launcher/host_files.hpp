// Test helpers shared by the ELF and loader-cache tests: a host file's bytes, a command's output.
#pragma once

#include <cstdio>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>

namespace socker::test {

inline std::optional<std::string> slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return std::nullopt;
    return std::string(std::istreambuf_iterator<char>(in), {});
}

// Runs `command` and returns its standard output, or nullopt when it failed.
inline std::optional<std::string> output_of(const std::string& command) {
    FILE* p = popen(command.c_str(), "r");
    if (p == nullptr) return std::nullopt;
    std::string out;
    char buf[4096];
    for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
    return pclose(p) == 0 ? std::optional(out) : std::nullopt;
}

}  // namespace socker::test
