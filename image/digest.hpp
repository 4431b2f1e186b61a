// sha256 (libcrypto): the digests of blobs, layers and image configs.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "base/error.hpp"

namespace socker::image {

class Sha256 {
public:
    Sha256();
    ~Sha256();
    Sha256(const Sha256&) = delete;
    Sha256& operator=(const Sha256&) = delete;
    void update(const void* p, size_t n);
    std::string hex();  // finalises
private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};
std::string sha256_hex(const std::string& data);
// The sha256 of a whole file from its start (pread: the fd's offset is left alone). A read
// error: Error(`code`) naming `what`.
std::string sha256_of_fd(int fd, const std::string& what, Exit code = Exit::Io);

}  // namespace socker::image
