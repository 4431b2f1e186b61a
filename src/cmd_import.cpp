// socker-mpi image import [--user] FILE|-|layout:DIR[:TAG]|docker-daemon:NAME[:TAG] NAME[:TAG]
#include <fcntl.h>
#include <fmt/core.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>

#include "base/error.hpp"
#include "base/fd.hpp"
#include "base/http.hpp"
#include "image/import.hpp"
#include "image/squashfs.hpp"
#include "launcher/engine.hpp"
#include "launcher/user_process.hpp"
#include "src/commands.hpp"
#include "src/host.hpp"
#include "src/output.hpp"
#include "src/stores.hpp"

namespace socker {

namespace {

// "layout:DIR[:TAG]" -> DIR, TAG (TAG: what follows the last ':' when it looks like a tag).
std::pair<std::string, std::string> split_layout(const std::string& spec) {
    const auto colon = spec.rfind(':');
    if (colon != std::string::npos && colon > 0 && image::valid_tag(std::string_view(spec).substr(colon + 1)))
        return {spec.substr(0, colon), spec.substr(colon + 1)};
    return {spec, ""};
}

// GET /images/REF/get from the admin's Docker engine, streamed by a child into a pipe whose read
// end is returned (the import reads it as it reads standard input).
int engine_image_stream(const Policy& pol, const std::string& ref, pid_t& child) {
    if (pol.docker_socket.empty())
        throw_refused("image import docker-daemon:" + ref,
                      "the admin configured no Docker engine (docker_socket) on this cluster");
    http::Connection c = [&] {
        try {
            return http::Connection::unix_socket(pol.docker_socket);
        } catch (Error& e) {
            if (e.err() == EACCES)
                throw Error(Exit::Refused, "connect", pol.docker_socket, EACCES,
                            "you may not use the Docker engine (import as root into the admin store)");
            throw;
        }
    }();
    c.send("GET", "/images/" + launcher::engine::url_escape(ref) + "/get");
    const http::Head head = c.read_head();
    if (head.status == 404)
        throw Error(Exit::BadImage, "image", "docker-daemon:" + ref, 0,
                    "not in the Docker engine (docker images)");
    if (head.status != 200) {
        const std::string body = c.read_body(head, 1u << 16);
        throw Error(Exit::Io, "engine", "docker-daemon:" + ref, 0,
                    std::to_string(head.status) + " " + launcher::engine::error_message(body));
    }
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) throw_errno("pipe", "the image stream", errno);
    child = ::fork();
    if (child < 0) throw_errno("fork", "the image stream", errno);
    if (child == 0) {
        ::close(p[0]);
        ::signal(SIGPIPE, SIG_IGN);
        try {
            c.copy_body(head, p[1]);
        } catch (const Error&) {
            ::_exit(1);
        }
        ::_exit(0);
    }
    ::close(p[1]);
    return p[0];
}

}  // namespace

int run_command(const ImportRequest& r, const Invocation&) {
    const Policy pol = load_admin_policy();
    const launcher::Identity id = host::current_identity();
    const image::ImageName name = image::parse_image_name(r.name);
    const TargetStore store = target_store(pol, id, r.user_store, true, "import into");

    image::ImportSource src;
    src.label = r.source;
    Fd closer;
    pid_t engine_child = -1;
    if (r.source.rfind("layout:", 0) == 0) {
        auto [dir, tag] = split_layout(r.source.substr(7));
        if (dir.empty()) throw_usage("layout:DIR[:TAG]: no directory given");
        // Everything in the layout is opened as the user: it is the user's data.
        auto top = launcher::open_as_user(dir, id.uid, id.gid, false);
        ::close(top.fd);
        src.label = "layout:" + dir;
        src.layout_tag = tag;
        src.open_layout = [dir = dir, id](const std::string& rel) {
            auto uo = launcher::open_as_user(dir + "/" + rel, id.uid, id.gid, true);
            if (uo.is_dir) {
                ::close(uo.fd);
                throw Error(Exit::BadImage, "open", dir + "/" + rel, 0, "is a directory");
            }
            return uo.fd;
        };
    } else if (r.source.rfind("docker-daemon:", 0) == 0) {
        // An image of the node's Docker engine, read through its API (the docker-archive
        // stream): the admin store's import connects as root, a --user import as the user
        // (dropped already), so only a user who may reach the socket gets the engine's images.
        const std::string ref = r.source.substr(14);
        if (ref.empty()) throw_usage("docker-daemon:NAME[:TAG]: no image named");
        closer = Fd(engine_image_stream(pol, ref, engine_child));
        src.fd = closer.get();
    } else {
        if (r.source == "-" && ::isatty(0))
            throw_usage(
                "refusing to read an image from a terminal: pipe one in (docker save IMAGE | ...) or give a "
                "file");
        closer = Fd(host::open_source_as_user(r.source, id));
        struct stat st {};
        if (::fstat(closer.get(), &st) == 0 && S_ISREG(st.st_mode)) {
            src.seekable = true;
            src.size = static_cast<unsigned long long>(st.st_size);
        }
        src.fd = closer.get();
    }

    image::ImportOptions opt = import_options(pol, store.node_lock);
    if (auto cb = progress_bar_for("importing " + name.str())) opt.progress = *cb;
    auto res = [&] {
        try {
            return image::import_image(store.root, src, name, opt);
        } catch (...) {
            if (engine_child > 0) {
                ::kill(engine_child, SIGKILL);
                ::waitpid(engine_child, nullptr, 0);
            }
            throw;
        }
    }();
    if (engine_child > 0) {
        int st = 0;
        ::waitpid(engine_child, &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            throw Error(Exit::Io, "import", r.source, 0, "the engine's image stream broke off");
    }
    print_import_summary("", name.str(), res);
    // A squashfs admin store: the image as one file too (built once; a re-import reuses it).
    if (!r.user_store && pol.store_squashfs) {
        const auto sq = image::build_squashfs(store.root, res.record.id);
        if (sq.built)
            fmt::print("squashfs sha256:{}, {:.1f} MB in {:.2f} s\n", sq.sha256.substr(0, 12),
                       static_cast<double>(sq.bytes) / 1e6, sq.seconds);
        else
            fmt::print("squashfs sha256:{} (already built)\n", sq.sha256.substr(0, 12));
    }
    fmt::print("sha256:{}\n", res.record.id);
    return 0;
}

}  // namespace socker
