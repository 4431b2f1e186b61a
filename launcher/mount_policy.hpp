// The rules the executor applies to every mount, as pure functions (LinuxSys calls them with
// what it opened and resolved; tests call them with values).
#pragma once

#include <string>
#include <vector>

#include "launcher/spec.hpp"

namespace socker::launcher {

// Mount points the user influences (binds of user-named or user-owned sources: user binds,
// home, working directory, PMIx dirs): their destination is checked against the deny list, as
// written and as resolved, and the image's symlinks are followed (inside the root) to resolve
// it. The launcher's own mount points (/proc, /dev, /sys, /tmp, files...) are what the deny
// list protects: never checked against it, and the image's symlinks are never followed there.
bool user_influenced(const MountOp& op);

// Destinations no user-influenced mount may cover: an exact entry of `denied`, or anything
// under the kernel trees /proc, /sys, /dev. Throws Error(Refused) naming `what`.
void check_destination(const std::string& destination, const std::vector<std::string>& denied,
                       const std::string& what);

// The source as opened (its real path) must lie under one of the allowed bind prefixes.
// Throws Error(Refused) naming `what`.
void check_within_prefixes(const std::string& real_path, const std::vector<std::string>& prefixes,
                           const std::string& what);

// Where a resolved mount point really is inside the new root: `real` is the path of the fd
// that resolution gave (fd_path), `root` the new root's path on the host. A path on a mount
// below the root (our tmpfs at /dev...) shows as is.
std::string path_inside_root(const std::string& real, const std::string& root);

// "/a/./b//c" -> {"a", "b", "c"}.
std::vector<std::string> path_components(const std::string& path);

}  // namespace socker::launcher
