// socker-mpi plan: print the binding every local rank would get, from this machine's topology,
// an hwloc XML file or an hwloc synthetic description. A dry run: nothing is bound.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <string>

#include "binding_report.hpp"
#include "commands.hpp"
#include "config.h"
#include "error.hpp"
#include "host.hpp"
#include "launcher/linux_sys.hpp"
#include "topology.hpp"

namespace socker {

namespace {

// The XML file is read with the user's own permissions: this binary may be setuid root.
std::string read_as_user(const std::string& path) {
    launcher::UserOpen uo;
    try {
        uo = launcher::open_as_user(path, ::getuid(), ::getgid(), true);
    } catch (const Error& e) {
        // A file the user named that is missing or unreadable is a usage error, said as such.
        throw Error(Exit::Usage, "--topology", path, e.err(), "cannot open the hwloc XML file");
    }
    struct Close {
        int fd;
        ~Close() { ::close(fd); }
    } closer{uo.fd};
    if (uo.is_dir) throw Error(Exit::Usage, "--topology", path, 0, "is a directory, not an hwloc XML file");
    std::string text;
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(uo.fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw_errno("read", path, errno);
        if (n == 0) break;
        text.append(buf, static_cast<size_t>(n));
        if (text.size() > (static_cast<size_t>(256) << 20))
            throw Error(Exit::Usage, "--topology", path, 0, "larger than 256 MiB: not an hwloc XML file");
    }
    return text;
}

topology::Topology load(const std::string& spec) {
    switch (topology::Topology::classify(spec)) {
        case topology::Topology::SpecKind::ThisMachine:
            return topology::Topology::this_machine();
        case topology::Topology::SpecKind::Synthetic:
            return topology::Topology::from_synthetic(spec);
        case topology::Topology::SpecKind::XmlFile:
            break;
    }
    return topology::Topology::from_xml_text(read_as_user(spec), spec);
}

}  // namespace

int run_command(const PlanRequest& r, const EnvMap& env, const std::string&) {
    // The admin config supplies [node:GLOB] defaults. A machine without socker-mpi installed
    // (a laptop planning for a cluster) has none: plan then says so and goes on.
    Policy admin;
    std::string admin_note;
    struct stat st {};
    if (::stat(SOCKER_CONFIG_FILE, &st) == 0)
        admin = host::load_policy(SOCKER_CONFIG_FILE);
    else if (errno == ENOENT)
        admin_note = std::string(SOCKER_CONFIG_FILE) + " not present: no [node:GLOB] defaults";
    else
        throw_errno("stat", SOCKER_CONFIG_FILE, errno, Exit::Config);

    const std::string node = r.node.empty() ? host::short_hostname() : r.node;
    std::string out = topology::render_plan(r, load(r.topology), env, admin, node, admin_note);
    if (std::fwrite(out.data(), 1, out.size(), stdout) != out.size() || std::fflush(stdout) != 0)
        throw_errno("write", "stdout", errno);
    return 0;
}

}  // namespace socker
