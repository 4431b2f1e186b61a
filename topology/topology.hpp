// topology/: placement of each local rank on CPUs and NUMA memory (hwloc). See issue 5 and
// docs/binding.md.
//
// This header holds the two value types the rest of topology/ works with: Bitmap (a set of OS
// indexes of CPUs or NUMA nodes) and Topology (an hwloc topology: this machine, an hwloc XML
// document, or an hwloc synthetic description, optionally restricted to an allowed CPU set).
// hwloc's own types stay out of this header (forward declarations only), so that including it
// does not pull hwloc.h into the rest of the launcher.
#pragma once

#include <string>
#include <vector>

struct hwloc_bitmap_s;
struct hwloc_topology;

namespace socker::topology {

// A set of OS (physical) indexes, as the kernel, taskset and /proc/self/status number them.
class Bitmap {
public:
    Bitmap();  // empty
    Bitmap(const Bitmap& other);
    Bitmap(Bitmap&& other) noexcept;
    Bitmap& operator=(const Bitmap& other);
    Bitmap& operator=(Bitmap&& other) noexcept;
    ~Bitmap();

    // Takes ownership of an hwloc bitmap (for topology/ internals).
    static Bitmap adopt(hwloc_bitmap_s* raw);
    // Copies an hwloc bitmap (for topology/ internals).
    static Bitmap copy_of(const hwloc_bitmap_s* raw);

    // Parses a Linux list string ("0-3,8,10-11"). Strict: digits, '-' and ',' only, ranges
    // ascending, indexes below 65536. `what` names the input in the one-line error
    // (Error(Exit::Usage)). The empty string is the empty set.
    static Bitmap parse_list(const std::string& text, const std::string& what);

    std::string list() const;  // "0-3,8"; "" for the empty set
    std::vector<unsigned> indexes() const;
    unsigned weight() const;
    bool empty() const;
    bool contains(unsigned index) const;
    bool includes(const Bitmap& sub) const;  // sub ⊆ *this
    bool intersects(const Bitmap& other) const;
    void set(unsigned index);
    Bitmap operator&(const Bitmap& other) const;
    Bitmap operator|(const Bitmap& other) const;
    Bitmap operator-(const Bitmap& other) const;  // set difference
    bool operator==(const Bitmap& other) const;

    hwloc_bitmap_s* raw() { return b_; }
    const hwloc_bitmap_s* raw() const { return b_; }

private:
    explicit Bitmap(hwloc_bitmap_s* b) : b_(b) {}
    hwloc_bitmap_s* b_;
};

class Topology {
public:
    // This machine, as hwloc sees it: restricted to what this process's cgroup allows (hwloc's
    // default), which under Slurm is the step's cpuset. hwloc reads /sys and /proc here; main()
    // has already cleared the environment, so no HWLOC_* variable can substitute a topology.
    static Topology this_machine();
    // An hwloc XML document (lstopo --of xml). `origin` names it in messages.
    static Topology from_xml_text(const std::string& xml, const std::string& origin);
    // Reads an hwloc XML file with the caller's own permissions (tests, tools).
    static Topology from_xml_file(const std::string& path);
    // An hwloc synthetic description, e.g. "pack:2 numa:4 l3:2 core:8 pu:2".
    static Topology from_synthetic(const std::string& description);

    // How socker-mpi plan reads its --topology argument: a path ending in ".xml" or holding a '/'
    // is an XML file; otherwise a string holding ':' is a synthetic description; anything else
    // is an XML file name.
    enum class SpecKind { ThisMachine, XmlFile, Synthetic };
    static SpecKind classify(const std::string& spec);

    Topology(Topology&& other) noexcept;
    Topology& operator=(Topology&& other) noexcept;
    Topology(const Topology&) = delete;
    Topology& operator=(const Topology&) = delete;
    ~Topology();

    // Keeps only the CPUs of `cpus` (hwloc_topology_restrict). Error(Exit::Usage) when the set is
    // empty or names CPUs the topology does not have.
    void restrict_to(const Bitmap& cpus, const std::string& what);

    Bitmap cpus() const;  // every PU (OS indexes)
    // The NUMA nodes local to these CPUs: for each CPU, the node(s) of smallest locality that
    // cover it (a machine-wide CXL/far-memory node is nobody's local node when a closer one
    // exists). OS indexes.
    Bitmap numa_of(const Bitmap& cpus) const;
    const std::string& origin() const { return origin_; }
    // "2 packages, 8 NUMA nodes, 16 L3 caches, 128 cores, 256 PUs"
    std::string summary() const;

    hwloc_topology* raw() const { return t_; }

private:
    Topology(hwloc_topology* t, std::string origin) : t_(t), origin_(std::move(origin)) {}
    hwloc_topology* t_;
    std::string origin_;
};

}  // namespace socker::topology
