// libFuzzer: a whole import from a stream (format detection, docker-archive / OCI archive
// resolution, verification, store commit) into a scratch store, emptied between runs.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "base/error.hpp"
#include "image/gc.hpp"
#include "image/import.hpp"
#include "image/store.hpp"

namespace fs = std::filesystem;
using namespace socker;
using namespace socker::image;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const std::string base = [] {
        std::string tmpl =
            (std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp") + std::string("/fuzz-import-XXXXXX");
        if (!::mkdtemp(tmpl.data())) std::abort();
        return tmpl;
    }();
    const std::string store = base + "/store";
    const std::string input = base + "/input";
    FILE* f = std::fopen(input.c_str(), "wb");
    if (!f || std::fwrite(data, 1, size, f) != size || std::fclose(f) != 0) std::abort();
    ImportSource src;
    src.label = "fuzz";
    src.fd = ::open(input.c_str(), O_RDONLY | O_CLOEXEC);
    src.seekable = true;
    src.size = size;
    try {
        import_image(store, src, ImageName{"fuzz", "latest"});
        Store(store).find(ImageName{"fuzz", "latest"});
        remove_image(store, ImageName{"fuzz", "latest"});
    } catch (const Error&) {
    }
    ::close(src.fd);
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(base))
        if (e.path().filename() != "store" && e.path().filename() != "input") std::abort();
    fs::remove_all(store, ec);
    return 0;
}
