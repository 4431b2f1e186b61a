#include "image/gc.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "base/error.hpp"
#include "base/file.hpp"
#include "image/formats.hpp"
#include "image/gc_detail.hpp"
#include "image/store.hpp"

namespace socker::image {

namespace fs = std::filesystem;
using namespace layout;

namespace gc {

NodeGuard::NodeGuard(const std::string& lock_path, bool wait) {
    if (!lock_path.empty()) {
        try {
            lock_.emplace(lock_path, wait ? LOCK_EX : LOCK_EX | LOCK_NB, true);
        } catch (const Error& e) {
            if (wait || e.err() != EWOULDBLOCK) throw;
            return;
        }
    }
    held_ = true;
    in_use_ = containers_in_use();
}

namespace {
// A layer is in use when a live import marked it (checked first) or a record lists it.
bool layer_in_use(const Paths& p, const std::string& d) {
    for (const auto& n : dir_names(p.tmp()))
        if (n.rfind("import-", 0) == 0 && exists_nofollow(p.tmp() + "/" + n + "/uses/" + d) &&
            import_alive(p.tmp() + "/" + n))
            return true;
    for (const auto& r : Store(p.root).list())
        if (std::find(r.layers.begin(), r.layers.end(), d) != r.layers.end()) return true;
    return false;
}
}  // namespace

CollectOutcome collect_layer(const Paths& p, const std::string& d, bool wait, const NodeGuard* guard) {
    std::optional<NodeGuard> own;
    if (!guard) {
        own.emplace(p.node_lock, wait);
        if (!own->held()) return {};
        guard = &*own;
    }
    std::optional<FileLock> lk;
    try {
        lk.emplace(p.bucket_lock(d), wait ? LOCK_EX : LOCK_EX | LOCK_NB);
    } catch (const Error& e) {
        if (!wait && e.err() == EWOULDBLOCK) return {};
        throw;
    }
    if (!exists_nofollow(p.layer(d))) {
        ::unlink(p.layer_info(d).c_str());
        return {};
    }
    if (layer_in_use(p, d)) return {};
    if (guard->in_use(d)) return {Collected::InUseByContainer, 0};
    unsigned long long bytes = Store(p.root).layer_size(d);
    const std::string trash = p.tmp() + "/gc-" + random_suffix();
    if (::rename(p.layer(d).c_str(), trash.c_str()) != 0) throw_errno("rename", p.layer(d), errno);
    ::unlink(p.layer_info(d).c_str());
    lk.reset();
    std::error_code ec;
    fs::remove_all(trash, ec);
    return {Collected::Removed, bytes};
}

// Work dirs of dead imports and trash of interrupted removals. Under the meta lock, so that no
// import is between creating its work dir and locking it.
unsigned sweep_tmp(const Paths& p) {
    FileLock meta(p.meta_lock());
    unsigned n = 0;
    for (const auto& name : dir_names(p.tmp())) {
        const std::string path = p.tmp() + "/" + name;
        if (name.rfind("import-", 0) == 0) {
            int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
            if (fd >= 0 && ::flock(fd, LOCK_EX | LOCK_NB) != 0) {
                ::close(fd);
                continue;  // alive
            }
            std::error_code ec;
            fs::remove_all(path, ec);
            if (fd >= 0) ::close(fd);
        } else {
            std::error_code ec;
            fs::remove_all(path, ec);
        }
        ++n;
    }
    // Half-written records and refs of a killed writer (written under this lock).
    for (const char* sub : {"/images", "/refs"})
        for (const auto& name : dir_names(p.root + sub))
            if (name.find(".tmp.") != std::string::npos) ::unlink((p.root + sub + "/" + name).c_str());
    return n;
}

unsigned collect_orphans(const Paths& p, bool wait) {
    unsigned removed = 0;
    std::set<std::string> used;
    for (const auto& r : Store(p.root).list()) used.insert(r.layers.begin(), r.layers.end());
    std::optional<NodeGuard> guard;  // taken at the first orphan: most calls find none
    for (const auto& name : dir_names(p.root + "/layers")) {
        if (formats::is_sha256_hex(name) && !used.count(name)) {
            if (!guard) guard.emplace(p.node_lock, wait);
            if (!guard->held()) return removed;
            if (collect_layer(p, name, wait, &*guard).what == Collected::Removed) ++removed;
        } else if (wait && name.size() == 69 && name.compare(64, 5, ".json") == 0 &&
                   !exists_nofollow(p.layer(name.substr(0, 64)))) {
            FileLock lk(p.bucket_lock(name.substr(0, 64)));
            if (!exists_nofollow(p.layer(name.substr(0, 64)))) ::unlink((p.root + "/layers/" + name).c_str());
        }
    }
    for (const auto& name : dir_names(p.root + "/aliases")) {
        auto target = read_hex_file(p.alias(name));
        if (!target || !exists_nofollow(p.layer(*target))) ::unlink(p.alias(name).c_str());
    }
    return removed;
}

// Squashfs files no record names (a removed image's, a build another node's won): under the
// store's lock, which a build holds from its rename to its record. A file a running container
// has loop-mounted stays readable through the open loop device until that container ends.
unsigned collect_squashfs(const Paths& p) {
    const std::string dir = p.root + "/squashfs";
    if (!exists_nofollow(dir)) return 0;
    FileLock meta(p.meta_lock());
    std::set<std::string> named;
    for (const auto& r : Store(p.root).list())
        if (!r.squashfs.empty()) named.insert(r.squashfs + ".sqfs");
    unsigned n = 0;
    for (const auto& name : dir_names(dir))
        if (name.size() == 69 && name.compare(64, 5, ".sqfs") == 0 && !named.count(name) &&
            ::unlink((dir + "/" + name).c_str()) == 0)
            ++n;
    return n;
}

}  // namespace gc

using namespace gc;

GcResult collect_garbage(const std::string& store_root, const GcOptions& opt) {
    Paths p{store_root, opt.node_lock};
    prepare_store(p);
    GcResult g;
    g.tmp_removed = sweep_tmp(p);
    g.layers_removed = collect_orphans(p, true);
    g.squashfs_removed = collect_squashfs(p);
    std::set<std::string> used;
    for (const auto& r : Store(p.root).list()) used.insert(r.layers.begin(), r.layers.end());
    for (const auto& name : dir_names(p.root + "/layers"))
        if (formats::is_sha256_hex(name) && !used.count(name)) ++g.layers_in_use;
    return g;
}

RemoveResult remove_image(const std::string& store_root, const ImageName& name, const GcOptions& opt) {
    Paths p{store_root, opt.node_lock};
    prepare_store(p);
    RemoveResult rr;
    ImageRecord rec;
    {
        FileLock meta(p.meta_lock());
        auto id = read_hex_file(p.ref(name));
        if (!id || !exists_nofollow(p.record(*id)))
            Store(store_root).find(name);  // throws, with a suggestion
        rec = record_from_json(read_store_file(p.record(*id)), p.record(*id));
        if (::unlink(p.ref(name).c_str()) != 0) throw_errno("unlink", p.ref(name), errno);
        rec.names.erase(std::remove(rec.names.begin(), rec.names.end(), name.str()), rec.names.end());
        if (rec.names.empty()) {
            if (::unlink(p.record(rec.id).c_str()) != 0) throw_errno("unlink", p.record(rec.id), errno);
            rr.record_removed = true;
        } else {
            write_atomically(p.record(rec.id), record_to_json(rec));
        }
    }
    if (rr.record_removed) {
        collect_squashfs(p);
        const NodeGuard guard(p.node_lock, true);
        for (const auto& l : rec.layers) {
            const CollectOutcome o = collect_layer(p, l, true, &guard);
            if (o.what == Collected::Removed) {
                ++rr.layers_removed;
                rr.bytes_freed += o.bytes;
            } else if (o.what == Collected::InUseByContainer) {
                ++rr.layers_in_use;
            }
        }
        if (rr.layers_in_use) rr.containers = guard.usage().containers_using(rec.layers);
    }
    sweep_tmp(p);
    collect_orphans(p, true);
    return rr;
}

}  // namespace socker::image
