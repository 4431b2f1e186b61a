#include "launcher/spec.hpp"

#include <nlohmann/json.hpp>

namespace socker::launcher {

const char* to_string(MountKind k) {
    switch (k) {
        case MountKind::Bind:
            return "bind";
        case MountKind::Tmpfs:
            return "tmpfs";
        case MountKind::Proc:
            return "proc";
        case MountKind::File:
            return "file";
        case MountKind::Symlink:
            return "symlink";
        case MountKind::Node:
            return "node";
    }
    return "?";
}

std::string to_json(const ContainerSpec& s) {
    using nlohmann::ordered_json;
    ordered_json mounts = ordered_json::array();
    for (const auto& m : s.mounts) {
        ordered_json j = {{"kind", to_string(m.kind)}, {"target", m.target}};
        if (!m.source.empty()) j["source"] = m.source;
        if (m.kind == MountKind::Symlink || m.kind == MountKind::Tmpfs || m.kind == MountKind::Node)
            j["data"] = m.data;
        std::vector<std::string> flags;
        if (m.read_only) flags.push_back("ro");
        if (m.nosuid) flags.push_back("nosuid");
        if (m.nodev) flags.push_back("nodev");
        if (m.noexec) flags.push_back("noexec");
        if (m.optional) flags.push_back("optional");
        if (m.within_prefixes) flags.push_back("within-prefixes");
        j["flags"] = flags;
        j["check"] = m.check == SourceCheck::Trusted  ? "trusted"
                     : m.check == SourceCheck::AsUser ? "as-user"
                                                      : "owned-by-user";
        mounts.push_back(j);
    }
    ordered_json j = {
        {"image", s.image_ref},
        {"image_id", s.image_id},
        {"layers", s.layers},
        {"layers_owned_by_user", s.layers_owned_by_user},
        {"squashfs", s.squashfs_file},
        {"rootfs_source", s.rootfs_source},
        {"share_key", s.share_key},
        {"uid", s.id.uid},
        {"gid", s.id.gid},
        {"groups", s.id.groups},
        {"cwd", s.cwd},
        {"umask", s.umask},
        {"argv", s.argv},
        {"mounts", mounts},
        {"env", s.env},
    };
    if (s.binding)
        j["binding"] = {{"cpus", s.binding->cpus},
                        {"mems", s.binding->mems},
                        {"membind", topology::to_string(s.binding->membind)}};
    if (s.keep_fd) j["keep_fd"] = *s.keep_fd;
    if (!s.mpi.empty()) {
        ordered_json libs = ordered_json::array();
        for (const auto& l : s.mpi_libraries)
            libs.push_back({{"soname", l.soname},
                            {"host_path", l.host_path},
                            {"host_version", l.host_version},
                            {"image_path", l.image_path},
                            {"image_version", l.image_version},
                            {"decision", l.decision},
                            {"reason", l.reason}});
        j["mpi"] = {{"name", s.mpi}, {"libraries", libs}};
    }
    if (s.share)
        j["share"] = {{"cgroup_dir", s.share->cgroup_dir},
                      {"cgroup_line", s.share->cgroup_line},
                      {"tasks_below", s.share->tasks_below}};
    return j.dump(2);
}

}  // namespace socker::launcher
