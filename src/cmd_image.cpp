// socker-mpi image import|ls|rm|inspect
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>

#include "commands.hpp"
#include "error.hpp"
#include "host.hpp"
#include "image_store.hpp"
#include "launcher/linux_sys.hpp"

namespace socker {

namespace {

// "layout:DIR[:TAG]" -> DIR, TAG (TAG: what follows the last ':' when it looks like a tag).
std::pair<std::string, std::string> split_layout(const std::string& spec) {
    static const std::regex tag_re(R"(^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$)");
    auto colon = spec.rfind(':');
    if (colon != std::string::npos && colon > 0 && std::regex_match(spec.substr(colon + 1), tag_re))
        return {spec.substr(0, colon), spec.substr(colon + 1)};
    return {spec, ""};
}

std::string human_bytes(double b) {
    char buf[32];
    if (b >= 1e9) std::snprintf(buf, sizeof buf, "%.2f GB", b / 1e9);
    else if (b >= 1e6) std::snprintf(buf, sizeof buf, "%.1f MB", b / 1e6);
    else if (b >= 1e3) std::snprintf(buf, sizeof buf, "%.1f kB", b / 1e3);
    else std::snprintf(buf, sizeof buf, "%.0f B", b);
    return buf;
}

// A progress bar on a terminal: bytes read, percentage when the size is known, and rate.
class ProgressBar {
public:
    explicit ProgressBar(std::string what) : what_(std::move(what)) {}
    void update(const image::ImportProgress& p) {
        auto now = std::chrono::steady_clock::now();
        if (!p.done && now - last_ < std::chrono::milliseconds(100)) return;
        last_ = now;
        double secs = std::chrono::duration<double>(now - start_).count();
        double mib = static_cast<double>(p.bytes) / 1048576.0;
        double rate = secs > 0 ? mib / secs : 0.0;
        if (p.total > 0) {
            double frac = std::min(1.0, static_cast<double>(p.bytes) / static_cast<double>(p.total));
            const int width = 30;
            int fill = static_cast<int>(frac * width);
            std::string bar(static_cast<size_t>(fill), '=');
            if (fill < width) bar += '>';
            bar.resize(width, ' ');
            std::fprintf(stderr, "\r\033[K%s [%s] %3d%% %7.1f/%.1f MiB %7.1f MiB/s", what_.c_str(), bar.c_str(),
                         static_cast<int>(frac * 100), mib, static_cast<double>(p.total) / 1048576.0, rate);
        } else {
            std::fprintf(stderr, "\r\033[K%s %7.1f MiB %7.1f MiB/s", what_.c_str(), mib, rate);
        }
        shown_ = true;
    }
    void clear() {
        if (shown_) std::fprintf(stderr, "\r\033[K");
        shown_ = false;
    }
    ~ProgressBar() { clear(); }

private:
    std::string what_;
    std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now(), last_{};
    bool shown_ = false;
};

// Drops to the invoking user for good, with the launcher's own steps and check (bounding set,
// groups, gid, uid, then verify that nothing of root is left).
void become_user(const launcher::Identity& id) {
    launcher::LinuxSys sys;
    launcher::drop_privileges(id, sys);
}

// Where an image command acts: the admin store (checking who may change it), or the user's,
// where everything is done as the user: this then drops privileges for good. node_lock: the
// store's node-local lock (host::ensure_store_lock), made as root before any drop, for the
// commands that change the store.
struct TargetStore {
    std::string root;
    std::string node_lock;
};
TargetStore target_store(const Policy& pol, const launcher::Identity& id, bool user, bool change, const char* what) {
    if (user) {
        if (!pol.user_store)
            throw_refused("--user", "per-user image stores are disabled by the admin (user_store = no)");
        TargetStore t{user_store_path(id, false), ""};  // refuses a user without a home before dropping
        if (change) t.node_lock = host::ensure_store_lock(pol, t.root);
        become_user(id);
        user_store_path(id, change);
        return t;
    }
    if (change && pol.import_admin_store == "root" && id.uid != 0)
        throw_refused(std::string(what) + " " + pol.image_store,
                      "only root may change the admin store" + std::string(pol.user_store ? " (use --user for your own store)" : ""));
    return {pol.image_store, change ? host::ensure_store_lock(pol, pol.image_store) : ""};
}

}  // namespace

std::string user_store_path(const launcher::Identity& id, bool create) {
    if (id.home.empty() || id.home[0] != '/' || id.home == "/")
        throw Error(Exit::Refused, "per-user store", id.name, 0, "the user has no home directory");
    std::string root = id.home;
    for (const char* part : {"/.local", "/.local/share", "/.local/share/socker-mpi", "/.local/share/socker-mpi/images"}) {
        root = id.home + part;
        if (create && ::mkdir(root.c_str(), 0700) != 0 && errno != EEXIST) throw_errno("mkdir", root, errno);
    }
    return root;
}

void print_import_summary(const std::string& prefix, const std::string& what, const image::ImportResult& res) {
    const auto& rec = res.record;
    std::string extra;
    if (res.dropped) extra += "; left out " + std::to_string(res.dropped) + " device node(s)/FIFO(s)/socket(s)";
    if (res.suid_cleared) extra += "; cleared setuid/setgid on " + std::to_string(res.suid_cleared) + " file(s)";
    double mib = static_cast<double>(res.bytes_read) / 1048576.0;
    std::fprintf(stderr, "%simported %s (%s): sha256:%.12s, %zu layer(s): %u unpacked, %u already stored; %s read in %.2f s (%.0f MiB/s)%s\n",
                 prefix.c_str(), what.c_str(), rec.format.c_str(), rec.id.c_str(), rec.layers.size(), res.layers_unpacked,
                 res.layers_reused, human_bytes(static_cast<double>(res.bytes_read)).c_str(), res.seconds,
                 res.seconds > 0 ? mib / res.seconds : 0.0, extra.c_str());
}

std::optional<ProgressCallback> progress_bar_for(const std::string& what) {
    if (!::isatty(2)) return std::nullopt;
    auto bar = std::make_shared<ProgressBar>(what);
    return ProgressCallback([bar](const image::ImportProgress& p) {
        bar->update(p);
        if (p.done) bar->clear();
    });
}

int run_command(const ImportRequest& r, const Invocation&) {
    const Policy pol = load_admin_policy();
    const launcher::Identity id = host::current_identity();
    const image::ImageName name = image::parse_image_name(r.name);
    const TargetStore store = target_store(pol, id, r.user_store, true, "import into");

    image::ImportSource src;
    src.label = r.source;
    launcher::Fd closer;
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
    } else {
        if (r.source == "-" && ::isatty(0))
            throw_usage("refusing to read an image from a terminal: pipe one in (docker save IMAGE | ...) or give a file");
        closer.fd = host::open_source_as_user(r.source, id);
        struct stat st {};
        if (::fstat(closer.fd, &st) == 0 && S_ISREG(st.st_mode)) {
            src.seekable = true;
            src.size = static_cast<unsigned long long>(st.st_size);
        }
        src.fd = closer.fd;
    }

    image::ImportOptions opt = import_options(pol, store.node_lock);
    if (auto cb = progress_bar_for("importing " + name.str())) opt.progress = *cb;
    auto res = image::import_image(store.root, src, name, opt);
    print_import_summary("", name.str(), res);
    std::printf("sha256:%s\n", res.record.id.c_str());
    return 0;
}

int run_command(const ImageListRequest& r, const Invocation&) {
    const Policy pol = load_admin_policy();
    image::Store store(target_store(pol, host::current_identity(), r.user_store, false, "list").root);
    struct Row {
        std::string name, tag, digest, size, created;
    };
    std::vector<Row> rows;
    for (const auto& rec : store.list())
        for (const auto& n : rec.names) {
            auto colon = n.rfind(':');
            rows.push_back({n.substr(0, colon), n.substr(colon + 1), "sha256:" + rec.id.substr(0, 12),
                            human_bytes(static_cast<double>(rec.size)), rec.created});
        }
    std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
        return std::tie(a.name, a.tag) < std::tie(b.name, b.tag);
    });
    std::printf("%-30s %-24s %-19s %10s  %s\n", "NAME", "TAG", "DIGEST", "SIZE", "CREATED");
    for (const auto& row : rows)
        std::printf("%-30s %-24s %-19s %10s  %s\n", row.name.c_str(), row.tag.c_str(), row.digest.c_str(),
                    row.size.c_str(), row.created.c_str());
    return 0;
}

int run_command(const ImageRemoveRequest& r, const Invocation&) {
    const Policy pol = load_admin_policy();
    const launcher::Identity id = host::current_identity();
    const image::ImageName name = image::parse_image_name(r.name);
    const TargetStore store = target_store(pol, id, r.user_store, true, "rm from");
    auto res = image::remove_image(store.root, name, {store.node_lock});
    if (res.record_removed)
        std::printf("removed %s; %u unused layer(s) deleted, %s freed\n", name.str().c_str(), res.layers_removed,
                    human_bytes(static_cast<double>(res.bytes_freed)).c_str());
    else
        std::printf("untagged %s (the image keeps its other names)\n", name.str().c_str());
    if (res.layers_in_use)
        std::printf("%s is still in use by %u running container(s) on this node: %u of its layer(s) stay until "
                    "they end (then `socker-mpi image gc`, or the next import or rm, removes them)\n",
                    name.str().c_str(), res.containers, res.layers_in_use);
    return 0;
}

int run_command(const ImageGcRequest& r, const Invocation&) {
    const Policy pol = load_admin_policy();
    const TargetStore store = target_store(pol, host::current_identity(), r.user_store, true, "gc of");
    const auto res = image::collect_garbage(store.root, {store.node_lock});
    std::printf("removed %u unused layer(s) and %u leftover(s) of interrupted imports", res.layers_removed,
                res.tmp_removed);
    if (res.layers_in_use) std::printf("; %u unlisted layer(s) kept: running containers use them", res.layers_in_use);
    std::printf("\n");
    return 0;
}

int run_command(const ImageInspectRequest& r, const Invocation&) {
    const Policy pol = load_admin_policy();
    const image::ImageName name = image::parse_image_name(r.name);
    image::Store store(pol.image_store);
    image::ImageRecord rec;
    try {
        rec = store.find(name);
    } catch (const Error& e) {
        // Not in the admin store: the user's own store, read as the user.
        if (e.code() != Exit::BadImage || !pol.user_store) throw;
        const launcher::Identity id = host::current_identity();
        std::string root;
        try {
            root = user_store_path(id, false);
        } catch (const Error&) {
            throw e;  // no home: only the admin store's answer
        }
        struct stat st {};
        if (::stat(root.c_str(), &st) != 0) throw;
        store = image::Store(target_store(pol, id, true, false, "inspect").root);
        try {
            rec = store.find(name);
        } catch (const Error&) {
            throw e;
        }
    }
    nlohmann::ordered_json j;
    j["Id"] = "sha256:" + rec.id;
    j["RepoTags"] = rec.names;
    j["ManifestDigest"] = rec.manifest_digest.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json("sha256:" + rec.manifest_digest);
    j["Created"] = rec.created;
    j["Format"] = rec.format;
    j["Architecture"] = rec.architecture;
    j["Size"] = rec.size;
    j["Config"] = {{"Env", rec.config.env},
                   {"Entrypoint", rec.config.entrypoint},
                   {"Cmd", rec.config.cmd},
                   {"WorkingDir", rec.config.working_dir},
                   {"User", rec.config.user}};
    nlohmann::ordered_json layers = nlohmann::ordered_json::array();
    for (const auto& l : rec.layers)
        layers.push_back({{"DiffID", "sha256:" + l}, {"Size", store.layer_size(l)}, {"Dir", store.layer_dir(l)}});
    j["Layers"] = layers;
    std::cout << j.dump(2) << "\n";
    return 0;
}

}  // namespace socker
