#include "src/request.hpp"

#include <CLI/CLI.hpp>
#include <algorithm>

#include "base/error.hpp"
#include "base/spellcheck.hpp"
#include "config.h"

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
                                              "--mpi",
                                              "--engine",
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

namespace {

// The subcommands and the requests they fill (built only when a word could name one).
struct Subcommands {
    CLI::App *run = nullptr, *import = nullptr, *ls = nullptr, *rm = nullptr, *inspect = nullptr,
             *gc = nullptr, *plan = nullptr;
    ImportRequest imp;
    ImageListRequest ls_req;
    ImageRemoveRequest rm_req;
    ImageInspectRequest insp;
    ImageGcRequest gc_req;
    PlanRequest plan_req;
    CLI::App* doctor = nullptr;
    DoctorRequest doctor_req;
    std::optional<std::string> plan_bind_to, plan_bind, plan_distribution, plan_membind;
};

void add_subcommands(CLI::App& app, Subcommands& sc) {
    sc.run = app.add_subcommand("run", "run IMAGE [CMD...] (the default)");
    sc.run->prefix_command();
    sc.run->footer("Example: srun -n 64 socker-mpi run demo ./solver input.dat");
    auto* image = app.add_subcommand("image", "manage images");
    image->require_subcommand(1, 1);
    image->footer("Example: socker-mpi image ls --user");
    sc.import =
        image->add_subcommand("import", "import FILE|-|layout:DIR[:TAG]|docker-daemon:NAME[:TAG] NAME[:TAG]");
    sc.import
        ->add_option("source", sc.imp.source,
                     "rootfs tar, docker-archive, '-', layout:DIR or docker-daemon:NAME (the node's engine)")
        ->required();
    sc.import->add_option("name", sc.imp.name, "NAME[:TAG]")->required();
    sc.import->add_flag("--user", sc.imp.user_store, "into your own store (~/.local/share/socker-mpi)");
    sc.import->footer(
        "Examples: socker-mpi image import ./app.tar app:1.0        (docker save / podman save archive)\n"
        "          socker-mpi image import layout:./oci-dir:latest app  (OCI layout)\n"
        "          socker-mpi image import --user rootfs.tar.gz mine    (your own store)\n"
        "          socker-mpi image import docker-daemon:myapp:1.2 myapp:1.2  (from the Docker engine)");
    sc.ls = image->add_subcommand("ls", "list images");
    sc.ls->add_flag("--user", sc.ls_req.user_store, "your own store");
    sc.ls->footer("Example: socker-mpi image ls");
    sc.rm = image->add_subcommand("rm", "remove an image");
    sc.rm->add_option("name", sc.rm_req.name, "NAME[:TAG]")->required();
    sc.rm->add_flag("--user", sc.rm_req.user_store, "your own store");
    sc.rm->footer("Example: socker-mpi image rm --user mine:latest");
    sc.inspect = image->add_subcommand("inspect", "show an image's config");
    sc.inspect->add_option("name", sc.insp.name, "NAME[:TAG]")->required();
    sc.inspect->footer("Example: socker-mpi image inspect demo");
    sc.gc = image->add_subcommand("gc", "remove layers no image and no running container uses");
    sc.gc->add_flag("--user", sc.gc_req.user_store, "your own store");
    sc.gc->footer("Example: socker-mpi image gc --user");

    PlanRequest& plan = sc.plan_req;
    sc.plan = app.add_subcommand("plan", "print the placement of every local rank (dry run)");
    sc.plan->add_option("--topology", plan.topology, "hwloc XML file or synthetic description");
    sc.plan->add_option("--ranks", plan.options.ranks, "ranks on the node")->check(CLI::PositiveNumber);
    sc.plan->add_option("--cpuset", plan.options.allowed, "allowed CPUs (list string, OS indexes)");
    sc.plan->add_option("--format", plan.options.format, "table|json")
        ->check(CLI::IsMember({"table", "json"}));
    sc.plan->add_option("--node", plan.node, "node name for [node:GLOB] sections");
    add_placement_options(*sc.plan, plan.options.placement, sc.plan_bind_to, sc.plan_distribution,
                          sc.plan_membind);
    sc.plan->add_option("--bind", sc.plan_bind, "old spelling of --bind-to")
        ->check(member_of(topology::bind_kind_names()));
    sc.plan->footer(
        "Examples: socker-mpi plan --ranks 4 --bind-to core\n"
        "          socker-mpi plan --topology node.xml --ranks 64 --format=json");

    DoctorRequest& d = sc.doctor_req;
    d.config = SOCKER_CONFIG_FILE;
    d.launcher = SOCKER_LAUNCHER_PROGRAM;
    sc.doctor = app.add_subcommand("doctor",
                                   "check this node: installation, kernel, cgroups, Slurm, audit, a launch");
    sc.doctor->add_option("--config", d.config, "the admin config to check")->capture_default_str();
    sc.doctor->add_option("--launcher", d.launcher, "the setuid launcher to check")->capture_default_str();
    sc.doctor->add_option("--image", d.image, "image for the test launch (default: the admin store's first)");
    sc.doctor->add_flag("--no-launch", d.no_launch, "no test launch");
    sc.doctor->footer(
        "Exit status: 0 ready (ok and note lines only), 1 a FAIL line; 64 usage.\n"
        "Examples: socker-mpi doctor\n"
        "          socker-mpi doctor --image demo --config /etc/socker-mpi/socker-mpi.conf");
}

// The parsed subcommand's request, if one was given.
std::optional<UserRequest> subcommand_request(Subcommands& sc) {
    if (sc.import && *sc.import) return sc.imp;
    if (sc.ls && *sc.ls) return sc.ls_req;
    if (sc.rm && *sc.rm) return sc.rm_req;
    if (sc.inspect && *sc.inspect) return sc.insp;
    if (sc.gc && *sc.gc) return sc.gc_req;
    if (sc.doctor && *sc.doctor) return sc.doctor_req;
    if (sc.plan && *sc.plan) {
        finish_placement(sc.plan_req.options.placement, sc.plan_bind_to ? sc.plan_bind_to : sc.plan_bind,
                         sc.plan_distribution, sc.plan_membind);
        return sc.plan_req;
    }
    return std::nullopt;
}

// IMAGE, then the command: a word before IMAGE that looks like an option is one socker-mpi does
// not have (a privilege option of another tool is refused as such).
void take_image_and_command(RunRequest& run, const std::vector<std::string>& rest) {
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
}

// --bind takes a mount (an absolute path); a placement word there is the old spelling of
// --bind-to, kept for one release.
void take_binds(RunRequest& run, const std::vector<std::string>& volumes,
                const std::vector<std::string>& bind_opts, std::optional<std::string>& bind_to) {
    for (const auto& v : volumes) run.binds.push_back(parse_bind(v));
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
    std::string mpi_word;
    CLI::Option* mpi_opt =
        app.add_flag("--mpi{default}", mpi_word,
                     "the host's MPI replaces the image's (--mpi: the admin's [mpi]; --mpi=NAME: [mpi:NAME]; "
                     "--mpi=none: never)");
    app.add_option("--engine", run.engine, "inplace|docker: where the container runs (default: the admin's)")
        ->check(CLI::IsMember({"inplace", "docker"}));
    app.add_flag("--dry-run", run.dry_run, "print the container spec as JSON, do not launch");
    app.add_flag("--verbose", run.verbose, "explain decisions (repeat for more)");
    bool version = false;
    app.add_flag("--version", version, "print the version");

    // Subcommands, built only when a word of the command line could name one (or help is
    // asked for): a launch -- the common case, once per rank -- does not pay for their options.
    // A word that is not where a subcommand goes parses exactly as before: after IMAGE,
    // everything is the command.
    const bool subcommands = std::any_of(args.begin(), args.end(), [](const std::string& a) {
        return a == "run" || a == "image" || a == "plan" || a == "doctor" || a == "-h" || a == "--help" ||
               a == "--help-all";
    });
    Subcommands sc;
    if (subcommands) add_subcommands(app, sc);

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
    if (auto sub = subcommand_request(sc)) {
        // Words a subcommand did not take (the launch's prefix mode collects them): not ignored.
        const std::vector<std::string> extra = app.remaining(true);
        if (!extra.empty())
            throw_usage("unexpected argument '" + extra.front() + "' (see --help of the command)");
        return std::move(*sub);
    }

    take_image_and_command(run, sc.run && sc.run->parsed() ? sc.run->remaining() : app.remaining());
    take_binds(run, volumes, bind_opts, bind_to);
    if (mpi_opt->count()) {
        if (mpi_word.empty()) throw_usage("--mpi=: expected --mpi, --mpi=NAME or --mpi=none");
        run.mpi = mpi_word;
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
