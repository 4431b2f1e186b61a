#include "spank/options.hpp"

#include <algorithm>

#include "base/error.hpp"
#include "base/text.hpp"
#include "topology/options.hpp"

namespace socker::spank {

namespace {

std::string names_of_bind_kinds() {
    std::string s;
    for (const auto& n : topology::bind_kind_names()) s += (s.empty() ? "" : "|") + n;
    return s;
}

std::string upper_name(const char* name) {
    std::string s = name;
    for (char& c : s) c = c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return s;
}

std::optional<bool> flag_value(const std::string& var, const std::string& v) {
    if (v == "1" || v == "yes" || v == "true") return true;
    if (v == "0" || v == "no" || v == "false") return false;
    throw_usage(var + "='" + v + "': expected 1|0|yes|no|true|false");
}

}  // namespace

const std::vector<OptionInfo>& option_table() {
    static const std::vector<OptionInfo> t = {
        {Opt::Image, "container-image", "IMAGE",
         "[socker-mpi] run the task in this image: a name from the image stores, or a ./file.tar"},
        {Opt::Mounts, "container-mounts", "SRC:DST[:ro|rw],...",
         "[socker-mpi] bind host paths into the container (where the admin allows)"},
        {Opt::Workdir, "container-workdir", "PATH", "[socker-mpi] working directory inside the container"},
        {Opt::Env, "container-env", "NAME,...",
         "[socker-mpi] these variables keep the host's value over the image's"},
        {Opt::MountHome, "container-mount-home", nullptr, "[socker-mpi] bind the home directory (default)"},
        {Opt::NoMountHome, "no-container-mount-home", nullptr, "[socker-mpi] do not bind the home directory"},
        {Opt::Entrypoint, "container-entrypoint", nullptr,
         "[socker-mpi] run the image's Entrypoint before the command"},
        {Opt::NoEntrypoint, "no-container-entrypoint", nullptr,
         "[socker-mpi] do not run the image's Entrypoint (default)"},
        {Opt::BindPolicy, "container-bind-policy", "core|numa|...",
         "[socker-mpi] CPU binding of each task (socker-mpi --bind-to)"},
        {Opt::Mpi, "container-mpi", "default|NAME|none",
         "[socker-mpi] the host's MPI replaces the image's (socker-mpi --mpi=; docs/mpi.md)"},
        {Opt::DryRun, "container-dry-run", nullptr,
         "[socker-mpi] print each task's container as JSON, run nothing"},
    };
    return t;
}

bool ContainerOptions::any_but_image() const {
    return mounts || workdir || env || bind_policy || mpi || mount_home || entrypoint || dry_run;
}

namespace {

// Where each option goes: a string field, or a flag field and the value the option gives it.
std::optional<std::string>* text_field(ContainerOptions& o, Opt opt) {
    switch (opt) {
        case Opt::Image:
            return &o.image;
        case Opt::Mounts:
            return &o.mounts;
        case Opt::Workdir:
            return &o.workdir;
        case Opt::Env:
            return &o.env;
        case Opt::BindPolicy:
            return &o.bind_policy;
        case Opt::Mpi:
            return &o.mpi;
        default:
            return nullptr;
    }
}
std::pair<std::optional<bool>*, bool> flag_field(ContainerOptions& o, Opt opt) {
    switch (opt) {
        case Opt::MountHome:
            return {&o.mount_home, true};
        case Opt::NoMountHome:
            return {&o.mount_home, false};
        case Opt::Entrypoint:
            return {&o.entrypoint, true};
        case Opt::NoEntrypoint:
            return {&o.entrypoint, false};
        case Opt::DryRun:
            return {&o.dry_run, true};
        default:
            return {nullptr, false};
    }
}

}  // namespace

void set_option(ContainerOptions& o, Opt opt, const char* value) {
    if (auto* f = text_field(o, opt)) {
        *f = value ? value : "";
    } else if (auto [flag, on] = flag_field(o, opt); flag) {
        *flag = on;
    }
}

std::vector<std::string> environment_names(const OptionInfo& o) {
    if (o.opt == Opt::NoMountHome || o.opt == Opt::NoEntrypoint) return {};
    const std::string n = upper_name(o.name);  // CONTAINER_IMAGE
    return {"SOCKER_" + n, "PYXIS_" + n};
}

ContainerOptions with_environment(ContainerOptions o, const EnvMap& env) {
    // Without an image (command line or environment) the other variables are not even read: a
    // stray one in a profile must not touch a native srun.
    if (!o.image && !env_get(env, "SOCKER_CONTAINER_IMAGE") && !env_get(env, "PYXIS_CONTAINER_IMAGE"))
        return o;
    for (const auto& info : option_table()) {
        for (const auto& var : environment_names(info)) {
            const auto v = env_get(env, var);
            if (!v) continue;
            if (auto* f = text_field(o, info.opt)) {
                if (!*f) *f = *v;
            } else if (auto [flag, on] = flag_field(o, info.opt); flag && !*flag) {
                *flag = flag_value(var, *v);
            }
        }
    }
    return o;
}

std::string check_command_line(const ContainerOptions& o) {
    if (o.image && o.image->empty()) return "--container-image: an image name or file is required";
    if (!o.image && o.any_but_image())
        return "--container-* options need --container-image (without it the command would run natively)";
    return "";
}

RunRequest to_request(const ContainerOptions& o, const std::vector<std::string>& argv, const EnvMap& env) {
    RunRequest r;
    r.image = o.image.value_or("");
    if (r.image.empty()) throw_usage("--container-image: an image name or file is required");
    r.command = argv;
    if (o.mounts) {
        for (const auto& item : split_list(*o.mounts, ',')) {
            if (item.empty()) continue;
            try {
                r.binds.push_back(parse_bind(item));
            } catch (const Error&) {
                throw_usage("--container-mounts '" + item +
                            "': expected SRC[:DST[:ro|rw]] with absolute paths");
            }
        }
    }
    if (o.workdir) {
        if (o.workdir->empty() || (*o.workdir)[0] != '/')
            throw_usage("--container-workdir '" + *o.workdir + "': must be an absolute path");
        r.workdir = *o.workdir;
    }
    if (o.env) {
        for (const auto& name : split_list(*o.env, ',')) {
            if (name.empty()) continue;
            if (name.find('=') != std::string::npos)
                throw_usage("--container-env '" + name + "': names only (the value is the host's)");
            if (auto v = env_get(env, name)) r.env_set.push_back(name + "=" + *v);
        }
    }
    if (o.bind_policy) {
        r.placement.bind = topology::parse_bind_kind(*o.bind_policy);
        if (!r.placement.bind)
            throw_usage("--container-bind-policy '" + *o.bind_policy + "': expected " +
                        names_of_bind_kinds());
    }
    if (o.mpi) {
        if (o.mpi->empty()) throw_usage("--container-mpi: expected default, NAME or none");
        r.mpi = *o.mpi;
    }
    r.mount_home = o.mount_home.value_or(true);
    r.entrypoint = o.entrypoint.value_or(false);
    r.dry_run = o.dry_run.value_or(false);
    return r;
}

EnvMap task_env(EnvMap env, const TaskIds& ids) {
    env["SLURM_PROCID"] = std::to_string(ids.global);
    env["SLURM_LOCALID"] = std::to_string(ids.local);
    env["SLURM_NODEID"] = std::to_string(ids.node);
    env["SLURM_JOB_ID"] = std::to_string(ids.job);
    env["SLURM_STEP_ID"] = std::to_string(ids.step);
    env["SLURM_STEP_NUM_TASKS"] = std::to_string(ids.total);
    return env;
}

}  // namespace socker::spank
