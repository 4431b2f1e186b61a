// socker-mpi plan: print the binding every local rank would get, from this machine's topology,
// an hwloc XML file or an hwloc synthetic description. A dry run: nothing is bound.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <string>

#include "base/error.hpp"
#include "base/fd.hpp"
#include "base/file.hpp"
#include "config.h"
#include "src/commands.hpp"
#include "src/host.hpp"
#include "src/stores.hpp"
#include "topology/binding_report.hpp"
#include "topology/topology.hpp"

namespace socker {

namespace {

// The XML file, read by a process that is only the user (see run_command): a plain open with
// the user's rights; a FIFO or a process substitution (<(lstopo --of xml)) works too.
std::string read_xml(const std::string& path) {
    const Fd f(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
    if (!f.valid()) throw Error(Exit::Usage, "--topology", path, errno, "cannot open the hwloc XML file");
    struct stat st {};
    if (::fstat(f.get(), &st) != 0) throw_errno("stat", path, errno);
    if (S_ISDIR(st.st_mode))
        throw Error(Exit::Usage, "--topology", path, 0, "is a directory, not an hwloc XML file");
    if (!S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode))
        throw Error(Exit::Usage, "--topology", path, 0, "not a regular file or a pipe");
    return read_fd(f.get(), path, static_cast<size_t>(256) << 20, Exit::Usage);
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
    return topology::Topology::from_xml_text(read_xml(spec), spec);
}

}  // namespace

int run_command(const PlanRequest& r, const Invocation& inv) {
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
    // Everything else runs as the user alone: the topology (an XML file the user names, or this
    // machine's) is untrusted input to a parser, so no privilege of a setuid binary reaches it.
    if (::geteuid() == 0) become_user(host::current_identity());
    std::string out = topology::render_placements(r.options, load(r.topology), inv.env,
                                                  admin.placement_sections(), node, admin_note);
    if (std::fwrite(out.data(), 1, out.size(), stdout) != out.size() || std::fflush(stdout) != 0)
        throw_errno("write", "stdout", errno);
    return 0;
}

}  // namespace socker
