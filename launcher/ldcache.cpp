// /etc/ld.so.cache as values (pure). Layout from glibc's sysdeps/generic/dl-cache.h, order from
// elf/cache.c (compare) and elf/dl-cache.c (search_cache): the file is in the host's byte order.
#include "launcher/ldcache.hpp"

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstring>
#include <map>
#include <set>
#include <tuple>

#include "base/error.hpp"

namespace socker::launcher::ldcache {
namespace {

constexpr std::string_view kMagicOld = "ld.so-1.7.0";           // struct cache_file
constexpr std::string_view kMagicNew = "glibc-ld.so.cache1.1";  // magic[17] + version[3]

// struct cache_file: magic[11], (pad), uint32 nlibs; then nlibs struct file_entry (3 x 4 bytes).
constexpr size_t kOldHeader = 16;
constexpr size_t kOldEntry = 12;
// struct cache_file_new: magic+version[20], nlibs, len_strings, flags, padding[3],
// extension_offset, unused[3]; then nlibs struct file_entry_new (flags, key, value,
// osversion_unused, hwcap).
constexpr size_t kNewHeader = 48;
constexpr size_t kNewEntry = 24;
constexpr size_t kNlibsAt = 20, kLenStringsAt = 24, kFlagsAt = 28;
// __alignof__ (struct cache_file_new) on the 64-bit targets (it holds a uint64_t): ALIGN_CACHE.
constexpr size_t kAlign = 8;
// cache_file_new.flags: the byte order the file was written in.
constexpr uint8_t kEndianMask = 3, kEndianUnset = 0, kEndianLittle = 2, kEndianBig = 3;
constexpr uint8_t kEndianCurrent = std::endian::native == std::endian::little ? kEndianLittle : kEndianBig;
// hwcap values that index the glibc-hwcaps extension (dl-cache.h DL_CACHE_HWCAP_EXTENSION,
// DL_CACHE_HWCAP_ISA_LEVEL_MASK).
constexpr uint64_t kHwcapExtension = 1ULL << 62;
constexpr uint32_t kIsaLevelMask = 0x3ff;

[[noreturn]] void bad(const std::string& origin, const std::string& what) {
    throw Error(Exit::BadImage, "read ld.so cache", origin, 0, what);
}

template <class T>
T get(std::string_view b, size_t off) {
    T v;
    std::memcpy(&v, b.data() + off, sizeof(T));
    return v;
}

template <class T>
void put(std::string& b, size_t off, T v) {
    std::memcpy(b.data() + off, &v, sizeof(T));
}

// The string at `off` from `base`, NUL-terminated inside the file.
std::string string_at(std::string_view b, size_t base, uint32_t off, const std::string& origin,
                      const char* what) {
    if (off >= b.size() - base)
        bad(origin, std::string(what) + " offset " + std::to_string(off) + " is outside the file");
    const size_t at = base + off;
    const void* nul = std::memchr(b.data() + at, '\0', b.size() - at);
    if (nul == nullptr)
        bad(origin, std::string(what) + " at " + std::to_string(off) + " is not NUL-terminated");
    return std::string(b.data() + at, static_cast<const char*>(nul));
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool hwcap_extension(uint64_t hwcap) { return ((hwcap >> 32) & ~kIsaLevelMask) == (kHwcapExtension >> 32); }

// ldconfig's compare(e1, e2) (elf/cache.c): < 0 when e1 comes first in the file.
int compare(const Entry& e1, const Entry& e2) {
    if (int res = libcmp(e2.key, e1.key); res != 0) return res;
    if (e1.flags != e2.flags) return e1.flags < e2.flags ? 1 : -1;
    // glibc-hwcaps entries first, by subdirectory (we know its index, not its name).
    const bool x1 = hwcap_extension(e1.hwcap), x2 = hwcap_extension(e2.hwcap);
    if (x1 != x2) return x1 ? -1 : 1;
    if (x1) {
        const auto i1 = static_cast<uint32_t>(e1.hwcap), i2 = static_cast<uint32_t>(e2.hwcap);
        if (i1 != i2) return i1 < i2 ? -1 : 1;
    } else {
        const int b1 = std::popcount(e1.hwcap), b2 = std::popcount(e2.hwcap);
        if (b1 != b2) return b2 > b1 ? 1 : -1;
        if (e1.hwcap != e2.hwcap) return e2.hwcap > e1.hwcap ? 1 : -1;
    }
    if (e1.osversion != e2.osversion) return e2.osversion > e1.osversion ? 1 : -1;
    return 0;
}

}  // namespace

int libcmp(std::string_view a, std::string_view b) {
    // As _dl_cache_libcmp on NUL-terminated strings: the view's end reads as NUL. Numbers wrap
    // as glibc's int arithmetic does on its targets, so that even absurd names sort the same.
    size_t i = 0, j = 0;
    auto at = [](std::string_view s, size_t k) { return k < s.size() ? s[k] : '\0'; };
    while (at(a, i) != '\0') {
        const char c1 = at(a, i), c2 = at(b, j);
        if (is_digit(c1)) {
            if (!is_digit(c2)) return 1;
            uint32_t v1 = 0, v2 = 0;
            while (is_digit(at(a, i))) v1 = v1 * 10 + static_cast<uint32_t>(at(a, i++) - '0');
            while (is_digit(at(b, j))) v2 = v2 * 10 + static_cast<uint32_t>(at(b, j++) - '0');
            if (v1 != v2) return static_cast<int32_t>(v1 - v2);
        } else if (is_digit(c2)) {
            return -1;
        } else if (c1 != c2) {
            return c1 - c2;
        } else {
            ++i;
            ++j;
        }
    }
    return at(a, i) - at(b, j);
}

std::vector<Entry> parse(std::string_view b, const std::string& origin) {
    size_t base = 0;  // the new-format header, the base of its string offsets
    if (b.substr(0, kMagicOld.size()) == kMagicOld) {
        if (b.size() < kOldHeader) bad(origin, "file too short for the ld.so-1.7.0 header");
        const uint32_t nold = get<uint32_t>(b, 12);
        if (nold > (b.size() - kOldHeader) / kOldEntry)
            bad(origin, std::to_string(nold) + " old-format entries do not fit in the file");
        const size_t old_end = kOldHeader + size_t{nold} * kOldEntry;
        base = (old_end + kAlign - 1) & ~(kAlign - 1);
        if (base > b.size() || b.substr(base, kMagicNew.size()) != kMagicNew) {
            // The old format alone (before glibc 2.2): strings follow its entries.
            std::vector<Entry> out;
            for (uint32_t i = 0; i < nold; ++i) {
                const size_t e = kOldHeader + size_t{i} * kOldEntry;
                Entry x;
                x.flags = get<int32_t>(b, e);
                x.key = string_at(b, old_end, get<uint32_t>(b, e + 4), origin, "library name");
                x.path = string_at(b, old_end, get<uint32_t>(b, e + 8), origin, "library path");
                x.hwcap = 0;
                out.push_back(std::move(x));
            }
            return out;
        }
    } else if (b.substr(0, kMagicNew.size()) != kMagicNew) {
        bad(origin, "not an ld.so cache (bad magic)");
    }
    if (b.size() - base < kNewHeader) bad(origin, "file too short for the glibc-ld.so.cache1.1 header");
    const uint8_t endian = static_cast<uint8_t>(b[base + kFlagsAt]) & kEndianMask;
    if (endian != kEndianUnset && endian != kEndianCurrent)
        bad(origin, "cache written for another byte order (flags " + std::to_string(endian) + ")");
    const uint32_t n = get<uint32_t>(b, base + kNlibsAt);
    if (n > (b.size() - base - kNewHeader) / kNewEntry)
        bad(origin, std::to_string(n) + " entries do not fit in the file");
    std::vector<Entry> out;
    out.reserve(n);
    for (uint32_t i = 0; i < n; ++i) {
        const size_t e = base + kNewHeader + size_t{i} * kNewEntry;
        Entry x;
        x.flags = get<int32_t>(b, e);
        x.key = string_at(b, base, get<uint32_t>(b, e + 4), origin, "library name");
        x.path = string_at(b, base, get<uint32_t>(b, e + 8), origin, "library path");
        x.osversion = get<uint32_t>(b, e + 12);
        x.hwcap = get<uint64_t>(b, e + 16);
        out.push_back(std::move(x));
    }
    return out;
}

std::string write(std::vector<Entry> entries) {
    // Duplicates of (key, flags, hwcap): the last one given wins.
    std::vector<Entry> kept;
    {
        std::set<std::tuple<std::string_view, int32_t, uint64_t>> seen;
        for (auto it = entries.rbegin(); it != entries.rend(); ++it)
            if (seen.emplace(it->key, it->flags, it->hwcap).second) kept.push_back(*it);
        std::reverse(kept.begin(), kept.end());
    }
    // ldconfig inserts each entry after all those that compare <= 0 with it: a stable sort.
    std::stable_sort(kept.begin(), kept.end(),
                     [](const Entry& a, const Entry& b) { return compare(a, b) < 0; });

    for (const auto& e : kept)
        if (e.key.find('\0') != std::string::npos || e.path.find('\0') != std::string::npos)
            throw Error(Exit::Internal, "write ld.so cache", e.key, 0, "NUL byte in a library name or path");

    // Strings after the entries, each once; offsets from the header's start.
    const size_t strings_at = kNewHeader + kept.size() * kNewEntry;
    std::string strings;
    std::map<std::string_view, uint32_t> offsets;
    auto intern = [&](const std::string& s) {
        auto [it, fresh] = offsets.emplace(s, 0);
        if (fresh) {
            it->second = static_cast<uint32_t>(strings_at + strings.size());
            strings.append(s).push_back('\0');
        }
        return it->second;
    };
    std::vector<std::pair<uint32_t, uint32_t>> refs;
    for (const auto& e : kept) {
        const uint32_t key = intern(e.key);
        refs.emplace_back(key, intern(e.path));
    }
    if (strings_at + strings.size() > UINT32_MAX)
        throw Error(Exit::Internal, "write ld.so cache", {}, 0, "cache larger than 4 GiB");

    std::string out(strings_at, '\0');
    std::memcpy(out.data(), kMagicNew.data(), kMagicNew.size());
    put<uint32_t>(out, kNlibsAt, static_cast<uint32_t>(kept.size()));
    put<uint32_t>(out, kLenStringsAt, static_cast<uint32_t>(strings.size()));
    out[kFlagsAt] = static_cast<char>(kEndianCurrent);
    // extension_offset (32) stays 0: no extensions (no glibc-hwcaps subdirectories, generator).
    for (size_t i = 0; i < kept.size(); ++i) {
        const size_t e = kNewHeader + i * kNewEntry;
        put<int32_t>(out, e, kept[i].flags);
        put<uint32_t>(out, e + 4, refs[i].first);
        put<uint32_t>(out, e + 8, refs[i].second);
        put<uint32_t>(out, e + 12, kept[i].osversion);
        put<uint64_t>(out, e + 16, kept[i].hwcap);
    }
    out += strings;
    return out;
}

}  // namespace socker::launcher::ldcache
