// The placement vocabulary, owned here: the kinds, their spellings, what a user asks, what an
// admin's [node:GLOB] section sets, and the binding a launch applies. The command line, the
// environment and the admin config all parse through these functions, so a kind added here is
// accepted everywhere.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace socker::topology {

enum class BindKind { None, HwThread, Core, L3, Numa, Socket };
enum class Distribution { Block, Cyclic };
enum class MemBind { None, Local, Interleave };

const char* to_string(BindKind k);
const char* to_string(Distribution d);
const char* to_string(MemBind m);
std::optional<BindKind> parse_bind_kind(std::string_view s);
std::optional<Distribution> parse_distribution(std::string_view s);
std::optional<MemBind> parse_membind(std::string_view s);
// The accepted spellings, for messages and "did you mean".
const std::vector<std::string>& bind_kind_names();
const std::vector<std::string>& distribution_names();
const std::vector<std::string>& membind_names();

inline constexpr int kMaxCpusPerRank = 65536;
// A whole number of CPUs from 1 to kMaxCpusPerRank.
std::optional<int> parse_cpus_per_rank(std::string_view s);

struct PlacementPolicy {
    BindKind bind = BindKind::None;
    Distribution distribution = Distribution::Block;
    MemBind membind = MemBind::None;
    std::optional<int> cpus_per_rank;  // nullopt: an even split of the allowed CPUs
};
// "bind=core distribution=block membind=none cpus_per_rank=even split"
std::string describe(const PlacementPolicy& p);

// What the user asked on the command line: each setting optional (precedence.hpp).
struct PlacementRequest {
    std::optional<BindKind> bind;
    std::optional<Distribution> distribution;
    std::optional<MemBind> membind;
    std::optional<int> cpus_per_rank;
    bool report = false;  // --report-bindings
};

// The placement defaults of one admin [node:GLOB] section, parsed when the config is loaded.
struct NodeDefaults {
    std::string pattern;  // fnmatch glob on the node name
    std::string origin;   // "file:line" of the section header, for messages
    std::optional<BindKind> bind;
    std::optional<Distribution> distribution;
    std::optional<MemBind> membind;
    std::optional<int> cpus_per_rank;
};
// Sets one placement key of a section (bind_to, or its old spelling bind; distribution;
// membind; cpus_per_rank). Returns false when `key` is not a placement key; throws
// Error(Exit::Config) naming `where` ("file:line") and offering a spelling for a bad value.
bool set_node_default(NodeDefaults& d, const std::string& key, const std::string& value,
                      const std::string& where);

// The binding a launch applies before exec: CPUs (a list string of OS indexes, "0-3,8"), and
// the memory policy over NUMA nodes (mems "" when membind is none).
struct CpuBinding {
    std::string cpus;
    std::string mems;
    MemBind membind = MemBind::None;
};

}  // namespace socker::topology
