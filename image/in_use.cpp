#include "image/in_use.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <set>
#include <sstream>

#include "base/file.hpp"

namespace socker::image {

namespace fs = std::filesystem;

std::string overlay_source(const std::vector<std::string>& layer_ids, const std::string& key) {
    std::string s = "socker-mpi:";
    if (!key.empty()) s += "k=" + key + ":";
    for (size_t i = 0; i < layer_ids.size(); ++i) s += (i ? "," : "") + layer_ids[i].substr(0, 16);
    return s;
}

std::vector<std::vector<std::string>> overlays_in_mountinfo(const std::string& mountinfo) {
    std::vector<std::vector<std::string>> out;
    std::istringstream in(mountinfo);
    std::string line;
    while (std::getline(in, line)) {
        // "... - overlay socker-mpi:aaaa,bbbb rw,lowerdir=...": the fields after " - ".
        const auto sep = line.find(" - ");
        if (sep == std::string::npos) continue;
        std::istringstream f(line.substr(sep + 3));
        std::string fstype, source;
        if (!(f >> fstype >> source) || fstype != "overlay" || source.rfind("socker-mpi:", 0) != 0) continue;
        std::vector<std::string> layers;
        std::string ids = source.substr(11);
        if (ids.rfind("k=", 0) == 0)
            ids = ids.substr(std::min(ids.size(), ids.find(':') + 1));  // the share key
        std::istringstream l(ids);
        std::string id;
        while (std::getline(l, id, ','))
            if (id.size() == 16 && id.find_first_not_of("0123456789abcdef") == std::string::npos)
                layers.push_back(id);
        out.push_back(std::move(layers));
    }
    return out;
}

bool layer_used(const InUse& u, const std::string& diff_id) {
    const std::string prefix = diff_id.substr(0, 16);
    for (const auto& c : u.containers)
        if (std::find(c.begin(), c.end(), prefix) != c.end()) return true;
    return false;
}

unsigned InUse::containers_using(const std::vector<std::string>& layer_ids) const {
    unsigned n = 0;
    for (const auto& c : containers) {
        bool uses = false;
        for (const auto& l : layer_ids)
            uses = uses || std::find(c.begin(), c.end(), l.substr(0, 16)) != c.end();
        n += uses ? 1 : 0;
    }
    return n;
}

void for_each_mount_namespace(
    const std::string& proc,
    const std::function<bool(const std::string& pid, const std::string& mountinfo)>& visit) {
    std::set<std::string> seen;  // mount namespaces already read
    std::error_code ec;
    for (fs::directory_iterator it(proc, ec), end; !ec && it != end; it.increment(ec)) {
        const std::string pid = it->path().filename();
        if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos) continue;
        char ns[64];
        const ssize_t n = ::readlink((proc + "/" + pid + "/ns/mnt").c_str(), ns, sizeof ns - 1);
        if (n <= 0 || !seen.insert(std::string(ns, static_cast<size_t>(n))).second) continue;
        std::string text;
        try {
            text = read_file(proc + "/" + pid + "/mountinfo", 64u << 20);
        } catch (const Error&) {
            continue;  // gone, or not ours to read
        }
        if (!visit(pid, text)) return;
    }
}

InUse containers_in_use(const std::string& proc) {
    InUse u;
    for_each_mount_namespace(proc, [&](const std::string&, const std::string& text) {
        for (auto& c : overlays_in_mountinfo(text)) u.containers.push_back(std::move(c));
        return true;
    });
    return u;
}

std::string node_lock_path(const std::string& state_dir, const std::string& store_root) {
    // FNV-1a of the store's path: one lock file per store, stable across versions.
    unsigned long long h = 1469598103934665603ULL;
    for (unsigned char c : store_root) h = (h ^ c) * 1099511628211ULL;
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", h);
    return state_dir + "/store-" + hex + ".lock";
}

}  // namespace socker::image
