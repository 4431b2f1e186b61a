#include "image/digest.hpp"

#include <openssl/evp.h>

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

}  // namespace socker::image
