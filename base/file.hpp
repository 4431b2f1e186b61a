// One bounded whole-file reader (every file the launcher reads into memory has a size limit) and
// one atomic whole-file writer.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <string>

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
// Write to <path>.tmp.<pid>, fsync, rename: readers see the old content or the new, whole.
// Throws Error(Io); the temporary file is gone either way.
void write_atomically(const std::string& path, const std::string& content, mode_t mode = 0644);

}  // namespace socker
