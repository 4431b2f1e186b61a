// libFuzzer: one layer (any bytes: tar, gzip, zstd...) unpacked into a fresh directory inside a
// private sandbox. Refusals are socker::Error; the sandbox must hold nothing but that directory
// afterwards (no write escaped it), and nothing may crash or leak.
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "base/error.hpp"
#include "image/layer.hpp"

namespace fs = std::filesystem;
using namespace socker;
using namespace socker::image;

namespace {
const std::string& sandbox() {
    static const std::string dir = [] {
        std::string tmpl =
            (std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp") + std::string("/fuzz-layer-XXXXXX");
        if (!::mkdtemp(tmpl.data())) std::abort();
        return tmpl;
    }();
    return dir;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string dest = sandbox() + "/layer";
    std::error_code ec;
    fs::remove_all(dest, ec);
    if (::mkdir(dest.c_str(), 0755) != 0) std::abort();
    MemorySource src(std::string(reinterpret_cast<const char*>(data), size));
    try {
        unpack_layer(src, dest, "fuzz", UnpackOptions{});
    } catch (const Error&) {
    }
    // Only "layer" may exist in the sandbox: anything else escaped the layer directory.
    for (const auto& e : fs::directory_iterator(sandbox()))
        if (e.path().filename() != "layer") {
            std::fprintf(stderr, "escaped the layer directory: %s\n", e.path().c_str());
            std::abort();
        }
    fs::remove_all(dest, ec);
    return 0;
}
