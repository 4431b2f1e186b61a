#include "topology/binding_report.hpp"

#include <hwloc.h>

#include <algorithm>
#include <array>

#include "base/error.hpp"
#include "topology/precedence.hpp"

namespace socker::topology {

namespace {

void draw_pus(hwloc_topology_t t, hwloc_const_cpuset_t within, const Bitmap& cpus, std::string& out) {
    hwloc_obj_t pu = nullptr;
    while ((pu = hwloc_get_next_obj_inside_cpuset_by_type(t, within, HWLOC_OBJ_PU, pu)) != nullptr)
        out += cpus.contains(pu->os_index) ? 'B' : '.';
}

std::string draw_group(hwloc_topology_t t, hwloc_const_cpuset_t within, const Bitmap& cpus) {
    std::string out = "[";
    bool first = true;
    if (hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_CORE) > 0) {
        hwloc_obj_t core = nullptr;
        while ((core = hwloc_get_next_obj_inside_cpuset_by_type(t, within, HWLOC_OBJ_CORE, core)) !=
               nullptr) {
            if (!first) out += '/';
            first = false;
            draw_pus(t, core->cpuset, cpus, out);
        }
    } else {
        hwloc_obj_t pu = nullptr;
        while ((pu = hwloc_get_next_obj_inside_cpuset_by_type(t, within, HWLOC_OBJ_PU, pu)) != nullptr) {
            if (!first) out += '/';
            first = false;
            out += cpus.contains(pu->os_index) ? 'B' : '.';
        }
    }
    return out + "]";
}

std::string pad(const std::string& s, size_t width) {
    return s.size() >= width ? s : s + std::string(width - s.size(), ' ');
}

}  // namespace

std::string picture(const Topology& topo, const Bitmap& cpus) {
    hwloc_topology_t t = topo.raw();
    std::string out;
    hwloc_obj_t pkg = nullptr;
    bool any = false;
    while ((pkg = hwloc_get_next_obj_by_type(t, HWLOC_OBJ_PACKAGE, pkg)) != nullptr) {
        if (!pkg->cpuset || hwloc_bitmap_iszero(pkg->cpuset)) continue;
        out += draw_group(t, pkg->cpuset, cpus);
        any = true;
    }
    if (!any) out = draw_group(t, hwloc_topology_get_topology_cpuset(t), cpus);
    return out;
}

std::string report_line(const Topology& topo, long rank, long local_rank, long local_size,
                        const std::string& node, const Placement& placement, const PlacementPolicy& policy) {
    std::string line = "rank " + std::to_string(rank) + " (local " + std::to_string(local_rank) + " of " +
                       std::to_string(local_size) + ") on " + (node.empty() ? "?" : node) + ": ";
    const std::string numa = placement.numa.empty() ? "-" : placement.numa.list();
    if (policy.bind == BindKind::None)
        line += "not bound by socker-mpi, inherited cpus " + placement.cpus.list() + " numa " + numa;
    else
        line += "cpus " + placement.cpus.list() + " numa " + numa;
    line += std::string(" membind ") + to_string(policy.membind) + " " + picture(topo, placement.cpus);
    return line;
}

std::string placements_json(const NodePlacement& plan) {
    // Written by hand for the layout, one object a line. The values are CPU/node lists
    // (digits, '-' and ','): nothing to escape.
    std::string out = "[";
    for (size_t r = 0; r < plan.ranks.size(); ++r)
        out += std::string(r == 0 ? "\n" : ",\n") + "  {\"local_rank\": " + std::to_string(r) +
               ", \"cpus\": \"" + plan.ranks[r].cpus.list() + "\", \"numa\": \"" + plan.ranks[r].numa.list() +
               "\"}";
    return out + (plan.ranks.empty() ? "]\n" : "\n]\n");
}

std::string render_placements(const PlanOptions& request, Topology topo, const EnvMap& env,
                              const std::vector<NodeDefaults>& sections, const std::string& node,
                              const std::string& admin_note) {
    if (request.allowed) topo.restrict_to(Bitmap::parse_list(*request.allowed, "--cpuset"), "--cpuset");
    const ResolvedPlacement rp = resolve_placement(request.placement, env, sections, node);
    const NodePlacement plan = place_node(topo, request.ranks, rp.policy);
    if (request.format == "json") return placements_json(plan);
    if (request.format != "table")
        throw Error(Exit::Usage, "--format", request.format, 0, "expected table or json");

    std::string out;
    auto row = [&](const std::string& k, const std::string& v) { out += pad(k, 15) + v + "\n"; };
    row("node", node.empty() ? "(none: no [node:GLOB] section applies)" : node);
    row("topology", topo.origin() + ": " + topo.summary());
    row("allowed cpus", topo.cpus().list());
    row("ranks", std::to_string(request.ranks));
    const std::string cpr = rp.policy.cpus_per_rank ? std::to_string(*rp.policy.cpus_per_rank) : "even split";
    const std::pair<const char*, std::string> settings[] = {
        {"bind", to_string(rp.policy.bind)},
        {"distribution", to_string(rp.policy.distribution)},
        {"membind", to_string(rp.policy.membind)},
        {"cpus_per_rank", cpr}};
    for (const auto& [key, value] : settings) row(key, pad(value, 12) + "from " + rp.source.at(key));
    row("precedence",
        "command line > SOCKER_MPI_* (and SLURM_CPUS_PER_TASK) > admin config [node:GLOB] > default");
    if (!admin_note.empty()) row("admin config", admin_note);
    out += "\n";

    std::vector<std::array<std::string, 4>> rows;
    rows.push_back({"RANK", "CPUS", "NUMA", "MAP"});
    for (size_t r = 0; r < plan.ranks.size(); ++r) {
        const Placement& p = plan.ranks[r];
        rows.push_back(
            {std::to_string(r), p.cpus.list(), p.numa.empty() ? "-" : p.numa.list(), picture(topo, p.cpus)});
    }
    std::array<size_t, 3> width{};
    for (const auto& r : rows)
        for (size_t c = 0; c < 3; ++c) width[c] = std::max(width[c], r[c].size());
    for (const auto& r : rows)
        out += pad(r[0], width[0] + 2) + pad(r[1], width[1] + 2) + pad(r[2], width[2] + 2) + r[3] + "\n";
    std::vector<std::string> notes = plan.notes;
    if (rp.policy.bind == BindKind::None)
        notes.insert(
            notes.begin(),
            "bind=none: every rank keeps the binding it inherits (Slurm's); --bind-to sets a policy");
    if (!notes.empty()) out += "\n";
    for (const auto& n : notes) out += "note: " + n + "\n";
    return out;
}

}  // namespace socker::topology
