#include "launcher/engine_run.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>

#include "base/error.hpp"
#include "base/file.hpp"
#include "base/text.hpp"

namespace socker::launcher::engine {

namespace {

constexpr size_t kAnswerLimit = 4u << 20;

[[noreturn]] void engine_error(const std::string& what, const http::Response& r) {
    const Exit code = r.head.status == 404 ? Exit::BadImage : Exit::Io;
    throw Error(code, "engine", what, 0, std::to_string(r.head.status) + " " + error_message(r.body));
}

void write_all(int fd, std::string_view s) {
    while (!s.empty()) {
        const ssize_t n = ::write(fd, s.data(), s.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;  // the reader went away: the output is dropped, the rank goes on
        s.remove_prefix(static_cast<size_t>(n));
    }
}

// The bind's source as the user sees it: its real path, checked against the admin's prefixes
// and (PMIx directories) its owner; its dev:ino for the reaper. false: an optional bind whose
// source is absent.
bool resolve(EngineBind& b, const ContainerSpec& spec) {
    std::string src = b.source;
    if (b.source_is_cwd) {
        char cwd[PATH_MAX];
        if (!::getcwd(cwd, sizeof cwd)) throw_errno("getcwd", "the working directory", errno);
        src = cwd;
    }
    if (b.check == SourceCheck::Trusted) {
        struct stat st {};
        if (::stat(src.c_str(), &st) != 0) {
            if (b.optional) return false;
            throw_errno("stat", src, errno);
        }
        return true;
    }
    char real[PATH_MAX];
    if (!::realpath(src.c_str(), real)) {
        if (b.optional && errno == ENOENT) return false;
        throw_errno("bind", src, errno, errno == EACCES ? Exit::Refused : Exit::Io);
    }
    b.source = real;
    if (b.within_prefixes) {
        bool ok = false;
        for (const auto& p : spec.bind_allowed_prefixes) ok = ok || path_under(b.source, p);
        if (!ok)
            throw_refused("bind " + src, "it resolves to " + b.source +
                                             ", outside the directories the admin allows binds from");
    }
    struct stat st {};
    if (::stat(real, &st) != 0) throw_errno("stat", b.source, errno);
    if (b.check == SourceCheck::OwnedByUser && st.st_uid != spec.id.uid)
        throw_refused("bind " + b.source, "it is not owned by you");
    b.dev = static_cast<unsigned long long>(st.st_dev);
    b.ino = static_cast<unsigned long long>(st.st_ino);
    return true;
}

// Generated files (passwd, group, ...) in a private directory of the user's, bound like user
// files; removed once the container started (its mounts keep them).
struct Scratch {
    std::string dir;
    std::vector<std::string> files;
    ~Scratch() { clear(); }
    void clear() {
        for (const auto& f : files) ::unlink(f.c_str());
        files.clear();
        if (!dir.empty()) ::rmdir(dir.c_str());
        dir.clear();
    }
};

void write_files(EnginePlan& plan, Scratch& s) {
    if (plan.files.empty()) return;
    char tmpl[] = "/tmp/socker-mpi-engine.XXXXXX";
    if (!::mkdtemp(tmpl)) throw_errno("mkdtemp", tmpl, errno);
    s.dir = tmpl;
    plan.scratch = s.dir;
    int n = 0;
    for (const auto& [target, content] : plan.files) {
        const std::string path = s.dir + "/" + std::to_string(n++);
        Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644));
        if (!fd.valid()) throw_errno("create", path, errno);
        s.files.push_back(path);
        write_all(fd.get(), content);
        struct stat st {};
        if (::fstat(fd.get(), &st) != 0) throw_errno("stat", path, errno);
        EngineBind b;
        b.source = path;
        b.target = target;
        b.read_only = true;
        b.check = SourceCheck::AsUser;
        b.dev = static_cast<unsigned long long>(st.st_dev);
        b.ino = static_cast<unsigned long long>(st.st_ino);
        plan.binds.push_back(std::move(b));
    }
}

void remove_container(http::Connection& c, const std::string& id) {
    try {
        c.request("DELETE", "/containers/" + id + "?force=1&v=1");
    } catch (const Error&) {  // the engine went away: nothing more to do here
    }
}

}  // namespace

unsigned long long own_start_time() {
    const std::string s = read_file("/proc/self/stat", 4096);
    const auto close = s.rfind(')');
    if (close == std::string::npos) return 0;
    int field = 2;
    size_t i = close + 1;
    for (; i < s.size() && field < 22; ++i)
        if (s[i] == ' ') ++field;
    return std::strtoull(s.c_str() + i, nullptr, 10);
}

Connections connect(const std::string& socket) {
    auto one = [&] {
        try {
            return http::Connection::unix_socket(socket);
        } catch (Error& e) {
            throw std::move(e).with_context(
                "the Docker engine's API socket (docker_socket; is dockerd running?)");
        }
    };
    http::Connection a = one(), b = one(), c = one();
    return {std::move(a), std::move(b), std::move(c)};
}

image::ImageRecord inspect(http::Connection& c, const std::string& ref) {
    const http::Response r = c.request("GET", "/images/" + url_escape(ref) + "/json", {}, kAnswerLimit);
    if (r.head.status == 404)
        throw Error(Exit::BadImage, "image", ref, 0,
                    "not in the Docker engine (engine mode runs the engine's images: docker images)");
    if (r.head.status != 200) engine_error("image " + ref, r);
    return parse_inspect(r.body, ref);
}

int run(const ContainerSpec& spec, EnginePlan plan, const EngineOptions& o, Connections& c,
        const std::string& prefix) {
    // Signals: taken from a signalfd from here on (before any file is made), forwarded once the
    // container runs.
    sigset_t set;
    sigemptyset(&set);
    for (int s : {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2}) sigaddset(&set, s);
    ::sigprocmask(SIG_BLOCK, &set, nullptr);
    ::signal(SIGPIPE, SIG_IGN);
    Fd sfd(::signalfd(-1, &set, SFD_CLOEXEC));
    if (!sfd.valid()) throw_errno("signalfd", "engine mode", errno);

    std::vector<EngineBind> kept;
    for (auto& b : plan.binds)
        if (resolve(b, spec)) kept.push_back(b);
    plan.binds = std::move(kept);
    Scratch scratch;
    write_files(plan, scratch);

    const std::string& name = o.name;
    const http::Response created =
        c.control.request("POST", "/containers/create" + (name.empty() ? "" : "?name=" + url_escape(name)),
                          create_body(spec, plan, o), kAnswerLimit);
    if (created.head.status != 201) engine_error("create (image " + o.image + ")", created);
    const std::string id = parse_created_id(created.body);
    try {
        c.attach.send("POST", "/containers/" + id + "/attach?stream=1&stdout=1&stderr=1", {},
                      {{"Connection", "Upgrade"}, {"Upgrade", "tcp"}});
        const http::Head ah = c.attach.read_head();
        if (ah.status != 101 && ah.status != 200)
            throw Error(Exit::Io, "engine", "attach " + id, 0, std::to_string(ah.status) + " " + ah.reason);
        c.wait.send("POST", "/containers/" + id + "/wait?condition=removed");
        const http::Head wh = c.wait.read_head();
        if (wh.status != 200) {
            http::Response wr{wh, c.wait.read_body(wh, kAnswerLimit)};
            engine_error("wait " + id, wr);
        }
        const http::Response started = c.control.request("POST", "/containers/" + id + "/start");
        if (started.head.status != 204 && started.head.status != 304) engine_error("start " + id, started);
        scratch.clear();  // mounted now

        Demux demux;
        auto out = [](int stream, std::string_view data) { write_all(stream == 2 ? 2 : 1, data); };
        demux.feed(c.attach.take_buffered(), out);
        bool attach_open = true;
        std::optional<int> status;
        int drain_ms = -1;
        while (!status || attach_open) {
            struct pollfd fds[3] = {{c.attach.fd(), static_cast<short>(attach_open ? POLLIN : 0), 0},
                                    {c.wait.fd(), static_cast<short>(status ? 0 : POLLIN), 0},
                                    {sfd.get(), POLLIN, 0}};
            const int n = ::poll(fds, 3, status ? drain_ms : -1);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) throw_errno("poll", "engine mode", errno);
            if (n == 0) break;  // the status came; the output did not end within the drain time
            if (fds[0].revents) {
                char buf[65536];
                const ssize_t r = ::read(c.attach.fd(), buf, sizeof buf);
                if (r <= 0)
                    attach_open = false;
                else
                    demux.feed(std::string_view(buf, static_cast<size_t>(r)), out);
            }
            if (fds[1].revents && !status) {
                status = parse_wait_status(c.wait.read_body(wh, kAnswerLimit));
                drain_ms = 2000;
            }
            if (fds[2].revents) {
                signalfd_siginfo si{};
                if (::read(sfd.get(), &si, sizeof si) == sizeof si && !status) {
                    const http::Response k = c.control.request(
                        "POST", "/containers/" + id + "/kill?signal=" + std::to_string(si.ssi_signo));
                    if (k.head.status != 204 && k.head.status != 409 && k.head.status != 404)
                        std::fprintf(stderr, "%swarning: signal %u not forwarded: %s\n", prefix.c_str(),
                                     si.ssi_signo, error_message(k.body).c_str());
                }
            }
        }
        return *status;
    } catch (...) {
        remove_container(c.control, id);
        throw;
    }
}

}  // namespace socker::launcher::engine
