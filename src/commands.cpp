// What every command shares: the privileged entry's hygiene and the admin policy.
#include "src/commands.hpp"

#include <unistd.h>

#include <cerrno>

#include "base/error.hpp"
#include "config.h"
#include "src/host.hpp"

namespace socker {

mode_t host_entry(int pmi_fd) {
    // The privileged phase runs with root's gid too (files and mounts it creates are root's);
    // the saved/real gid stay the user's until the one drop routine sets all three.
    if (::geteuid() == 0 && ::getegid() != 0 && ::setegid(0) != 0) throw_errno("setegid", "0", errno);
    const int keep = (pmi_fd > 2 && host::fd_is_socket(pmi_fd)) ? pmi_fd : -1;
    return host::sanitize_fds(keep);
}

Policy load_admin_policy() { return host::load_policy(SOCKER_CONFIG_FILE); }

}  // namespace socker
