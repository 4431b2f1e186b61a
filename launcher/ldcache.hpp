// The dynamic linker's cache, /etc/ld.so.cache (glibc's "glibc-ld.so.cache1.1" format, alone or
// after the old "ld.so-1.7.0" part), read and written as values (pure). Host MPI injection reads
// an image's cache to find its libraries (in a process dropped to the user: image data) and
// writes the container's own cache, with the injected libraries, without running ldconfig.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace socker::launcher::ldcache {

// glibc's flags (elf/cache.h): FLAG_ELF_LIBC6 | FLAG_X8664_LIB64 for x86-64 libraries.
inline constexpr int32_t kFlagElfLibc6 = 0x0003;
inline constexpr int32_t kFlagX8664Lib64 = 0x0300;

struct Entry {
    std::string key;   // the SONAME, e.g. "libmpich.so.12"
    std::string path;  // the file, e.g. "/lib/x86_64-linux-gnu/libmpich.so.12"
    int32_t flags = kFlagElfLibc6 | kFlagX8664Lib64;
    uint32_t osversion = 0;
    uint64_t hwcap = 0;
};

// Every entry of the new-format part, in file order. An empty cache is valid. A file in neither
// format, truncated, or with a string offset outside the file throws Error(Exit::BadImage)
// naming `origin` and what was wrong; never reads outside `bytes`.
std::vector<Entry> parse(std::string_view bytes, const std::string& origin);

// A cache file in the new format alone (as glibc >= 2.32 writes it), that glibc's ld.so reads:
// entries sorted the way ldconfig sorts them (ld.so searches them by bisection with
// _dl_cache_libcmp), duplicates of (key, flags, hwcap) removed, the last one given kept.
std::string write(std::vector<Entry> entries);

// glibc's _dl_cache_libcmp: names compared with runs of digits compared as numbers.
int libcmp(std::string_view a, std::string_view b);

}  // namespace socker::launcher::ldcache
