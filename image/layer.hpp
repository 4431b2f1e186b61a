// Layers: a tar stream (uncompressed, gzip, zstd, xz or bzip2) read with libarchive, hashed as
// it is read and unpacked into one directory that overlayfs can stack:
//   - `.wh.NAME` whiteouts become 0/0 character devices, `.wh..wh..opq` an opaque directory
//     (xattr <ns>.overlay.opaque=y; ns is "trusted" for root, "user" otherwise);
//   - entries with ".." or absolute paths, writes through symlinks and hard links through
//     symlinks or out of the layer are refused (the whole layer fails);
//   - device nodes, FIFOs and sockets are dropped; setuid/setgid bits are cleared; xattrs
//     (file capabilities included), ACLs and file flags are not restored;
//   - ownership (numeric), modes and mtimes are kept when run as root.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "image/digest.hpp"
#include "image/import.hpp"

struct archive;
struct archive_entry;

namespace socker::image {

// A pull-style byte source feeding libarchive: next() returns the next block (0 at the end)
// and throws socker::Error on failure. `consumed` counts the bytes handed out.
class ByteSource {
public:
    virtual ~ByteSource() = default;
    virtual size_t next(const void** data) = 0;
    unsigned long long consumed = 0;
};

// Reads an fd. `on_read` (optional) is called with the byte count of every block (progress).
class FdSource final : public ByteSource {
public:
    FdSource(int fd, std::string label, std::function<void(size_t)> on_read = {});
    size_t next(const void** data) override;

private:
    int fd_;
    std::string label_;
    std::function<void(size_t)> on_read_;
    std::vector<char> buf_;
};

// The bytes of an in-memory string (tests, fuzzing).
class MemorySource final : public ByteSource {
public:
    explicit MemorySource(std::string data) : data_(std::move(data)) {}
    size_t next(const void** data) override;

private:
    std::string data_;
    size_t off_ = 0;
};

class TarStream;

// The data of the current entry of a tar being read (a layer stored inside an image archive).
// The first block can be looked at before the data is consumed (peek).
class EntrySource final : public ByteSource {
public:
    EntrySource(TarStream& outer, std::string label) : outer_(outer), label_(std::move(label)) {}
    size_t next(const void** data) override;
    // First byte of the data, or -1 when the entry is empty.
    int peek();

private:
    size_t read_block(const void** data);
    TarStream& outer_;
    std::string label_;
    long long expect_off_ = 0;
    const void* peeked_ = nullptr;
    size_t peeked_n_ = 0;
    bool have_peek_ = false, eof_ = false;
};

struct StreamDigests {
    std::string raw;    // sha256 of the bytes as stored (compressed): an OCI blob digest
    std::string plain;  // sha256 of the decompressed tar: the layer's diff id
    unsigned long long raw_bytes = 0, plain_bytes = 0;
    bool compressed = false;
};

// src -> decompression (detected) -> tar entries, hashing both the stored and the
// decompressed bytes. Entries are read with next(); their data with archive_read_data*(tar()).
class TarStream {
public:
    TarStream(ByteSource& src, std::string label);
    ~TarStream();
    TarStream(const TarStream&) = delete;
    TarStream& operator=(const TarStream&) = delete;
    archive_entry* next();  // nullptr at the end of the archive
    archive* tar() { return tar_.get(); }
    // After next() returned nullptr: reads whatever follows the end-of-archive marker (it is
    // part of the blob) and returns the digests.
    StreamDigests finish();
    const std::string& label() const { return label_; }
    // Rethrows the source's own error if it failed inside libarchive, else throws BadImage
    // with libarchive's message for `a`.
    [[noreturn]] void fail(archive* a, const std::string& what);
    // A compressed stream that expands more than max_ratio times its stored size (once past
    // 64 MiB) fails with BadImage naming import_max_ratio. 0 = no limit.
    void limit_ratio(double max_ratio);

    // libarchive callback glue (public for the C callbacks).
    struct Glue;

private:
    using ArchivePtr = std::unique_ptr<archive, int (*)(archive*)>;
    std::unique_ptr<Glue> glue_;
    // Members, not raw pointers: a throwing constructor still frees them (tar_ before raw_).
    ArchivePtr raw_;  // format "raw" + decompression filters over src
    ArchivePtr tar_;  // format tar over the decompressed stream
    std::string label_;
};

// Drains a source, returning its sha256 and length (a blob whose layer is already stored).
StreamDigests hash_source(ByteSource& src);
// Drains a layer source without unpacking it: both digests (decompressing if needed).
StreamDigests digest_layer(ByteSource& src, const std::string& label);

// What one import has written so far, against its ImportLimits (every layer counts).
class ImportBudget {
public:
    explicit ImportBudget(ImportLimits limits = {}) : limits_(limits) {}
    const ImportLimits& limits() const { return limits_; }
    // Throw Error(BadImage) naming the limit (import_max_bytes, import_max_files) when passed.
    void add_bytes(unsigned long long n, const std::string& what);
    void add_file(const std::string& what);

private:
    ImportLimits limits_;
    unsigned long long bytes_ = 0, files_ = 0;
};

struct UnpackOptions {
    std::string xattr_ns;            // "trusted" or "user"; "" = by euid
    bool restore_owner = true;       // numeric uid/gid from the tar, when root
    ImportBudget* budget = nullptr;  // limits of the whole import (nullptr: none)
};
struct UnpackStats {
    unsigned long long content_bytes = 0;  // regular file data written
    unsigned long files = 0;               // entries created (whiteouts included)
    unsigned long dropped = 0;             // device nodes, FIFOs, sockets, odd whiteouts
    unsigned long suid_cleared = 0;        // setuid/setgid bits cleared
};

// Unpacks the entries of `ts`, starting with `first` (already read by the caller, may be
// nullptr for an empty archive), into `dest`, an existing empty directory.
UnpackStats unpack_entries(TarStream& ts, archive_entry* first, const std::string& dest,
                           const UnpackOptions& opt);

// Convenience: one layer from a source into dest; returns the digests with the stats.
struct LayerResult {
    StreamDigests digests;
    UnpackStats stats;
};
// (The ratio limit of opt.budget applies to the layer's decompression.)
LayerResult unpack_layer(ByteSource& src, const std::string& dest, const std::string& label,
                         const UnpackOptions& opt);

}  // namespace socker::image
