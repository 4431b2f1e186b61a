#include "image/digest.hpp"

#include <openssl/evp.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "base/error.hpp"

namespace socker::image {

struct Sha256::Impl {
    EVP_MD_CTX* ctx = nullptr;
};

Sha256::Sha256() : impl_(std::make_unique<Impl>()) {
    impl_->ctx = EVP_MD_CTX_new();
    if (!impl_->ctx || EVP_DigestInit_ex(impl_->ctx, EVP_sha256(), nullptr) != 1)
        throw Error(Exit::Internal, "sha256", "init");
}
Sha256::~Sha256() { EVP_MD_CTX_free(impl_->ctx); }
void Sha256::update(const void* p, size_t n) {
    if (n > 0) EVP_DigestUpdate(impl_->ctx, p, n);
}
std::string Sha256::hex() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(impl_->ctx, md, &n);
    static const char* d = "0123456789abcdef";
    std::string s;
    for (unsigned i = 0; i < n; ++i) {
        s += d[md[i] >> 4];
        s += d[md[i] & 15];
    }
    return s;
}
std::string sha256_hex(const std::string& data) {
    Sha256 h;
    h.update(data.data(), data.size());
    return h.hex();
}

std::string sha256_of_fd(int fd, const std::string& what, Exit code) {
    Sha256 h;
    std::vector<char> buf(1u << 20);
    for (off_t off = 0;;) {
        const ssize_t n = ::pread(fd, buf.data(), buf.size(), off);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw_errno("read", what, errno, code);
        if (n == 0) break;
        h.update(buf.data(), static_cast<size_t>(n));
        off += n;
    }
    return h.hex();
}

}  // namespace socker::image
