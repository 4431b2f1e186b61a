#include "topology/placement.hpp"

#include <hwloc.h>

#include <array>
#include <map>
#include <variant>

#include "base/error.hpp"

namespace socker::topology {

// ------------------------------------------------------------------------ kinds

namespace {

// The hwloc object each kind places ranks on (the names are options.cpp's).
struct KindInfo {
    BindKind kind;
    hwloc_obj_type_t type;
    const char* unit;   // one
    const char* units;  // many
};

const KindInfo kKinds[] = {
    {BindKind::None, HWLOC_OBJ_MACHINE, "machine", "machines"},
    {BindKind::HwThread, HWLOC_OBJ_PU, "hardware thread", "hardware threads"},
    {BindKind::Core, HWLOC_OBJ_CORE, "core", "cores"},
    {BindKind::L3, HWLOC_OBJ_L3CACHE, "L3 cache", "L3 caches"},
    {BindKind::Numa, HWLOC_OBJ_NUMANODE, "NUMA node", "NUMA nodes"},
    {BindKind::Socket, HWLOC_OBJ_PACKAGE, "package", "packages"},
};

const KindInfo& info(BindKind k) {
    for (const auto& i : kKinds)
        if (i.kind == k) return i;
    return kKinds[0];
}

}  // namespace

// ---------------------------------------------------------------------------- the planner

namespace {

// The levels a unit is located by, coarsest first. Keys order units into a tree for cyclic
// distribution and tell whether a group of units crosses a boundary.
constexpr std::array<hwloc_obj_type_t, 4> kLevels = {HWLOC_OBJ_PACKAGE, HWLOC_OBJ_NUMANODE, HWLOC_OBJ_L3CACHE,
                                                     HWLOC_OBJ_CORE};
const char* const kLevelNames[] = {"packages", "NUMA nodes", "L3 caches", "cores"};
using Key = std::array<int, 4>;  // logical index of the enclosing object per level, -1: none

struct Unit {
    Bitmap cpus;  // the allowed part of the object
    Key key{};
    unsigned logical = 0;
};

struct Slot {
    std::vector<size_t> units;  // indexes into the unit list
    Bitmap cpus;
};

struct FitFailure {
    std::string message;
};

std::vector<hwloc_obj_t> objects(hwloc_topology_t t, hwloc_obj_type_t type) {
    std::vector<hwloc_obj_t> out;
    int n = hwloc_get_nbobjs_by_type(t, type);
    out.reserve(n > 0 ? static_cast<size_t>(n) : 0);
    for (int i = 0; i < n; ++i) out.push_back(hwloc_get_obj_by_type(t, type, static_cast<unsigned>(i)));
    return out;
}

// The smallest object of a level holding all of `cpus` (for NUMA nodes, the local one rather
// than a machine-wide memory node), by logical index; -1 when none does.
int enclosing(const std::vector<hwloc_obj_t>& objs, const Bitmap& cpus) {
    int best = -1, best_weight = 0;
    for (hwloc_obj_t o : objs) {
        if (!o->cpuset || hwloc_bitmap_iszero(o->cpuset) || !hwloc_bitmap_isincluded(cpus.raw(), o->cpuset))
            continue;
        int w = hwloc_bitmap_weight(o->cpuset);
        if (best < 0 || w < best_weight) {
            best = static_cast<int>(o->logical_index);
            best_weight = w;
        }
    }
    return best;
}

std::string policy_name(const PlacementPolicy& p) {
    std::string s = std::string("bind=") + to_string(p.bind);
    if (p.cpus_per_rank) s += " cpus_per_rank=" + std::to_string(*p.cpus_per_rank);
    return s;
}

std::string plural(size_t n, const char* one, const char* many) {
    return std::to_string(n) + " " + (n == 1 ? one : many);
}

// The units of the policy's type that hold allowed CPUs, in hwloc's logical order.
std::vector<Unit> collect_units(const Topology& topo, const Bitmap& allowed, const PlacementPolicy& p,
                                std::vector<std::string>& notes) {
    hwloc_topology_t t = topo.raw();
    const KindInfo& ki = info(p.bind);
    std::vector<hwloc_obj_t> objs = objects(t, ki.type);
    if (objs.empty())
        throw Error(Exit::Usage, policy_name(p), "", 0,
                    std::string("the topology (") + topo.origin() + ") has no " + ki.units);
    std::array<std::vector<hwloc_obj_t>, 4> levels;
    for (size_t l = 0; l < kLevels.size(); ++l) levels[l] = objects(t, kLevels[l]);

    std::vector<Unit> units;
    for (hwloc_obj_t o : objs) {
        Bitmap c = Bitmap::copy_of(o->cpuset) & allowed;
        if (c.empty()) continue;
        if (p.bind == BindKind::Numa) {
            // A node that is no CPU's local memory (a CXL expander hwloc hangs at the machine
            // level) is not a CPU domain.
            if (!topo.numa_of(c).contains(o->os_index)) {
                notes.push_back("NUMA node P#" + std::to_string(o->os_index) +
                                " is no CPU's local memory: not used as a domain");
                continue;
            }
            // Memory-side twins (HBM next to DRAM) have the same CPUs: one domain, not two.
            bool twin = false;
            for (const Unit& u : units) twin = twin || u.cpus == c;
            if (twin) {
                notes.push_back("NUMA node P#" + std::to_string(o->os_index) +
                                " has the same CPUs as an earlier node: counted once as a domain");
                continue;
            }
        }
        Unit u;
        u.cpus = c;
        u.logical = o->logical_index;
        // The smallest package, L3 and core holding the unit's CPUs are the lowest object
        // covering them or its ancestors (objects of the CPU tree nest); NUMA nodes hang beside
        // that tree and are few, so they are searched by CPU set.
        hwloc_obj_t covering = hwloc_get_obj_covering_cpuset(t, c.raw());
        for (size_t l = 0; l < kLevels.size(); ++l) {
            if (kLevels[l] == HWLOC_OBJ_NUMANODE) {
                u.key[l] = enclosing(levels[l], c);
                continue;
            }
            hwloc_obj_t a = !covering ? nullptr
                            : covering->type == kLevels[l]
                                ? covering
                                : hwloc_get_ancestor_obj_by_type(t, kLevels[l], covering);
            u.key[l] = a ? static_cast<int>(a->logical_index) : -1;
        }
        units.push_back(std::move(u));
    }
    if (units.empty())
        throw Error(Exit::Usage, policy_name(p), "", 0,
                    std::string("no ") + ki.unit + " holds any of the allowed CPUs " + allowed.list());
    return units;
}

// Round-robin over the tree of keys: packages, then NUMA nodes, L3 caches and cores inside.
std::vector<size_t> cyclic_order(const std::vector<Key>& keys, const std::vector<size_t>& idx, size_t depth) {
    if (depth == kLevels.size() || idx.size() <= 1) return idx;
    std::vector<std::vector<size_t>> groups;
    std::map<int, size_t> group_of;
    for (size_t i : idx) {
        auto [it, fresh] = group_of.try_emplace(keys[i][depth], groups.size());
        if (fresh) groups.emplace_back();
        groups[it->second].push_back(i);
    }
    size_t longest = 0;
    for (auto& g : groups) {
        g = cyclic_order(keys, g, depth + 1);
        longest = std::max(longest, g.size());
    }
    std::vector<size_t> out;
    out.reserve(idx.size());
    for (size_t round = 0; round < longest; ++round)
        for (const auto& g : groups)
            if (round < g.size()) out.push_back(g[round]);
    return out;
}

// Slots of whole units for an exclusive policy, not crossing the boundaries of the first
// `prefix` levels (package, NUMA node, L3).
std::vector<Slot> form_slots(const std::vector<Unit>& units, size_t prefix, const PlacementPolicy& p,
                             size_t per_rank) {
    std::vector<Slot> slots;
    Slot cur;
    auto same_group = [&](const Unit& a, const Unit& b) {
        for (size_t l = 0; l < prefix; ++l)
            if (a.key[l] != b.key[l]) return false;
        return true;
    };
    for (size_t i = 0; i < units.size(); ++i) {
        if (!cur.units.empty() && !same_group(units[cur.units.front()], units[i])) cur = Slot{};
        cur.units.push_back(i);
        cur.cpus = cur.cpus | units[i].cpus;
        bool full = p.cpus_per_rank ? cur.cpus.weight() >= static_cast<unsigned>(*p.cpus_per_rank)
                                    : cur.units.size() == per_rank;
        if (full) {
            slots.push_back(std::move(cur));
            cur = Slot{};
        }
    }
    return slots;
}

Bitmap logical_set(const std::vector<Unit>& units, const std::vector<size_t>& which) {
    Bitmap b;
    for (size_t i : which) b.set(units[i].logical);
    return b;
}

std::variant<NodePlacement, FitFailure> plan_exclusive(const Topology& topo, const Bitmap& allowed, size_t n,
                                                       const PlacementPolicy& p, std::vector<Unit> units,
                                                       NodePlacement plan) {
    const KindInfo& ki = info(p.bind);
    const std::string name = policy_name(p);
    size_t per_rank = 0;
    if (p.cpus_per_rank) {
        const auto want = static_cast<unsigned long>(*p.cpus_per_rank) * n;
        if (want > allowed.weight())
            return FitFailure{name + ": " + std::to_string(n) + " ranks of " +
                              std::to_string(*p.cpus_per_rank) + " CPUs need " + std::to_string(want) +
                              " CPUs but only " + std::to_string(allowed.weight()) + " are allowed (" +
                              allowed.list() + ")"};
    } else {
        per_rank = units.size() / n;
        if (per_rank == 0)
            return FitFailure{name + ": " + std::to_string(n) + " ranks but only " +
                              plural(units.size(), ki.unit, ki.units) + " in the allowed CPUs " +
                              allowed.list() +
                              (p.bind == BindKind::Core ? " (use bind=hwthread, fewer ranks or more CPUs)"
                                                        : " (use fewer ranks or more CPUs)")};
    }
    // Prefer slots inside one L3 (and NUMA node and package); relax only when too few fit.
    std::vector<Slot> slots;
    size_t prefix = 3;
    for (;; --prefix) {
        slots = form_slots(units, prefix, p, per_rank);
        if (slots.size() >= n || prefix == 0) break;
    }
    if (slots.size() < n)  // only with cpus_per_rank: an even split always fits at prefix 0
        return FitFailure{name + ": " + std::to_string(n) + " ranks need " + std::to_string(n) +
                          " groups of whole " + ki.units + " holding " +
                          (p.cpus_per_rank ? std::to_string(*p.cpus_per_rank) : std::string("enough")) +
                          " CPUs each, but the allowed CPUs " + allowed.list() + " hold only " +
                          std::to_string(slots.size())};

    std::vector<size_t> order(slots.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    if (p.distribution == Distribution::Cyclic) {
        std::vector<Key> keys;
        keys.reserve(slots.size());
        for (const Slot& s : slots) keys.push_back(units[s.units.front()].key);
        order = cyclic_order(keys, order, 0);
    }
    Bitmap used;
    for (size_t r = 0; r < n; ++r) {
        const Slot& s = slots[order[r]];
        Placement pl{s.cpus, topo.numa_of(s.cpus), {}};
        pl.trace.push_back(name + " distribution=" + to_string(p.distribution) + ": " + ki.units + " L#" +
                           logical_set(units, s.units).list());
        // Name the boundaries this rank's CPUs cross, coarsest first.
        for (size_t l = 0; l < 3; ++l) {
            Bitmap seen;
            for (size_t u : s.units)
                if (units[u].key[l] >= 0) seen.set(static_cast<unsigned>(units[u].key[l]));
            if (seen.weight() > 1) {
                pl.trace.push_back(std::string("CPUs span ") + std::to_string(seen.weight()) + " " +
                                   kLevelNames[l]);
                break;
            }
        }
        used = used | s.cpus;
        plan.ranks.push_back(std::move(pl));
    }
    if (prefix < 3)
        plan.notes.push_back(std::string("not every rank's ") + ki.units + " fit inside one " +
                             (prefix == 2   ? "L3 cache"
                              : prefix == 1 ? "NUMA node"
                                            : "package") +
                             ": some ranks span " + kLevelNames[prefix]);
    if (Bitmap rest = allowed - used; !rest.empty())
        plan.notes.push_back("allowed CPUs " + rest.list() + " are not used by any rank");
    return plan;
}

std::variant<NodePlacement, FitFailure> plan_domains(const Topology& topo, const Bitmap& allowed, size_t n,
                                                     const PlacementPolicy& p, std::vector<Unit> units,
                                                     NodePlacement plan) {
    const KindInfo& ki = info(p.bind);
    const std::string name = policy_name(p);
    std::vector<size_t> chosen;  // the domain of each rank
    if (p.cpus_per_rank) {
        const auto per = static_cast<unsigned>(*p.cpus_per_rank);
        std::vector<size_t> slots;  // domain index, once per rank it can hold
        std::vector<Key> keys;
        for (size_t d = 0; d < units.size(); ++d)
            for (unsigned c = 0, cap = units[d].cpus.weight() / per; c < cap; ++c) {
                slots.push_back(d);
                keys.push_back(units[d].key);
            }
        if (slots.size() < n)
            return FitFailure{name + ": " + std::to_string(n) + " ranks do not fit: the " + ki.units +
                              " of the allowed CPUs " + allowed.list() + " hold " +
                              plural(slots.size(), "rank", "ranks") + " of " + std::to_string(per) + " CPUs"};
        std::vector<size_t> order(slots.size());
        for (size_t i = 0; i < order.size(); ++i) order[i] = i;
        if (p.distribution == Distribution::Cyclic) order = cyclic_order(keys, order, 0);
        for (size_t r = 0; r < n; ++r) chosen.push_back(slots[order[r]]);
    } else {
        const unsigned total = allowed.weight();
        if (n > total)
            return FitFailure{name + ": " + std::to_string(n) + " ranks but only " + std::to_string(total) +
                              " allowed CPUs (" + allowed.list() + ")"};
        if (p.distribution == Distribution::Block) {
            // Rank r starts at the (r * CPUs / ranks)-th allowed PU, in logical order.
            std::vector<size_t> domain_of_pu;  // per allowed PU in logical order
            hwloc_topology_t t = topo.raw();
            for (hwloc_obj_t pu : objects(t, HWLOC_OBJ_PU)) {
                if (!allowed.contains(pu->os_index)) continue;
                size_t d = units.size();
                for (size_t i = 0; i < units.size() && d == units.size(); ++i)
                    if (units[i].cpus.contains(pu->os_index)) d = i;
                domain_of_pu.push_back(d);
            }
            for (size_t r = 0; r < n; ++r) {
                size_t pos = r * domain_of_pu.size() / n;
                while (pos < domain_of_pu.size() && domain_of_pu[pos] == units.size()) ++pos;
                chosen.push_back(pos < domain_of_pu.size() ? domain_of_pu[pos] : units.size() - 1);
            }
        } else {
            std::vector<size_t> slots;
            std::vector<Key> keys;
            for (size_t d = 0; d < units.size(); ++d)
                for (unsigned c = 0, cap = units[d].cpus.weight(); c < cap; ++c) {
                    slots.push_back(d);
                    keys.push_back(units[d].key);
                }
            std::vector<size_t> order(slots.size());
            for (size_t i = 0; i < order.size(); ++i) order[i] = i;
            order = cyclic_order(keys, order, 0);
            for (size_t r = 0; r < n; ++r) chosen.push_back(slots[order[r]]);
        }
    }
    std::vector<size_t> sharing(units.size(), 0);
    for (size_t d : chosen) ++sharing[d];
    std::vector<std::optional<Bitmap>> numa(units.size());  // per domain, computed once
    Bitmap used;
    for (size_t d : chosen) {
        const Unit& u = units[d];
        if (!numa[d]) numa[d] = topo.numa_of(u.cpus);
        Placement pl{u.cpus, *numa[d], {}};
        std::string what = std::string(ki.unit) + " L#" + std::to_string(u.logical);
        if (p.bind == BindKind::Numa)
            what = "NUMA node P#" +
                   std::to_string(hwloc_get_obj_by_type(topo.raw(), HWLOC_OBJ_NUMANODE, u.logical)->os_index);
        std::string why = name;
        why += std::string(" distribution=") + to_string(p.distribution) + ": " + what;
        if (sharing[d] > 1) why += " (shared by " + std::to_string(sharing[d]) + " ranks)";
        pl.trace.push_back(std::move(why));
        used = used | u.cpus;
        plan.ranks.push_back(std::move(pl));
    }
    if (Bitmap rest = allowed - used; !rest.empty())
        plan.notes.push_back("allowed CPUs " + rest.list() + " are not used by any rank");
    return plan;
}

std::variant<NodePlacement, FitFailure> plan_impl(const Topology& topo, const Bitmap& allowed,
                                                  long local_size, const PlacementPolicy& p) {
    if (local_size < 1) throw Error(Exit::Usage, "plan", "", 0, "the number of ranks must be at least 1");
    if (p.cpus_per_rank && *p.cpus_per_rank < 1)
        throw Error(Exit::Usage, "cpus_per_rank", std::to_string(*p.cpus_per_rank), 0, "must be at least 1");
    const Bitmap all = topo.cpus();
    if (allowed.empty() || !all.includes(allowed))
        throw Error(Exit::Usage, "allowed CPUs", allowed.list(), 0,
                    "not a non-empty subset of the topology's CPUs " + all.list());
    const auto n = static_cast<size_t>(local_size);
    NodePlacement plan;
    if (p.bind == BindKind::None) {
        for (size_t r = 0; r < n; ++r)
            plan.ranks.push_back(
                {allowed, topo.numa_of(allowed), {"bind=none: the inherited binding is left as is"}});
        return plan;
    }
    std::vector<Unit> units = collect_units(topo, allowed, p, plan.notes);
    if (p.bind == BindKind::HwThread || p.bind == BindKind::Core)
        return plan_exclusive(topo, allowed, n, p, std::move(units), std::move(plan));
    return plan_domains(topo, allowed, n, p, std::move(units), std::move(plan));
}

}  // namespace

NodePlacement place_node(const Topology& topo, const Bitmap& allowed, long local_size,
                         const PlacementPolicy& p) {
    auto result = plan_impl(topo, allowed, local_size, p);
    if (auto* f = std::get_if<FitFailure>(&result)) throw Error(Exit::Usage, f->message, "");
    return std::get<NodePlacement>(std::move(result));
}

NodePlacement place_node(const Topology& topo, long local_size, const PlacementPolicy& p) {
    return place_node(topo, topo.cpus(), local_size, p);
}

Placement place_rank(const Topology& topo, const Bitmap& inherited, long local_rank, long local_size,
                     const PlacementPolicy& p) {
    if (local_size < 1 || local_rank < 0 || local_rank >= local_size)
        throw Error(Exit::Usage, "local rank", std::to_string(local_rank), 0,
                    "not in 0.." + std::to_string(local_size - 1));
    const Bitmap all = topo.cpus();
    const Bitmap mine = inherited & all;
    if (mine.empty())
        throw Error(Exit::Usage, "inherited CPU binding", inherited.list(), 0,
                    "none of these CPUs is in the topology (" + all.list() + ")");
    const auto r = static_cast<size_t>(local_rank);
    auto kept = [&](std::string why) { return Placement{mine, topo.numa_of(mine), {std::move(why)}}; };
    if (p.bind == BindKind::None)
        return kept("bind=none: the inherited binding (cpus " + mine.list() + ") is left as is");

    if (mine == all) {
        NodePlacement plan = place_node(topo, all, local_size, p);
        Placement out = std::move(plan.ranks[r]);
        for (auto& n : plan.notes) out.trace.push_back(std::move(n));
        return out;
    }

    // Bound already (Slurm's task/affinity, mpirun --bind-to). The rank's entry in the node-wide
    // plan is taken when it lies inside the inherited set (no two ranks then share what the
    // policy makes exclusive); otherwise the inherited set is kept, never widened.
    const std::string name = policy_name(p);
    const std::string inh = "the inherited binding (cpus " + mine.list() + ")";
    auto node = plan_impl(topo, all, local_size, p);
    std::string node_says;
    if (auto* plan = std::get_if<NodePlacement>(&node)) {
        Placement out = std::move(plan->ranks[r]);
        if (out.cpus == mine) return kept(inh + " is what " + name + " gives this rank: kept");
        if (mine.includes(out.cpus)) {
            out.trace.push_back("inside " + inh);
            return out;
        }
        node_says = "the node-wide plan puts local rank " + std::to_string(r) + " on cpus " +
                    out.cpus.list() + ", outside " + inh;
    } else {
        node_says = std::get<FitFailure>(node).message;
    }
    auto single = plan_impl(topo, mine, 1, p);
    if (auto* f = std::get_if<FitFailure>(&single))
        return kept(inh + " is tighter than " + name + " asks: kept (" + f->message + ")");
    if (std::get<NodePlacement>(single).ranks[0].cpus == mine)
        return kept(inh + " is already as tight as " + name + " asks: kept");
    return kept(node_says + ": inherited binding kept");
}

}  // namespace socker::topology
