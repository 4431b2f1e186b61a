#include "src/dispatch.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <variant>

#include "base/error.hpp"
#include "config.h"
#include "src/host.hpp"
#include "src/stores.hpp"

namespace socker {

namespace {

// The request acts as the user alone (plan, --user), and whether it changes the user's store.
struct Mode {
    bool as_user = false;
    bool changes_user_store = false;
};
Mode mode_of(const UserRequest& req) {
    if (auto* r = std::get_if<ImportRequest>(&req)) return {r->user_store, r->user_store};
    if (auto* r = std::get_if<ImageListRequest>(&req)) return {r->user_store, false};
    if (auto* r = std::get_if<ImageRemoveRequest>(&req)) return {r->user_store, r->user_store};
    if (auto* r = std::get_if<ImageGcRequest>(&req)) return {r->user_store, r->user_store};
    if (std::holds_alternative<PlanRequest>(req)) return {true, false};
    if (std::holds_alternative<DoctorRequest>(req)) return {true, false};  // with the caller's rights
    return {false, false};  // inspect: the admin store first, then the user's (a dropped child)
}

[[noreturn]] void exec(const std::string& program, const std::vector<std::string>& args, const EnvMap& env) {
    std::vector<std::string> argv = {"socker-mpi"};
    argv.insert(argv.end(), args.begin(), args.end());
    const std::vector<std::string> envs = env_to_vector(env);
    std::vector<char*> cargv = c_strings(argv), cenv = c_strings(envs);
    ::execve(program.c_str(), cargv.data(), cenv.data());
    throw_errno("exec", program, errno);
}

}  // namespace

std::string tools_program() {
    std::string p = SOCKER_TOOLS_PROGRAM;
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0) throw_errno("stat", p, errno, Exit::Config);
    if (!S_ISREG(st.st_mode) || st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH)))
        throw Error(Exit::Config, "insecure", p, 0,
                    "the image tools must be a root-owned file not writable by others");
    return p;
}

void exec_tools(const UserRequest& req, const std::vector<std::string>& args, const Invocation& inv) {
    const std::string program = tools_program();
    const Mode m = mode_of(req);
    if (!m.as_user) {
        // euid 0 with the clean environment of the privileged phase (no LD_*: glibc would honour
        // them, the exec gains no privilege); the real uid stays the caller's, for the checks.
        exec(program, args, env_from_environ(environ));
    }
    const launcher::Identity id = host::current_identity();
    if (m.changes_user_store) {  // (doctor must run whatever the admin config says)
        const Policy pol = load_admin_policy();
        if (pol.user_store) host::ensure_store_lock(pol, user_store_path(id, false));
    }
    if (::geteuid() == 0) become_user(id);
    exec(program, args, inv.env);  // only the user now: the user's own environment
}

}  // namespace socker
