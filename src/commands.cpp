// What every command shares: the privileged entry's hygiene and the admin policy.
#include "src/commands.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "base/error.hpp"
#include "config.h"
#include "pmi/launch_context.hpp"
#include "src/host.hpp"

namespace socker {

std::optional<Entry> enter(int argc, char** argv, char** envp) {
    // Since Linux 5.18 an execve with argc == 0 arrives as argc 1 with an empty argv[0].
    if (argc < 1 || argv[0] == nullptr || argv[0][0] == '\0') {
        static const char msg[] = "socker-mpi: refusing to run with an empty argument vector\n";
        (void)!::write(2, msg, sizeof msg - 1);
        return std::nullopt;
    }
    // The user's environment is captured once, as a value; the privileged phase runs with none.
    Entry e{env_from_environ(envp), ""};
    ::clearenv();
    ::setenv("PATH", "/usr/sbin:/usr/bin:/sbin:/bin", 1);
    // hwloc would dlopen its plugins into this setuid process at the first topology (libxml2,
    // OpenCL, X11, libpciaccess...): none is needed (I/O discovery is off, hwloc reads XML with
    // its built-in parser), and they link the shared libhwloc beside the static one.
    ::setenv("HWLOC_PLUGINS_PATH", "/nonexistent/socker-mpi-loads-no-hwloc-plugins", 1);
    const auto rank = pmi::rank_hint(e.env);
    e.prefix = "socker-mpi[rank " + (rank ? std::to_string(*rank) : "-") + "]: ";
    return e;
}

int guarded(const std::string& prefix, const std::function<int()>& body) {
    try {
        return body();
    } catch (const HelpRequested& h) {
        std::cout << h.text;
        return 0;
    } catch (const Error& e) {
        std::fprintf(stderr, "%s%s\n", prefix.c_str(), e.what());
        return static_cast<int>(e.code());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%sinternal error: %s\n", prefix.c_str(), e.what());
        return static_cast<int>(Exit::Internal);
    }
}

mode_t host_entry(int pmi_fd) {
    // The privileged phase runs with root's gid too (files and mounts it creates are root's);
    // the saved/real gid stay the user's until the one drop routine sets all three.
    if (::geteuid() == 0 && ::getegid() != 0 && ::setegid(0) != 0) throw_errno("setegid", "0", errno);
    const int keep = (pmi_fd > 2 && host::fd_is_socket(pmi_fd)) ? pmi_fd : -1;
    return host::sanitize_fds(keep);
}

Policy load_admin_policy() { return host::load_policy(SOCKER_CONFIG_FILE); }

}  // namespace socker
