#include "launcher/sharing.hpp"

#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "base/text.hpp"

namespace socker::launcher {

namespace {

struct Fnv {
    unsigned long long h = 1469598103934665603ULL;
    void add(const std::string& s) {
        for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
        h = (h ^ 0xff) * 1099511628211ULL;  // a separator no string contains: fields stay apart
    }
    void add(unsigned long long v) { add(std::to_string(v)); }
};

}  // namespace

bool in_step(const std::string& line, const Share& share) {
    const std::string& step = share.cgroup_line;
    if (line == step) return true;
    // "<step>/task_<digits>", where the ranks sit one level below the step
    if (!share.tasks_below || line.size() <= step.size() + 6 || line.compare(0, step.size(), step) != 0 ||
        line.compare(step.size(), 6, "/task_") != 0)
        return false;
    return line.find_first_not_of("0123456789", step.size() + 6) == std::string::npos;
}

std::string share_key(const ContainerSpec& s) {
    Fnv f;
    f.add(s.image_id);
    for (const auto& l : s.layers) f.add(l);
    f.add(s.layers_owned_by_user ? 1 : 0);
    f.add(s.squashfs_sha256);
    f.add(s.runtime_dir);
    if (s.share) f.add(s.share->cgroup_dir), f.add(s.share->cgroup_line);  // this very step
    f.add(s.id.uid);
    f.add(s.id.gid);
    for (gid_t g : s.id.groups) f.add(g);
    for (const auto& m : s.mounts) {
        f.add(static_cast<unsigned long long>(m.kind));
        f.add(m.source);
        f.add(m.target);
        f.add(m.data);
        f.add((m.read_only ? 1U : 0U) | (m.nosuid ? 2U : 0U) | (m.nodev ? 4U : 0U) | (m.noexec ? 8U : 0U) |
              (m.optional ? 16U : 0U) | (m.user_bind ? 32U : 0U) | (m.within_prefixes ? 64U : 0U) |
              (m.source_is_cwd ? 128U : 0U));
        f.add(static_cast<unsigned long long>(m.check));
    }
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", f.h);
    return hex;
}

std::vector<long> flock_holders(const std::string& proc_locks, unsigned major, unsigned minor,
                                unsigned long long ino) {
    std::vector<long> out;
    std::istringstream in(proc_locks);
    for (std::string line; std::getline(in, line);) {
        std::istringstream f(line);
        std::string n, kind, mode, access, pid, where;
        if (!(f >> n >> kind) || kind == "->" || kind != "FLOCK") continue;
        if (!(f >> mode >> access >> pid >> where)) continue;
        unsigned ma = 0, mi = 0;
        unsigned long long in_ = 0;
        char c1 = 0, c2 = 0;
        std::istringstream w(where);
        if (!(w >> std::hex >> ma >> c1 >> mi >> c2 >> std::dec >> in_) || c1 != ':' || c2 != ':') continue;
        if (ma != major || mi != minor || in_ != ino) continue;
        char* end = nullptr;
        const long p = std::strtol(pid.c_str(), &end, 10);
        if (end && *end == '\0' && p > 0) out.push_back(p);
    }
    return out;
}

std::optional<long> real_uid_from_status(const std::string& status) {
    std::istringstream in(status);
    for (std::string line; std::getline(in, line);) {
        if (!starts_with(line, "Uid:")) continue;
        std::istringstream f(line.substr(4));
        long uid = -1;
        if (f >> uid && uid >= 0) return uid;
        return std::nullopt;
    }
    return std::nullopt;
}

std::string why_not_joinable(const Candidate& c, const ContainerSpec& spec) {
    if (!spec.share) return "no sharing";
    if (!c.real_uid || *c.real_uid != static_cast<long>(spec.id.uid)) return "another user's";
    bool same_step = false;
    std::istringstream cg(c.cgroups);
    for (std::string line; std::getline(cg, line);) same_step = same_step || in_step(line, *spec.share);
    if (!same_step) return "not in this step";
    // The root mount of its namespace: "ID PARENT MAJ:MIN / / OPTIONS ... - overlay SOURCE SUPER".
    std::istringstream mi(c.mountinfo);
    std::string root_line;
    for (std::string line; std::getline(mi, line);) {
        std::istringstream f(line);
        std::string id, parent, dev, root, point;
        if (f >> id >> parent >> dev >> root >> point && point == "/")
            root_line = line;  // the last one shows
    }
    const auto sep = root_line.find(" - ");
    if (sep == std::string::npos) return "no root mount";
    std::istringstream head(root_line.substr(0, sep)), tail(root_line.substr(sep + 3));
    std::string id, parent, dev, root, point, options, fstype, source;
    head >> id >> parent >> dev >> root >> point >> options;
    tail >> fstype >> source;
    if (fstype != "overlay" || source != spec.rootfs_source) return "not this container";
    bool ro = false;
    for (const auto& o : split_list(options, ',')) ro = ro || o == "ro";
    if (!ro) return "not set up yet";
    if (!c.init_userns) return "a user namespace's, not socker-mpi's";
    return "";
}

}  // namespace socker::launcher
