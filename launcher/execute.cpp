#include "base/error.hpp"
#include "launcher/sys.hpp"

namespace socker::launcher {

void drop_privileges(const Identity& id, Sys& sys) {
    sys.drop_bounding_set();
    sys.set_groups(id.groups);
    sys.set_resgid(id.gid);
    sys.set_resuid(id.uid);
    sys.verify_dropped(id.uid, id.gid);
}

void execute(const ContainerSpec& spec, Sys& sys) {
    // 0. The container of this step on this node, if another rank built it: join it. Else build
    //    it (1-4), holding the step's set-up lock so the other ranks wait for it.
    if (!spec.share || !sys.join_shared(spec)) build_container(spec, sys);
    // 5. CPU and memory binding while still privileged (the app inherits it).
    if (spec.binding) sys.set_binding(*spec.binding);
    // 6. Identity: bounding set first (needs CAP_SETPCAP), then groups, gid, uid; verify.
    drop_privileges(spec.id, sys);
    sys.set_no_new_privs();
    // 7. As the user from here on.
    sys.chdir(spec.cwd);
    sys.set_umask(spec.umask);  // the caller's, which the privileged phase replaced with 022
    sys.exec(spec.argv, spec.path, spec.env);
    throw Error(Exit::Internal, "exec", spec.argv.at(0), 0, "returned");  // Sys::exec never returns
}

void enter_for_task(const ContainerSpec& spec, Sys& sys) {
    if (!spec.share || !sys.join_shared(spec)) build_container(spec, sys);
    // slurmstepd's drop (setgroups, setgid, setuid) empties the effective and permitted sets
    // but leaves the bounding set full and no_new_privs off: both are done here, as root.
    sys.drop_bounding_set();
    sys.set_no_new_privs();
    sys.chdir(spec.cwd);
    sys.set_umask(spec.umask);
}

void check_task_identity(const Identity& id, Sys& sys) {
    sys.verify_dropped(id.uid, id.gid);
    sys.verify_confined(id);
}

void build_container(const ContainerSpec& spec, Sys& sys) {
    // 1. A private mount namespace: everything below vanishes with its last process.
    sys.unshare_mount_namespace();
    // 2. The image, read-only below a throw-away tmpfs, at a private staging point.
    const std::string root = sys.mount_rootfs(spec);
    // 3. /proc, /dev, /sys, /dev/shm, PMIx dirs, home, cwd, user binds, passwd/group.
    for (const auto& m : spec.mounts) {
        try {
            sys.apply_mount(root, m, spec);
        } catch (Error& e) {
            throw std::move(e).with_context(std::string(to_string(m.kind)) + " " + m.target);
        }
    }
    // 4. Switch root; the host's tree is detached; the image's root becomes read-only. Finished:
    //    the other ranks of the step may join.
    sys.pivot_root(root);
    sys.make_root_readonly();
    sys.end_setup();
}

}  // namespace socker::launcher
