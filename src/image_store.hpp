// The image store: content-addressed, unpacked layers that overlayfs stacks at launch, so a
// cached image launches in the same time whatever its size, and images sharing layers store
// them once.
//
//   <root>/layers/<diffid-hex>/      one unpacked layer (overlay-ready; whiteouts as 0/0 devices,
//                                    opaque directories marked with <ns>.overlay.opaque=y)
//   <root>/layers/<diffid-hex>.json  its size (content bytes, tar bytes)
//   <root>/aliases/<blob-hex>        "<diffid-hex>\n": a compressed blob already unpacked
//   <root>/images/<id-hex>.json      image record: layers, config (Env, Entrypoint, Cmd, ...)
//   <root>/refs/<escaped name>       "<id-hex>\n": NAME:TAG -> image
//   <root>/tmp/import-XXXXXX/        one import at work, flock(2)ed while it lives; uses/<diffid>
//                                    marks layers it relies on (garbage collection skips them)
//   <root>/locks/<00..ff>            flock(2): check-and-create of layers (bucket of the digest)
//   <root>/.lock                     flock(2): records and refs, creation of work dirs
//
// Crash safety: a layer appears by rename(2) of a fully unpacked directory, a record or ref by
// rename(2) of a fsync'ed file, and a record is written only once all its layers are in place.
// A killed import leaves a work dir and perhaps unreferenced layers; the next import or rm
// removes them. Layer file data is not fsync'ed (like tar -x, docker and containerd).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "env.hpp"

namespace socker::image {

struct ImageName {
    std::string repo;  // "demo", "myapp", "lab/solver"
    std::string tag;   // "latest" when not given
    std::string str() const { return repo + ":" + tag; }
};
// Validates before anything touches the filesystem: lowercase repo components of
// [a-z0-9._-] (no "..", no leading '.', '-' or '/'), tag [A-Za-z0-9_.-]{1,128}, 255 bytes max.
// Throws Error(Exit::Usage).
ImageName parse_image_name(const std::string& s);

// An image file as found at launch: its path (resolved) and identity.
struct FileIdentity {
    std::string path;
    unsigned long long dev = 0, ino = 0, size = 0, mtime_ns = 0, ctime_ns = 0;
};
// The name an image launched from a file is stored under: "file/<stem>:<key>", the stem from the
// file name (extensions .tar/.tar.gz/... dropped, lowercased letters and digits, every other run
// of bytes one '-', at most 64), the key 24 hex digits
// of the sha256 of the whole identity. An unchanged file is found again without being read; a
// rewritten, touched or replaced one (new size, mtime, ctime or inode) gets a new key: a new import.
ImageName name_for_file(const FileIdentity& f);

struct ImageConfig {
    std::vector<std::string> env;  // KEY=VALUE
    std::vector<std::string> entrypoint;
    std::vector<std::string> cmd;
    std::string working_dir;
    std::string user;  // recorded, never used: ranks run as the submitting user
};

struct ImageRecord {
    std::string id;                   // sha256 hex of the image config (docker's image id)
    std::vector<std::string> names;   // NAME:TAG pointing at it
    std::vector<std::string> layers;  // diff ids (sha256 hex), lowest first
    ImageConfig config;
    std::string created;              // RFC 3339, from the image or the import time
    std::string format;               // rootfs | docker-archive | oci
    std::string manifest_digest;      // sha256 hex of the OCI manifest, when there was one
    std::string architecture;
    unsigned long long size = 0;      // bytes of file content in its layers
};

std::string record_to_json(const ImageRecord& r);
ImageRecord record_from_json(const std::string& text, const std::string& origin);

class Store {
public:
    explicit Store(std::string root) : root_(std::move(root)) {}
    const std::string& root() const { return root_; }

    // Lookup by NAME[:TAG]; throws Error(Exit::BadImage) with a "did you mean" if absent.
    ImageRecord find(const ImageName& name) const;
    // Lookup without the error: nullopt when NAME is absent or one of its layers is missing.
    std::optional<ImageRecord> find_complete(const ImageName& name) const;
    std::vector<ImageRecord> list() const;
    std::string layer_dir(const std::string& diff_id) const { return root_ + "/layers/" + diff_id; }
    bool layer_present(const std::string& diff_id) const;
    // Content bytes of a stored layer (0 when unknown).
    unsigned long long layer_size(const std::string& diff_id) const;

private:
    // The one walk behind find (strict: throws why not) and find_complete (nullopt).
    std::optional<ImageRecord> lookup(const ImageName& name, bool strict) const;
    std::string root_;
};

// ------------------------------------------------------------------ import
// Where an image comes from. Exactly one of fd and open_layout is set.
struct ImportSource {
    std::string label;             // for messages: the file, "-", "layout:DIR"
    // A stream (regular file, pipe, stdin): a docker-archive, an OCI layout in a tar
    // (oci-archive, docker save >= 25) or a plain rootfs tarball; the outer tar may be
    // compressed. Detected from the content.
    int fd = -1;
    bool seekable = false;         // a regular file: a misdetected rootfs can be re-read
    unsigned long long size = 0;   // bytes when known (progress)
    // An OCI image layout directory: opens "index.json", "blobs/sha256/<hex>" relative to it,
    // for reading (the command opens them as the invoking user). Returns an fd or throws.
    std::function<int(const std::string& rel)> open_layout;
    std::string layout_tag;        // org.opencontainers.image.ref.name to select; "" = the only one
};

struct ImportProgress {
    unsigned long long bytes = 0;  // source bytes read so far
    unsigned long long total = 0;  // 0 when unknown (stdin)
    bool done = false;
};

// Limits against decompression bombs, for one whole import (admin config: import_max_*).
// 0 = no limit. The ratio is checked once a stream has produced more than 64 MiB.
struct ImportLimits {
    unsigned long long max_bytes = 0;  // file content written
    unsigned long long max_files = 0;  // entries created
    double max_ratio = 0;              // decompressed bytes per stored (compressed) byte
};

struct ImportOptions {
    std::function<void(const ImportProgress&)> progress;
    std::string xattr_ns;  // overlay xattr namespace: "" = trusted as root, user otherwise
    std::string node_lock;  // node_lock_path() of this store: garbage collection honours launches
    ImportLimits limits;
};

struct ImportResult {
    ImageRecord record;
    unsigned layers_unpacked = 0;  // layers this import wrote
    unsigned layers_reused = 0;    // layers already stored (not written again)
    double seconds = 0;
    unsigned long long bytes_read = 0;
    unsigned long dropped = 0;       // device nodes, FIFOs, sockets left out
    unsigned long suid_cleared = 0;  // setuid/setgid bits cleared
    std::vector<std::string> replaced;  // images that lost their last name to this import
};
// Needs write access to the store root (root for the admin store). Throws Error:
// BadImage for anything wrong with the image (nothing is kept), Io for the host (ENOSPC...).
ImportResult import_image(const std::string& store_root, const ImportSource& src, const ImageName& name,
                          const ImportOptions& opt = {});

// The image NAME names if it is complete; otherwise one import of `src` under NAME. Concurrent
// callers for the same NAME (64 ranks of a job launching from one image file) wait for the one
// import (flock on locks/name-<first 2 hex of sha256(NAME)>, taken only on a miss) and then use
// its result: one unpack. If that import fails it leaves locks/failed-<sha256(NAME)> (exit code,
// message) and the callers that waited for it throw that error instead of importing again; a
// killed import leaves none, and the next caller imports. `imported`: this caller did the import.
struct EnsureResult {
    ImageRecord record;
    std::optional<ImportResult> imported;
};
EnsureResult ensure_image(const std::string& store_root, const ImportSource& src, const ImageName& name,
                          const ImportOptions& opt = {});

// ------------------------------------------------------------------ layers in use
// A launch mounts its overlay with overlay_source(layers) as the mount source, so that every
// container on the node shows in its mountinfo which layers it stacks, for as long as any
// process is in its mount namespace (killed launchers, joined namespaces and forked children
// included, with no record to clean up). Garbage collection reads them (containers_in_use) and
// keeps those layers. Layers are named by the first 16 hex digits of their diff id.
std::string overlay_source(const std::vector<std::string>& layer_ids);
struct InUse {
    // one entry per container mount namespace: the layer prefixes it stacks
    std::vector<std::vector<std::string>> containers;
    // how many containers stack any of these layers (diff ids)
    unsigned containers_using(const std::vector<std::string>& layer_ids) const;
};
bool layer_used(const InUse& u, const std::string& diff_id);
// Scans /proc/*/mountinfo, one read per mount namespace (those of processes the caller may
// inspect: root sees all, a user their own).
InUse containers_in_use(const std::string& proc = "/proc");
// Parses one mountinfo text: the layer prefixes of each socker-mpi overlay in it.
std::vector<std::vector<std::string>> overlays_in_mountinfo(const std::string& mountinfo);
// The node-local lock file of a store (node-local: the store may be shared between nodes).
std::string node_lock_path(const std::string& state_dir, const std::string& store_root);

struct GcOptions {
    std::string node_lock;  // node_lock_path() of the store ("" = no running container checked)
};

struct RemoveResult {
    bool record_removed = false;      // false: the image keeps other names
    unsigned layers_removed = 0;
    unsigned long long bytes_freed = 0;
    unsigned layers_in_use = 0;       // kept: running containers on this node stack them
    unsigned containers = 0;          // ... that many
};
RemoveResult remove_image(const std::string& store_root, const ImageName& name, const GcOptions& opt = {});

// Removes what no image uses: layers, aliases, leftovers of killed imports. Safe while other
// imports run (layers they rely on are kept) and while containers run (theirs are kept).
struct GcResult {
    unsigned layers_removed = 0;
    unsigned tmp_removed = 0;
    unsigned layers_in_use = 0;       // no image lists them, but running containers stack them
};
GcResult collect_garbage(const std::string& store_root, const GcOptions& opt = {});

}  // namespace socker::image
