// Work on the user's behalf: opening host paths with exactly the user's rights, and running a
// function in a child that is only the user (all work on a user's own image store).
#pragma once

#include <linux/capability.h>
#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

#include "launcher/spec.hpp"

namespace socker::launcher {

// For the scope: exactly the user's rights for filesystem access. fsuid/fsgid become the
// user's (the supplementary groups of a setuid process are the user's already), and the
// effective capability set is emptied: setfsuid alone clears only the filesystem capabilities,
// leaving e.g. CAP_SYS_PTRACE, with which /proc/PID/{root,cwd,fd} of other users' processes can
// be traversed. Restored (fsuid/fsgid 0, the effective set as it was) even on error.
class UserRights {
public:
    UserRights(uid_t uid, gid_t gid);
    ~UserRights();
    UserRights(const UserRights&) = delete;
    UserRights& operator=(const UserRights&) = delete;

private:
    void restore();
    struct __user_cap_header_struct hdr_ {
        _LINUX_CAPABILITY_VERSION_3, 0
    };
    struct __user_cap_data_struct saved_[2] = {};
};

// Open a host path with exactly the user's rights: fsuid/fsgid the user's (the supplementary
// groups of a setuid process are already the user's) and no effective capabilities; /proc magic
// links are refused (77). O_PATH first, type checked, then reopened for reading so that read
// permission is checked too. Returns a read-only fd (O_DIRECTORY for directories).
struct UserOpen {
    int fd = -1;
    bool is_dir = false;
    uid_t owner = 0;
};
UserOpen open_as_user(const std::string& path, uid_t uid, gid_t gid, bool allow_files);
// The second half of open_as_user, for an O_PATH fd the caller opened (e.g. of "."): type check
// and reopen for reading with the user's rights. The O_PATH fd stays the caller's.
UserOpen reopen_as_user(int opath_fd, const std::string& what, bool allow_files, uid_t uid, gid_t gid);

// Runs fn in a child process that first drops every privilege for good (the launcher's own
// drop and check), and returns what fn returned. An Error thrown there is thrown here with the
// same exit code and message; the child's death by a signal is an Error(Internal). Used for
// all work on the user's own image store, so that root never reads or writes it.
std::string in_user_process(const Identity& id, const std::function<std::string()>& fn);
// The same, for another program: a child drops every privilege and execs `program` (argv,
// env; `pass_fd`, when >= 0, as its fd 3), which replies on its stdout "<code>\n<result or
// message>" and exits with that code (socker-mpi-tools internal-ensure does).
std::string exec_as_user(const Identity& id, const std::string& program, const std::vector<std::string>& argv,
                         const EnvMap& env, int pass_fd);
// The reply of such a child whose work threw e: "<code>\n<message>" (an Error's code, else 70);
// `code` is set to the exit code to go with it.
std::string error_reply(const std::exception& e, int& code);

}  // namespace socker::launcher
