#include "src/request.hpp"

#include <CLI/CLI.hpp>
#include <algorithm>

#include "base/error.hpp"
#include "base/spellcheck.hpp"

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
        if (parts[2] == "ro")
            b.read_only = true;
        else if (parts[2] != "rw")
            throw_usage("--bind '" + spec + "': mode must be ro or rw");
    }
    if (b.source[0] != '/' || b.target[0] != '/')
        throw_usage("--bind '" + spec + "': paths must be absolute");
    return b;
}

namespace {

std::string join(const std::vector<std::string>& names) {
    std::string s;
    for (const auto& n : names) s += (s.empty() ? "" : "|") + n;
    return s;
}

const std::vector<std::string> kRunOptions = {"--bind",
                                              "-v",
                                              "--volume",
                                              "--env",
                                              "-e",
                                              "--workdir",
                                              "-w",
                                              "--dry-run",
                                              "--verbose",
                                              "--bind-to",
                                              "--distribution",
                                              "--membind",
                                              "--cpus-per-rank",
                                              "--report-bindings",
                                              "--help",
                                              "--version",
                                              "--device"};

// Options other container tools have for gaining privilege: recognised, and refused as such.
const std::vector<std::string> kPrivilegeOptions = {
    "--privileged", "--cap-add", "--cap-drop",  "--user",         "-u",
    "--uid",        "--gid",     "--group-add", "--security-opt", "--userns",
    "--pid",        "--net",     "--network",   "--ipc",          "--device-cgroup-rule"};

// A CLI validator from topology's vocabulary: a kind added there is accepted here.
CLI::IsMember member_of(const std::vector<std::string>& names) { return CLI::IsMember(names); }

// The placement options, typed through topology's own parsers (shared by run and plan).
void add_placement_options(CLI::App& app, topology::PlacementRequest& p, std::optional<std::string>& bind_to,
                           std::optional<std::string>& distribution, std::optional<std::string>& membind) {
    app.add_option("--bind-to", bind_to, "CPU placement: " + join(topology::bind_kind_names()))
        ->check(member_of(topology::bind_kind_names()));
    app.add_option("--distribution", distribution, join(topology::distribution_names()))
        ->check(member_of(topology::distribution_names()));
    app.add_option("--membind", membind, join(topology::membind_names()))
        ->check(member_of(topology::membind_names()));
    app.add_option("--cpus-per-rank", p.cpus_per_rank, "CPUs per rank")
        ->check(CLI::Range(1, topology::kMaxCpusPerRank));
    app.add_flag("--report-bindings", p.report, "print each rank's binding");
}

// After parsing: the strings CLI11 checked, as topology's types. `bind_alias`: the old
// spelling --bind=KIND (kept for one release, docs/binding.md).
void finish_placement(topology::PlacementRequest& p, const std::optional<std::string>& bind_to,
                      const std::optional<std::string>& distribution,
                      const std::optional<std::string>& membind) {
    if (bind_to) p.bind = topology::parse_bind_kind(*bind_to);
    if (distribution) p.distribution = topology::parse_distribution(*distribution);
    if (membind) p.membind = topology::parse_membind(*membind);
}

}  // namespace

UserRequest parse_command_line(const std::vector<std::string>& args) {
    // Words with one meaning: --bind (and -v/--volume, docker's spelling) is a bind mount;
    // CPU placement is --bind-to (mpirun's word). --bind=KIND is accepted as the old spelling.
    CLI::App app{"socker-mpi: run MPI ranks in containers, in place, as the user, inside the Slurm step",
                 "socker-mpi"};
    app.set_help_all_flag("--help-all", "all help");
    app.footer(
        "Run a rank:   srun -n N socker-mpi [OPTIONS] IMAGE [CMD [ARGS...]]\n"
        "Everything after IMAGE is the command; without one the image's Entrypoint/Cmd run.\n"
        "Exit codes: the command's own; 64 usage, 65 bad image, 70 internal, 74 I/O,\n"
        "77 refused by policy, 78 bad admin config, 126/127 command not executable/found.");
    app.prefix_command();  // everything after IMAGE belongs to the command
    app.require_subcommand(0, 1);

    RunRequest run;
    std::vector<std::string> volumes;
    std::vector<std::string> bind_opts;
    std::optional<std::string> bind_to, distribution, membind;
    app.add_option("-v,--volume", volumes, "bind mount SRC[:DST[:ro]] (repeatable)")->allow_extra_args(false);
    app.add_option("--bind", bind_opts,
                   "bind mount SRC[:DST[:ro]] (repeatable); --bind=KIND is the old spelling of --bind-to")
        ->allow_extra_args(false);
    add_placement_options(app, run.placement, bind_to, distribution, membind);
    app.add_option("-e,--env", run.env_set, "set KEY=VALUE in the container (repeatable)")
        ->allow_extra_args(false);
    app.add_option("--device", run.devices, "pass a device node from the admin's allow-list (repeatable)")
        ->allow_extra_args(false);
    app.add_option("-w,--workdir", run.workdir, "working directory inside the container");
    app.add_flag("--dry-run", run.dry_run, "print the container spec as JSON, do not launch");
    app.add_flag("--verbose", run.verbose, "explain decisions (repeat for more)");
    bool version = false;
    app.add_flag("--version", version, "print the version");

    // Subcommands, built only when a word of the command line could name one (or help is
    // asked for): a launch -- the common case, once per rank -- does not pay for their options.
    // A word that is not where a subcommand goes parses exactly as before: after IMAGE,
    // everything is the command.
    const bool subcommands = std::any_of(args.begin(), args.end(), [](const std::string& a) {
        return a == "run" || a == "image" || a == "plan" || a == "-h" || a == "--help" || a == "--help-all";
    });
    CLI::App *run_cmd = nullptr, *import = nullptr, *ls_cmd = nullptr, *rm_cmd = nullptr, *insp_cmd = nullptr,
             *gc_cmd = nullptr, *plan_cmd = nullptr;
    ImportRequest imp;
    ImageListRequest ls;
    ImageRemoveRequest rm;
    ImageInspectRequest insp;
    ImageGcRequest gc;
    PlanRequest plan;
    std::optional<std::string> plan_bind_to, plan_bind, plan_distribution, plan_membind;
    if (subcommands) {
        run_cmd = app.add_subcommand("run", "run IMAGE [CMD...] (the default)");
        run_cmd->prefix_command();
        auto* image = app.add_subcommand("image", "manage images");
        image->require_subcommand(1, 1);
        import = image->add_subcommand("import", "import FILE|-|layout:DIR[:TAG] NAME[:TAG]");
        import->add_option("source", imp.source, "rootfs tar, docker-archive, '-' or layout:DIR")->required();
        import->add_option("name", imp.name, "NAME[:TAG]")->required();
        import->add_flag("--user", imp.user_store, "into your own store (~/.local/share/socker-mpi)");
        ls_cmd = image->add_subcommand("ls", "list images");
        ls_cmd->add_flag("--user", ls.user_store, "your own store");
        rm_cmd = image->add_subcommand("rm", "remove an image");
        rm_cmd->add_option("name", rm.name, "NAME[:TAG]")->required();
        rm_cmd->add_flag("--user", rm.user_store, "your own store");
        insp_cmd = image->add_subcommand("inspect", "show an image's config");
        insp_cmd->add_option("name", insp.name, "NAME[:TAG]")->required();
        gc_cmd = image->add_subcommand("gc", "remove layers no image and no running container uses");
        gc_cmd->add_flag("--user", gc.user_store, "your own store");

        plan_cmd = app.add_subcommand("plan", "print the placement of every local rank (dry run)");
        plan_cmd->add_option("--topology", plan.topology, "hwloc XML file or synthetic description");
        plan_cmd->add_option("--ranks", plan.options.ranks, "ranks on the node")->check(CLI::PositiveNumber);
        plan_cmd->add_option("--cpuset", plan.options.allowed, "allowed CPUs (list string, OS indexes)");
        plan_cmd->add_option("--format", plan.options.format, "table|json")
            ->check(CLI::IsMember({"table", "json"}));
        plan_cmd->add_option("--node", plan.node, "node name for [node:GLOB] sections");
        add_placement_options(*plan_cmd, plan.options.placement, plan_bind_to, plan_distribution,
                              plan_membind);
        plan_cmd->add_option("--bind", plan_bind, "old spelling of --bind-to")
            ->check(member_of(topology::bind_kind_names()));
    }

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
    if (import && *import) return imp;
    if (ls_cmd && *ls_cmd) return ls;
    if (rm_cmd && *rm_cmd) return rm;
    if (insp_cmd && *insp_cmd) return insp;
    if (gc_cmd && *gc_cmd) return gc;
    if (plan_cmd && *plan_cmd) {
        finish_placement(plan.options.placement, plan_bind_to ? plan_bind_to : plan_bind, plan_distribution,
                         plan_membind);
        return plan;
    }

    std::vector<std::string> rest = run_cmd && run_cmd->parsed() ? run_cmd->remaining() : app.remaining();
    if (rest.empty()) throw_usage("no image given (usage: socker-mpi [OPTIONS] IMAGE [CMD...])");
    if (rest[0].size() > 1 && rest[0][0] == '-') {
        std::string opt = rest[0].substr(0, rest[0].find('='));
        // Options other tools have for gaining privilege: recognised, and refused as such.
        if (std::find(kPrivilegeOptions.begin(), kPrivilegeOptions.end(), opt) != kPrivilegeOptions.end())
            throw_refused(opt,
                          "socker-mpi never grants privileges: ranks run as the submitting user, "
                          "with no capabilities, in the host's PID and network namespaces");
        std::string msg = "unknown option '" + rest[0] + "'";
        if (auto s = spellcheck(opt, kRunOptions)) msg += ", did you mean '" + *s + "'?";
        throw_usage(msg);
    }
    run.image = rest[0];
    run.command.assign(rest.begin() + 1, rest.end());
    for (const auto& v : volumes) run.binds.push_back(parse_bind(v));
    // --bind takes a mount (an absolute path); a placement word there is the old spelling of
    // --bind-to, kept for one release.
    for (const auto& bind_opt : bind_opts) {
        if (!bind_opt.empty() && bind_opt[0] == '/') {
            run.binds.push_back(parse_bind(bind_opt));
            continue;
        }
        const auto& kinds = topology::bind_kind_names();
        if (std::find(kinds.begin(), kinds.end(), bind_opt) == kinds.end()) {
            std::string msg = "--bind '" + bind_opt +
                              "': not a bind mount (an absolute path SRC[:DST[:ro]]) nor a "
                              "placement (" +
                              join(kinds) + ", the old spelling of --bind-to)";
            if (auto sp = spellcheck(bind_opt, kinds)) msg += ", did you mean '--bind-to=" + *sp + "'?";
            throw_usage(msg);
        }
        if (!bind_to) bind_to = bind_opt;
    }
    finish_placement(run.placement, bind_to, distribution, membind);
    for (const auto& d : run.devices)
        if (d.empty() || d[0] != '/') throw_usage("--device '" + d + "': expected an absolute path");
    for (const auto& kv : run.env_set)
        if (kv.find('=') == std::string::npos || kv[0] == '=')
            throw_usage("--env '" + kv + "': expected KEY=VALUE");
    return run;
}

}  // namespace socker
