#include "topology/options.hpp"

#include <charconv>

#include "base/error.hpp"
#include "base/spellcheck.hpp"

namespace socker::topology {

namespace {

struct Name {
    BindKind kind;
    const char* name;
};
const Name kKindNames[] = {{BindKind::None, "none"}, {BindKind::HwThread, "hwthread"},
                           {BindKind::Core, "core"}, {BindKind::L3, "l3"},
                           {BindKind::Numa, "numa"}, {BindKind::Socket, "socket"}};

}  // namespace

const char* to_string(BindKind k) {
    for (const auto& n : kKindNames)
        if (n.kind == k) return n.name;
    return "none";
}
const char* to_string(Distribution d) { return d == Distribution::Block ? "block" : "cyclic"; }
const char* to_string(MemBind m) {
    switch (m) {
        case MemBind::None:
            return "none";
        case MemBind::Local:
            return "local";
        case MemBind::Interleave:
            return "interleave";
    }
    return "none";
}

std::optional<BindKind> parse_bind_kind(std::string_view s) {
    for (const auto& n : kKindNames)
        if (s == n.name) return n.kind;
    return std::nullopt;
}
std::optional<Distribution> parse_distribution(std::string_view s) {
    if (s == "block") return Distribution::Block;
    if (s == "cyclic") return Distribution::Cyclic;
    return std::nullopt;
}
std::optional<MemBind> parse_membind(std::string_view s) {
    if (s == "none") return MemBind::None;
    if (s == "local") return MemBind::Local;
    if (s == "interleave") return MemBind::Interleave;
    return std::nullopt;
}

const std::vector<std::string>& bind_kind_names() {
    static const std::vector<std::string> v = [] {
        std::vector<std::string> names;
        for (const auto& n : kKindNames) names.emplace_back(n.name);
        return names;
    }();
    return v;
}
const std::vector<std::string>& distribution_names() {
    static const std::vector<std::string> v = {"block", "cyclic"};
    return v;
}
const std::vector<std::string>& membind_names() {
    static const std::vector<std::string> v = {"none", "local", "interleave"};
    return v;
}

std::optional<int> parse_cpus_per_rank(std::string_view v) {
    int out = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
    if (v.empty() || ec != std::errc() || p != v.data() + v.size() || out < 1 || out > kMaxCpusPerRank)
        return std::nullopt;
    return out;
}

std::string describe(const PlacementPolicy& p) {
    return std::string("bind=") + to_string(p.bind) + " distribution=" + to_string(p.distribution) +
           " membind=" + to_string(p.membind) +
           " cpus_per_rank=" + (p.cpus_per_rank ? std::to_string(*p.cpus_per_rank) : "even split");
}

bool set_node_default(NodeDefaults& d, const std::string& key, const std::string& value,
                      const std::string& where) {
    auto bad = [&](const std::string& expected, const std::vector<std::string>& names) {
        std::string detail = "[node:" + d.pattern + "] " + key + " = " + value + ": expected " + expected;
        if (!names.empty())
            if (auto s = spellcheck(value, names)) detail += ", did you mean '" + *s + "'?";
        throw Error(Exit::Config, "admin config", where, 0, detail);
    };
    auto choices = [](const std::vector<std::string>& names) {
        std::string s;
        for (const auto& n : names) s += (s.empty() ? "" : "|") + n;
        return s;
    };
    if (key == "bind_to" || key == "bind") {
        d.bind = parse_bind_kind(value);
        if (!d.bind) bad(choices(bind_kind_names()), bind_kind_names());
    } else if (key == "distribution") {
        d.distribution = parse_distribution(value);
        if (!d.distribution) bad(choices(distribution_names()), distribution_names());
    } else if (key == "membind") {
        d.membind = parse_membind(value);
        if (!d.membind) bad(choices(membind_names()), membind_names());
    } else if (key == "cpus_per_rank") {
        d.cpus_per_rank = parse_cpus_per_rank(value);
        if (!d.cpus_per_rank) bad("a whole number of CPUs from 1 to " + std::to_string(kMaxCpusPerRank), {});
    } else {
        return false;
    }
    return true;
}

}  // namespace socker::topology
