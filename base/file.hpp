// One bounded whole-file reader (every file the launcher reads into memory has a size limit) and
// one atomic whole-file writer.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <string>
#include <string_view>

#include "base/error.hpp"

namespace socker {

inline constexpr size_t kDefaultReadLimit = 16u << 20;

// Reads an fd to its end. More than `limit` bytes: Error(too_large) naming `what`. A read
// error: Error(Io) with errno.
std::string read_fd(int fd, const std::string& what, size_t limit = kDefaultReadLimit,
                    Exit too_large = Exit::Io);
// Opens (O_RDONLY | O_CLOEXEC | O_NOCTTY) and reads a file. A failed open throws Error(open_error)
// with errno (ENOENT included).
std::string read_file(const std::string& path, size_t limit = kDefaultReadLimit, Exit open_error = Exit::Io);
// A regular file mapped read-only, whole (at most `limit` bytes, else Error(open_error)); for the
// large files only a few parts of are read (ELF headers of a 40 MB library): reading it all
// into memory cost ~80 ms a launch. Unmapped when it goes.
class MappedFile {
public:
    MappedFile(const std::string& path, size_t limit, Exit open_error = Exit::Io);
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;
    ~MappedFile();
    std::string_view bytes() const { return {static_cast<const char*>(addr_), size_}; }

private:
    void* addr_ = nullptr;
    size_t size_ = 0;
};
// Write to <path>.tmp.<pid>, fsync, rename: readers see the old content or the new, whole.
// Throws Error(Io); the temporary file is gone either way.
void write_atomically(const std::string& path, const std::string& content, mode_t mode = 0644);

}  // namespace socker
