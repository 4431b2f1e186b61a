#include "request.hpp"

#include <CLI/CLI.hpp>
#include <algorithm>

#include "error.hpp"
#include "spellcheck.hpp"

namespace socker {

BindRequest parse_bind(const std::string& spec) {
    BindRequest b;
    std::vector<std::string> parts;
    size_t start = 0;
    while (true) {
        auto c = spec.find(':', start);
        parts.push_back(spec.substr(start, c == std::string::npos ? std::string::npos : c - start));
        if (c == std::string::npos) break;
        start = c + 1;
    }
    if (parts.size() > 3 || parts[0].empty())
        throw_usage("--bind '" + spec + "': expected SRC[:DST[:ro|rw]]");
    b.source = parts[0];
    b.target = parts.size() >= 2 && !parts[1].empty() ? parts[1] : parts[0];
    if (parts.size() == 3) {
        if (parts[2] == "ro") b.read_only = true;
        else if (parts[2] != "rw") throw_usage("--bind '" + spec + "': mode must be ro or rw");
    }
    if (b.source[0] != '/' || b.target[0] != '/')
        throw_usage("--bind '" + spec + "': paths must be absolute");
    return b;
}

namespace {

const std::vector<std::string> kRunOptions = {
    "--bind", "-v", "--volume", "--env", "-e", "--workdir", "-w", "--dry-run", "--verbose",
    "--cpu-bind", "--distribution", "--membind", "--cpus-per-rank", "--report-bindings",
    "--help", "--version", "--device"};

// Options other container tools have for gaining privilege: recognised, and refused as such.
const std::vector<std::string> kPrivilegeOptions = {
    "--privileged", "--cap-add", "--cap-drop", "--user", "-u", "--uid", "--gid", "--group-add",
    "--security-opt", "--userns", "--pid", "--net", "--network", "--ipc", "--device-cgroup-rule"};

void add_binding_options(CLI::App& app, BindingOptions& b) {
    app.add_option("--bind", b.bind, "placement: none|hwthread|core|l3|numa|socket")
        ->check(CLI::IsMember({"none", "hwthread", "core", "l3", "numa", "socket"}));
    app.add_option("--distribution", b.distribution, "block|cyclic")
        ->check(CLI::IsMember({"block", "cyclic"}));
    app.add_option("--membind", b.membind, "none|local|interleave")
        ->check(CLI::IsMember({"none", "local", "interleave"}));
    app.add_option("--cpus-per-rank", b.cpus_per_rank, "CPUs per rank")->check(CLI::PositiveNumber);
    app.add_flag("--report-bindings", b.report, "print each rank's binding");
}

}  // namespace

UserRequest parse_command_line(const std::vector<std::string>& args) {
    // Note on naming: --bind is the placement policy (issue interface: --bind=core); bind
    // mounts are -v/--volume SRC[:DST[:ro]] (docker's spelling) when the value looks like a path.
    CLI::App app{"socker-mpi: run MPI ranks in containers, in place, as the user, inside the Slurm step",
                 "socker-mpi"};
    app.set_help_all_flag("--help-all", "all help");
    app.footer("Run a rank:   srun -n N socker-mpi [OPTIONS] IMAGE [CMD [ARGS...]]\n"
               "Everything after IMAGE is the command; without one the image's Entrypoint/Cmd run.\n"
               "Exit codes: the command's own; 64 usage, 65 bad image, 70 internal, 74 I/O,\n"
               "77 refused by policy, 78 bad admin config, 126/127 command not executable/found.");
    app.prefix_command();  // everything after IMAGE belongs to the command
    app.require_subcommand(0, 1);

    RunRequest run;
    std::vector<std::string> volumes;
    std::vector<std::string> bind_opts;
    app.add_option("-v,--volume", volumes, "bind mount SRC[:DST[:ro]] (repeatable)")->allow_extra_args(false);
    app.add_option("--bind", bind_opts,
                   "CPU placement none|hwthread|core|l3|numa|socket, or a bind mount SRC[:DST[:ro]]")
        ->allow_extra_args(false);
    app.add_option("--distribution", run.binding.distribution, "block|cyclic")
        ->check(CLI::IsMember({"block", "cyclic"}));
    app.add_option("--membind", run.binding.membind, "none|local|interleave")
        ->check(CLI::IsMember({"none", "local", "interleave"}));
    app.add_option("--cpus-per-rank", run.binding.cpus_per_rank, "CPUs per rank")
        ->check(CLI::PositiveNumber);
    app.add_flag("--report-bindings", run.binding.report, "print each rank's binding");
    app.add_option("-e,--env", run.env_set, "set KEY=VALUE in the container (repeatable)")->allow_extra_args(false);
    app.add_option("--device", run.devices, "pass a device node from the admin's allow-list (repeatable)")
        ->allow_extra_args(false);
    app.add_option("-w,--workdir", run.workdir, "working directory inside the container");
    app.add_flag("--dry-run", run.dry_run, "print the container spec as JSON, do not launch");
    app.add_flag("--verbose", run.verbose, "explain decisions (repeat for more)");
    bool version = false;
    app.add_flag("--version", version, "print the version");

    // Subcommands.
    auto* run_cmd = app.add_subcommand("run", "run IMAGE [CMD...] (the default)");
    run_cmd->prefix_command();
    auto* image = app.add_subcommand("image", "manage images");
    image->require_subcommand(1, 1);
    ImportRequest imp;
    auto* import = image->add_subcommand("import", "import FILE|-|layout:DIR[:TAG] NAME[:TAG]");
    import->add_option("source", imp.source, "rootfs tar, docker-archive, '-' or layout:DIR")->required();
    import->add_option("name", imp.name, "NAME[:TAG]")->required();
    import->add_flag("--user", imp.user_store, "into your own store (~/.local/share/socker-mpi)");
    ImageListRequest ls;
    auto* ls_cmd = image->add_subcommand("ls", "list images");
    ls_cmd->add_flag("--user", ls.user_store, "your own store");
    ImageRemoveRequest rm;
    auto* rm_cmd = image->add_subcommand("rm", "remove an image");
    rm_cmd->add_option("name", rm.name, "NAME[:TAG]")->required();
    rm_cmd->add_flag("--user", rm.user_store, "your own store");
    ImageInspectRequest insp;
    auto* insp_cmd = image->add_subcommand("inspect", "show an image's config");
    insp_cmd->add_option("name", insp.name, "NAME[:TAG]")->required();
    ImageGcRequest gc;
    auto* gc_cmd = image->add_subcommand("gc", "remove layers no image and no running container uses");
    gc_cmd->add_flag("--user", gc.user_store, "your own store");

    PlanRequest plan;
    auto* plan_cmd = app.add_subcommand("plan", "print the binding of every local rank (dry run)");
    plan_cmd->add_option("--topology", plan.topology, "hwloc XML file or synthetic description");
    plan_cmd->add_option("--ranks", plan.ranks, "ranks on the node")->check(CLI::PositiveNumber);
    plan_cmd->add_option("--cpuset", plan.allowed, "allowed CPUs (list string, OS indexes)");
    plan_cmd->add_option("--format", plan.format, "table|json")->check(CLI::IsMember({"table", "json"}));
    plan_cmd->add_option("--node", plan.node, "node name for [node:GLOB] sections");
    add_binding_options(*plan_cmd, plan.binding);

    try {
        std::vector<std::string> rev(args.rbegin(), args.rend());
        app.parse(rev);
    } catch (const CLI::CallForHelp&) {
        throw HelpRequested{app.help()};
    } catch (const CLI::CallForAllHelp&) {
        throw HelpRequested{app.help("", CLI::AppFormatMode::All)};
    } catch (const CLI::ParseError& e) {
        throw_usage(e.what());
    }
    if (version) return VersionRequest{};
    if (*import) return imp;
    if (*ls_cmd) return ls;
    if (*rm_cmd) return rm;
    if (*insp_cmd) return insp;
    if (*gc_cmd) return gc;
    if (*plan_cmd) return plan;

    std::vector<std::string> rest = run_cmd->parsed() ? run_cmd->remaining() : app.remaining();
    if (rest.empty()) throw_usage("no image given (usage: socker-mpi [OPTIONS] IMAGE [CMD...])");
    if (rest[0].size() > 1 && rest[0][0] == '-') {
        std::string opt = rest[0].substr(0, rest[0].find('='));
        // Options other tools have for gaining privilege: recognised, and refused as such.
        if (std::find(kPrivilegeOptions.begin(), kPrivilegeOptions.end(), opt) != kPrivilegeOptions.end())
            throw_refused(opt, "socker-mpi never grants privileges: ranks run as the submitting user, "
                               "with no capabilities, in the host's PID and network namespaces");
        std::string msg = "unknown option '" + rest[0] + "'";
        if (auto s = spellcheck(opt, kRunOptions)) msg += ", did you mean '" + *s + "'?";
        throw_usage(msg);
    }
    run.image = rest[0];
    run.command.assign(rest.begin() + 1, rest.end());
    for (const auto& v : volumes) run.binds.push_back(parse_bind(v));
    for (const auto& bind_opt : bind_opts) {
        if (!bind_opt.empty() && bind_opt[0] == '/') run.binds.push_back(parse_bind(bind_opt));
        else {
            static const std::vector<std::string> kinds = {"none", "hwthread", "core", "l3", "numa", "socket"};
            if (std::find(kinds.begin(), kinds.end(), bind_opt) == kinds.end()) {
                std::string msg = "--bind '" + bind_opt + "': not a placement (" +
                                  "none|hwthread|core|l3|numa|socket) nor an absolute path";
                if (auto s = spellcheck(bind_opt, kinds)) msg += ", did you mean '" + *s + "'?";
                throw_usage(msg);
            }
            run.binding.bind = bind_opt;
        }
    }
    for (const auto& d : run.devices)
        if (d.empty() || d[0] != '/') throw_usage("--device '" + d + "': expected an absolute path");
    for (const auto& kv : run.env_set)
        if (kv.find('=') == std::string::npos || kv[0] == '=')
            throw_usage("--env '" + kv + "': expected KEY=VALUE");
    return run;
}

}  // namespace socker
