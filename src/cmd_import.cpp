// socker-mpi image import [--user] FILE|-|layout:DIR[:TAG] NAME[:TAG]
#include <fmt/core.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.hpp"
#include "base/fd.hpp"
#include "image/import.hpp"
#include "image/squashfs.hpp"
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

}  // namespace

int run_command(const ImportRequest& r, const Invocation&) {
    const Policy pol = load_admin_policy();
    const launcher::Identity id = host::current_identity();
    const image::ImageName name = image::parse_image_name(r.name);
    const TargetStore store = target_store(pol, id, r.user_store, true, "import into");

    image::ImportSource src;
    src.label = r.source;
    Fd closer;
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
    auto res = image::import_image(store.root, src, name, opt);
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
