#include "topology/topology.hpp"

#include <hwloc.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <new>
#include <sstream>

#include "base/cpulist.hpp"
#include "base/error.hpp"

namespace socker::topology {

namespace {

hwloc_bitmap_t alloc_bitmap() {
    hwloc_bitmap_t b = hwloc_bitmap_alloc();
    if (!b) throw std::bad_alloc();
    return b;
}

void check(int rc) {
    if (rc < 0) throw std::bad_alloc();  // hwloc bitmap operations fail only on allocation
}

}  // namespace

// ---------------------------------------------------------------------------------- Bitmap

Bitmap::Bitmap() : b_(alloc_bitmap()) {}

Bitmap::Bitmap(const Bitmap& other) : b_(hwloc_bitmap_dup(other.b_)) {
    if (!b_) throw std::bad_alloc();
}

Bitmap::Bitmap(Bitmap&& other) noexcept : b_(other.b_) { other.b_ = nullptr; }

Bitmap& Bitmap::operator=(const Bitmap& other) {
    if (this != &other) {
        Bitmap copy(other);
        std::swap(b_, copy.b_);
    }
    return *this;
}

Bitmap& Bitmap::operator=(Bitmap&& other) noexcept {
    std::swap(b_, other.b_);
    return *this;
}

Bitmap::~Bitmap() { hwloc_bitmap_free(b_); }

Bitmap Bitmap::adopt(hwloc_bitmap_s* raw) {
    if (!raw) throw std::bad_alloc();
    return Bitmap(raw);
}

Bitmap Bitmap::copy_of(const hwloc_bitmap_s* raw) {
    Bitmap b;
    if (raw) check(hwloc_bitmap_copy(b.b_, raw));
    return b;
}

Bitmap Bitmap::parse_list(const std::string& text, const std::string& what) {
    Bitmap out;
    for (unsigned i : parse_cpu_list(text, what)) check(hwloc_bitmap_set(out.b_, i));
    return out;
}

std::string Bitmap::list() const {
    if (hwloc_bitmap_weight(b_) < 0) throw Error(Exit::Internal, "cpu list", "", 0, "infinite set");
    char* s = nullptr;
    if (hwloc_bitmap_list_asprintf(&s, b_) < 0 || !s) throw std::bad_alloc();
    std::string out(s);
    std::free(s);
    return out;
}

std::vector<unsigned> Bitmap::indexes() const {
    std::vector<unsigned> out;
    if (hwloc_bitmap_weight(b_) < 0) return out;
    for (int i = hwloc_bitmap_first(b_); i >= 0; i = hwloc_bitmap_next(b_, i))
        out.push_back(static_cast<unsigned>(i));
    return out;
}

unsigned Bitmap::weight() const {
    int w = hwloc_bitmap_weight(b_);
    return w < 0 ? 0 : static_cast<unsigned>(w);
}

bool Bitmap::empty() const { return hwloc_bitmap_iszero(b_) != 0; }
bool Bitmap::contains(unsigned index) const { return hwloc_bitmap_isset(b_, index) != 0; }
bool Bitmap::includes(const Bitmap& sub) const { return hwloc_bitmap_isincluded(sub.b_, b_) != 0; }
bool Bitmap::intersects(const Bitmap& other) const { return hwloc_bitmap_intersects(b_, other.b_) != 0; }
void Bitmap::set(unsigned index) { check(hwloc_bitmap_set(b_, index)); }

Bitmap Bitmap::operator&(const Bitmap& other) const {
    Bitmap r;
    check(hwloc_bitmap_and(r.b_, b_, other.b_));
    return r;
}

Bitmap Bitmap::operator|(const Bitmap& other) const {
    Bitmap r;
    check(hwloc_bitmap_or(r.b_, b_, other.b_));
    return r;
}

Bitmap Bitmap::operator-(const Bitmap& other) const {
    Bitmap r;
    check(hwloc_bitmap_andnot(r.b_, b_, other.b_));
    return r;
}

bool Bitmap::operator==(const Bitmap& other) const { return hwloc_bitmap_isequal(b_, other.b_) != 0; }

// -------------------------------------------------------------------------------- Topology

namespace {

hwloc_topology_t new_topology() {
    hwloc_topology_t t = nullptr;
    if (hwloc_topology_init(&t) < 0) throw Error(Exit::Internal, "hwloc_topology_init", "", errno);
    // Caches, cores and packages are all we look at; I/O devices only cost time.
    hwloc_topology_set_io_types_filter(t, HWLOC_TYPE_FILTER_KEEP_NONE);
    return t;
}

struct Guard {
    hwloc_topology_t t;
    ~Guard() {
        if (t) hwloc_topology_destroy(t);
    }
    hwloc_topology_t release() {
        hwloc_topology_t r = t;
        t = nullptr;
        return r;
    }
};

// Larger than any node socker-mpi plans for; keeps a mistyped synthetic description
// ("core:100000") from costing minutes.
constexpr int kMaxPus = 65536;

void check_size(hwloc_topology_t t, const std::string& origin) {
    if (hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_PU) > kMaxPus)
        throw Error(Exit::Usage, "topology", origin, 0,
                    "more than " + std::to_string(kMaxPus) + " PUs: not a node socker-mpi can plan for");
}

// The PU count a synthetic description asks for (the product of its level counts), computed
// before hwloc builds it: hwloc takes minutes on 100k PUs. Attributes "(...)" and memory
// levels "[...]" are skipped; 0 when a level count cannot be read (hwloc then judges).
unsigned long long synthetic_pus(const std::string& d) {
    unsigned long long product = 1;
    int nesting = 0;
    std::string token;
    auto flush = [&]() -> bool {
        if (token.empty()) return true;
        std::string count = token.substr(token.rfind(':') == std::string::npos ? 0 : token.rfind(':') + 1);
        token.clear();
        if (count.empty() || count.find_first_not_of("0123456789") != std::string::npos || count.size() > 9)
            return false;
        product *= std::stoull(count);
        return product <= (1ULL << 40);
    };
    for (char ch : d + " ") {
        if (ch == '(' || ch == '[') ++nesting;
        if (nesting > 0) {
            if (ch == ')' || ch == ']') --nesting;
            continue;
        }
        if (ch == ' ' || ch == '\t') {
            if (!flush()) return 0;
        } else {
            token += ch;
        }
    }
    return product;
}

std::string one_line(std::string s) {
    for (char& c : s)
        if (static_cast<unsigned char>(c) < 0x20) c = ' ';
    if (s.size() > 120) s = s.substr(0, 117) + "...";
    return s;
}

}  // namespace

Topology Topology::this_machine() {
    Guard g{new_topology()};
    if (hwloc_topology_load(g.t) < 0)
        throw Error(Exit::Io, "load topology", "this machine", errno, "hwloc could not read /sys");
    return Topology(g.release(), "this machine");
}

Topology Topology::from_xml_text(const std::string& xml, const std::string& origin) {
    Guard g{new_topology()};
    const std::string hint = "not a valid hwloc XML topology (make one with: lstopo --of xml FILE)";
    if (xml.size() >= static_cast<size_t>(1) << 30)
        throw Error(Exit::Usage, "topology", origin, 0, "file too large");
    // The size hwloc wants includes the terminating NUL.
    if (hwloc_topology_set_xmlbuffer(g.t, xml.c_str(), static_cast<int>(xml.size() + 1)) < 0)
        throw Error(Exit::Usage, "topology", origin, 0, hint);
    if (hwloc_topology_load(g.t) < 0) throw Error(Exit::Usage, "topology", origin, 0, hint);
    if (hwloc_get_nbobjs_by_type(g.t, HWLOC_OBJ_PU) <= 0)
        throw Error(Exit::Usage, "topology", origin, 0, "no CPU (PU) in the XML topology");
    check_size(g.t, origin);
    return Topology(g.release(), "XML " + origin);
}

Topology Topology::from_xml_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(Exit::Usage, "open", path, errno);
    std::ostringstream ss;
    ss << in.rdbuf();
    return from_xml_text(ss.str(), path);
}

Topology Topology::from_synthetic(const std::string& description) {
    Guard g{new_topology()};
    const std::string shown = one_line(description);
    // hwloc_topology_set_synthetic accepts a leading/trailing blank but no control characters.
    if (synthetic_pus(description) > static_cast<unsigned long long>(kMaxPus))
        throw Error(Exit::Usage, "topology", shown, 0,
                    "more than " + std::to_string(kMaxPus) + " PUs: not a node socker-mpi can plan for");
    if (description.find_first_of("\n\r\t") != std::string::npos ||
        hwloc_topology_set_synthetic(g.t, description.c_str()) < 0)
        throw Error(Exit::Usage, "topology", shown, 0,
                    "not a valid hwloc synthetic description (levels TYPE:COUNT ending with pu, "
                    "e.g. 'pack:2 numa:2 l3:1 core:8 pu:2')");
    if (hwloc_topology_load(g.t) < 0)
        throw Error(Exit::Usage, "topology", shown, errno, "hwloc could not build it");
    check_size(g.t, shown);
    return Topology(g.release(), "synthetic '" + shown + "'");
}

Topology::SpecKind Topology::classify(const std::string& spec) {
    if (spec.empty()) return SpecKind::ThisMachine;
    auto ends_with = [&](const std::string& suffix) {
        return spec.size() >= suffix.size() &&
               spec.compare(spec.size() - suffix.size(), suffix.size(), suffix) == 0;
    };
    if (ends_with(".xml") || spec.find('/') != std::string::npos) return SpecKind::XmlFile;
    if (spec.find(':') != std::string::npos) return SpecKind::Synthetic;
    return SpecKind::XmlFile;
}

Topology::Topology(Topology&& other) noexcept : t_(other.t_), origin_(std::move(other.origin_)) {
    other.t_ = nullptr;
}

Topology& Topology::operator=(Topology&& other) noexcept {
    std::swap(t_, other.t_);
    std::swap(origin_, other.origin_);
    return *this;
}

Topology::~Topology() {
    if (t_) hwloc_topology_destroy(t_);
}

void Topology::restrict_to(const Bitmap& cpus, const std::string& what) {
    const Bitmap all = this->cpus();
    if (cpus.empty()) throw Error(Exit::Usage, what, "", 0, "empty CPU set");
    if (!all.includes(cpus))
        throw Error(Exit::Usage, what, cpus.list(), 0,
                    "CPUs " + (cpus - all).list() + " are not in the topology (it has " + all.list() + ")");
    if (cpus == all) return;
    // REMOVE_CPULESS: packages and NUMA nodes left without CPUs go too, as in the topology a
    // process inside the Slurm step sees; a memory-only node is never a rank's local memory.
    if (hwloc_topology_restrict(t_, cpus.raw(), HWLOC_RESTRICT_FLAG_REMOVE_CPULESS) < 0)
        throw Error(Exit::Internal, "hwloc_topology_restrict", cpus.list(), errno);
    origin_ += " restricted to " + cpus.list();
}

Bitmap Topology::cpus() const { return Bitmap::copy_of(hwloc_topology_get_topology_cpuset(t_)); }

Bitmap Topology::numa_of(const Bitmap& cpus) const {
    // hwloc attaches every NUMA node to the CPUs it is local to, so a CXL expander or other
    // far memory hung at the machine level "covers" every CPU (and hwloc_cpuset_to_nodeset
    // would return it). Local memory of a CPU is the node(s) with the smallest locality that
    // cover it: the package's or sub-NUMA cluster's DRAM, not the machine-wide expander.
    // Nodes with the very same locality (HBM next to DRAM on a Xeon Max) are all kept.
    std::vector<hwloc_obj_t> nodes;
    for (hwloc_obj_t n = nullptr; (n = hwloc_get_next_obj_by_type(t_, HWLOC_OBJ_NUMANODE, n)) != nullptr;)
        if (n->cpuset && !hwloc_bitmap_iszero(n->cpuset)) nodes.push_back(n);
    Bitmap out;
    for (unsigned cpu : cpus.indexes()) {
        int best = -1;
        for (hwloc_obj_t n : nodes)
            if (hwloc_bitmap_isset(n->cpuset, cpu)) {
                int w = hwloc_bitmap_weight(n->cpuset);
                if (best < 0 || w < best) best = w;
            }
        for (hwloc_obj_t n : nodes)
            if (hwloc_bitmap_isset(n->cpuset, cpu) && hwloc_bitmap_weight(n->cpuset) == best)
                out.set(n->os_index);
    }
    return out;
}

std::string Topology::summary() const {
    struct Kind {
        hwloc_obj_type_t type;
        const char* one;
        const char* many;
    };
    static const Kind kinds[] = {{HWLOC_OBJ_PACKAGE, "package", "packages"},
                                 {HWLOC_OBJ_NUMANODE, "NUMA node", "NUMA nodes"},
                                 {HWLOC_OBJ_L3CACHE, "L3 cache", "L3 caches"},
                                 {HWLOC_OBJ_CORE, "core", "cores"},
                                 {HWLOC_OBJ_PU, "PU", "PUs"}};
    std::string out;
    for (const Kind& k : kinds) {
        int n = hwloc_get_nbobjs_by_type(t_, k.type);
        if (n <= 0) continue;
        if (!out.empty()) out += ", ";
        out += std::to_string(n) + " " + (n == 1 ? k.one : k.many);
    }
    return out;
}

}  // namespace socker::topology
