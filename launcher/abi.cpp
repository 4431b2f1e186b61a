#include "launcher/abi.hpp"

#include <algorithm>
#include <climits>

namespace socker::launcher::abi {

namespace {

std::optional<Version> dotted(std::string_view s) {
    if (s.empty()) return std::nullopt;
    Version v;
    unsigned long cur = 0;
    bool digit = false;
    for (char c : s) {
        if (c >= '0' && c <= '9') {
            cur = cur * 10 + static_cast<unsigned long>(c - '0');
            if (cur > UINT_MAX / 10) return std::nullopt;
            digit = true;
        } else if (c == '.' && digit) {
            v.push_back(static_cast<unsigned>(cur));
            cur = 0;
            digit = false;
        } else {
            return std::nullopt;
        }
    }
    if (!digit) return std::nullopt;
    v.push_back(static_cast<unsigned>(cur));
    return v;
}

unsigned part(const Version& v, size_t i) { return i < v.size() ? v[i] : 0; }

}  // namespace

std::optional<Version> of_file_name(std::string_view file_name) {
    const size_t slash = file_name.rfind('/');
    if (slash != std::string_view::npos) file_name.remove_prefix(slash + 1);
    const size_t so = file_name.find(".so.");
    if (so == std::string_view::npos) return std::nullopt;
    return dotted(file_name.substr(so + 4));
}

std::optional<Version> of_glibc_symbol_version(std::string_view name) {
    constexpr std::string_view kPrefix = "GLIBC_";
    if (name.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
    return dotted(name.substr(kPrefix.size()));
}

std::string to_string(const Version& v) {
    std::string out;
    for (size_t i = 0; i < v.size(); ++i) out += (i ? "." : "") + std::to_string(v[i]);
    return out;
}

std::optional<Level> parse_level(std::string_view word) {
    if (word == "major") return Level::Major;
    if (word == "full") return Level::Full;
    if (word == "strict") return Level::Strict;
    return std::nullopt;
}

const char* to_string(Level l) {
    switch (l) {
        case Level::Major:
            return "major";
        case Level::Full:
            return "full";
        case Level::Strict:
            return "strict";
    }
    return "?";
}

bool older(const Version& a, const Version& b) {
    for (size_t i = 0; i < std::max(a.size(), b.size()); ++i)
        if (part(a, i) != part(b, i)) return part(a, i) < part(b, i);
    return false;
}

Decision compare(const Version& host, const Version& image, Level level) {
    const std::string both = "host " + to_string(host) + ", image " + to_string(image);
    if (host.empty() || image.empty())
        return {Verdict::Incompatible, both + ": no version number to compare"};
    if (part(host, 0) != part(image, 0))
        return {Verdict::Incompatible, both + ": major versions differ (" + to_string(level) + ")"};
    switch (level) {
        case Level::Major:
            return {Verdict::Compatible, both + ": same major version (major)"};
        case Level::Strict:
            if (part(host, 1) != part(image, 1))
                return {Verdict::Incompatible, both + ": minor versions differ (strict)"};
            return {Verdict::Compatible, both + ": same major and minor version (strict)"};
        case Level::Full:
            if (part(host, 1) < part(image, 1))
                return {Verdict::CompatibleOlderHost,
                        both + ": the host's minor version is older than the image's (full)"};
            return {Verdict::Compatible, both + ": same major, host minor not older (full)"};
    }
    return {Verdict::Incompatible, both};
}

std::optional<Version> glibc_needed(const elf::ElfInfo& lib) {
    std::optional<Version> best;
    for (const auto& need : lib.version_needs)
        for (const auto& name : need.versions)
            if (auto v = of_glibc_symbol_version(name); v && (!best || older(*best, *v))) best = v;
    return best;
}

std::optional<Version> glibc_defined(const elf::ElfInfo& libc) {
    std::optional<Version> best;
    for (const auto& name : libc.version_defs)
        if (auto v = of_glibc_symbol_version(name); v && (!best || older(*best, *v))) best = v;
    return best;
}

}  // namespace socker::launcher::abi
