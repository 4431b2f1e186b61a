#include "src/socker.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "base/error.hpp"
#include "base/text.hpp"
#include "image/name.hpp"
#include "src/images.hpp"

namespace socker {

namespace {

const char* kUsage =
    "socker: run Docker images as yourself, inside your Slurm job (socker-mpi's Socker commands)\n"
    "\n"
    "usage: socker images              list the images you may run\n"
    "       socker run IMAGE CMD...    run CMD in IMAGE as you; $HOME, $PWD, /work and (in a job)\n"
    "                                  $SCRATCH are there, and CMD starts in $PWD\n"
    "       socker -h | --help         this text\n"
    "       socker -v | --version      the version\n"
    "\n"
    "CMD and its arguments are passed as they are (no shell). socker-mpi's launch options may come\n"
    "before IMAGE (socker-mpi --help).\n"
    "Exit codes: CMD's own; 64 usage, 65 bad image, 77 refused (an image not allowed, a privilege\n"
    "option), 78 bad admin config, 126/127 CMD not executable/found.";

[[noreturn]] void usage(const std::string& msg) { throw_usage(msg + " (socker -h for usage)"); }

}  // namespace

bool called_as_socker(const char* argv0) {
    if (!argv0) return false;
    const char* base = std::strrchr(argv0, '/');
    return std::strcmp(base ? base + 1 : argv0, "socker") == 0;
}

UserRequest parse_socker_command_line(const std::vector<std::string>& args, const EnvMap& env,
                                      const Policy& pol, bool (*exists)(const std::string&)) {
    if (args.empty()) usage("socker: no command given");
    const std::string& verb = args[0];
    if (verb == "-h" || verb == "--help") throw HelpRequested{kUsage};
    if (verb == "-v" || verb == "--version") {
        if (args.size() > 1) usage("socker " + verb + ": unexpected argument '" + args[1] + "'");
        return VersionRequest{true};
    }
    if (verb == "images") {
        if (args.size() > 1) usage("socker images: unexpected argument '" + args[1] + "'");
        return SockerImagesRequest{};
    }
    if (verb != "run") usage("socker: unknown command '" + verb + "'");
    const std::vector<std::string> rest(args.begin() + 1, args.end());
    if (rest.empty()) usage("socker run: no image given");
    UserRequest req = parse_command_line(rest);
    auto* run = std::get_if<RunRequest>(&req);
    if (!run) usage("socker run: expected IMAGE CMD... (got a socker-mpi command)");
    run->socker = true;
    // Socker's automatic binds: $HOME (the launch's home), $PWD (the working directory, bound
    // where the admin's prefixes allow, and the command starts there), /work and, in a job,
    // $SCRATCH -- those that exist and the admin allows.
    std::vector<std::string> extra = {"/work"};
    if (env_get(env, "SLURM_JOB_ID"))
        if (auto s = env_get(env, "SCRATCH"); s && !s->empty() && (*s)[0] == '/')
            extra.push_back(lexically_normal(*s));
    for (const auto& dir : extra) {
        const bool allowed =
            pol.user_binds && std::any_of(pol.bind_allowed_prefixes.begin(), pol.bind_allowed_prefixes.end(),
                                          [&](const std::string& p) { return path_under(dir, p); });
        const bool given = std::any_of(run->binds.begin(), run->binds.end(),
                                       [&](const BindRequest& b) { return b.target == dir; });
        if (allowed && !given && exists(dir)) run->binds.push_back({dir, dir, false});
    }
    return req;
}

int run_command(const SockerImagesRequest&, const Invocation&) {
    const Policy pol = load_admin_policy();
    std::vector<std::string> names;
    for (const auto& n : pol.socker_images) {
        std::string shown = n;
        if (!names_a_file(n)) {
            try {
                shown = image::parse_image_name(n).str();
            } catch (const Error&) {  // an admin's typo: shown as written
            }
        }
        if (std::find(names.begin(), names.end(), shown) == names.end()) names.push_back(shown);
    }
    for (const auto& n : names) std::printf("%s\n", n.c_str());
    return 0;
}

}  // namespace socker
