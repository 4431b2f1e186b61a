#include "launcher/mount_policy.hpp"

#include "base/error.hpp"
#include "base/text.hpp"

namespace socker::launcher {

bool user_influenced(const MountOp& op) {
    return op.kind == MountKind::Bind && op.check != SourceCheck::Trusted;
}

void check_destination(const std::string& destination, const std::vector<std::string>& denied,
                       const std::string& what) {
    for (const auto& d : denied) {
        const bool kernel_tree = d == "/proc" || d == "/sys" || d == "/dev";
        if (destination == d || (kernel_tree && path_under(destination, d)))
            throw_refused(what, "destination " + destination + " is not allowed");
    }
}

void check_within_prefixes(const std::string& real_path, const std::vector<std::string>& prefixes,
                           const std::string& what) {
    for (const auto& p : prefixes)
        if (path_under(real_path, p)) return;
    throw_refused(what, real_path + " is outside the allowed bind sources");
}

std::string path_inside_root(const std::string& real, const std::string& root) {
    if (real.compare(0, root.size(), root) != 0) return real;  // on a mount below the root
    return real.size() > root.size() ? real.substr(root.size()) : "/";
}

std::vector<std::string> path_components(const std::string& path) {
    std::vector<std::string> out;
    for (auto& c : split_list(path, '/'))
        if (c != ".") out.push_back(std::move(c));
    return out;
}

}  // namespace socker::launcher
