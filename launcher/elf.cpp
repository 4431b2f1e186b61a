// ELF dynamic-section reader (pure). Every field is copied out of `bytes` with memcpy after a
// bounds check, in the file's byte order; no pointer into the data is ever dereferenced.
#include "launcher/elf.hpp"

#include <elf.h>

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <type_traits>

#include "base/error.hpp"

namespace socker::launcher::elf {
namespace {

[[noreturn]] void bad(const std::string& origin, const std::string& what) {
    throw Error(Exit::BadImage, "read ELF", origin, 0, what);
}

std::string hex(uint64_t v) {
    static const char digits[] = "0123456789abcdef";
    std::string s;
    do {
        s.insert(s.begin(), digits[v & 0xf]);
        v >>= 4;
    } while (v != 0);
    return "0x" + s;
}

// Bounds-checked, byte-order-aware access to the file's bytes.
class Reader {
public:
    Reader(std::string_view bytes, const std::string& origin, bool big)
        : bytes_(bytes), origin_(origin), big_(big) {}

    size_t size() const { return bytes_.size(); }
    const std::string& origin() const { return origin_; }
    [[noreturn]] void fail(const std::string& what) const { bad(origin_, what); }

    // base + add, or an error naming `what` on overflow.
    uint64_t add(uint64_t base, uint64_t add, const char* what) const {
        if (add > UINT64_MAX - base) fail(std::string(what) + " offset overflows");
        return base + add;
    }

    // True when [off, off + len) lies inside the file.
    bool contains(uint64_t off, uint64_t len) const { return off <= size() && len <= size() - off; }

    void need(uint64_t off, uint64_t len, const char* what) const {
        if (!contains(off, len))
            fail(std::string(what) + " at " + hex(off) + " (" + std::to_string(len) +
                 " bytes) is outside the file (" + std::to_string(size()) + " bytes)");
    }

    template <class T>
    T get(uint64_t base, size_t field, const char* what) const {
        static_assert(std::is_integral_v<T>);
        const uint64_t off = add(base, field, what);
        need(off, sizeof(T), what);
        T v;
        std::memcpy(&v, bytes_.data() + off, sizeof(T));
        if (big_ != (std::endian::native == std::endian::big)) v = swap(v);
        return v;
    }

    // The NUL-terminated string at `off`, which must end before `end` (<= the file size).
    std::string cstr(uint64_t off, uint64_t end, const char* what) const {
        if (end > size()) end = size();
        if (off >= end) fail(std::string(what) + " at " + hex(off) + " is outside its string table");
        const void* nul = std::memchr(bytes_.data() + off, '\0', end - off);
        if (nul == nullptr) fail(std::string(what) + " at " + hex(off) + " is not NUL-terminated");
        return std::string(bytes_.data() + off, static_cast<const char*>(nul));
    }

private:
    template <class T>
    static T swap(T v) {
        using U = std::make_unsigned_t<T>;
        U u = static_cast<U>(v), r = 0;
        for (size_t i = 0; i < sizeof(T); ++i) {
            r = static_cast<U>((r << 8) | (u & 0xff));
            u = static_cast<U>(u >> 8);
        }
        return static_cast<T>(r);
    }

    std::string_view bytes_;
    const std::string& origin_;
    bool big_;
};

#define SOCKER_FIELD(r, base, Type, member, what) \
    (r).get<decltype(Type::member)>((base), offsetof(Type, member), (what))

struct Elf32 {
    using Ehdr = Elf32_Ehdr;
    using Phdr = Elf32_Phdr;
    using Shdr = Elf32_Shdr;
    using Dyn = Elf32_Dyn;
    using Word = Elf32_Word;  // d_un
};
struct Elf64 {
    using Ehdr = Elf64_Ehdr;
    using Phdr = Elf64_Phdr;
    using Shdr = Elf64_Shdr;
    using Dyn = Elf64_Dyn;
    using Word = Elf64_Xword;
};

// A file range with the address it is loaded at (PT_LOAD segment or SHF_ALLOC section).
struct Mapping {
    uint64_t vaddr, offset, size;
};

// Where the dynamic entries are and how addresses map to file offsets.
struct Layout {
    std::optional<Mapping> dynamic;  // file range of the dynamic entries
    std::vector<Mapping> maps;
};

template <class E>
Layout layout(const Reader& r) {
    using Ehdr = typename E::Ehdr;
    using Phdr = typename E::Phdr;
    using Shdr = typename E::Shdr;
    Layout out;
    const uint64_t phoff = SOCKER_FIELD(r, 0, Ehdr, e_phoff, "ELF header");
    const unsigned phentsize = SOCKER_FIELD(r, 0, Ehdr, e_phentsize, "ELF header");
    uint64_t phnum = SOCKER_FIELD(r, 0, Ehdr, e_phnum, "ELF header");
    const uint64_t shoff = SOCKER_FIELD(r, 0, Ehdr, e_shoff, "ELF header");
    const unsigned shentsize = SOCKER_FIELD(r, 0, Ehdr, e_shentsize, "ELF header");
    uint64_t shnum = SOCKER_FIELD(r, 0, Ehdr, e_shnum, "ELF header");

    // Section headers are read only when needed: stripped files may carry none or garbage.
    auto sections = [&]() -> uint64_t {
        if (shoff == 0) return 0;
        if (shentsize != sizeof(Shdr))
            r.fail("e_shentsize is " + std::to_string(shentsize) + ", expected " +
                   std::to_string(sizeof(Shdr)));
        if (shnum == 0) shnum = SOCKER_FIELD(r, shoff, Shdr, sh_size, "section header 0");
        if (shnum > r.size() / sizeof(Shdr))
            r.fail("section header count " + std::to_string(shnum) + " is too large");
        r.need(shoff, shnum * sizeof(Shdr), "section header table");
        return shnum;
    };

    if (phnum == PN_XNUM) {
        if (shoff == 0) r.fail("e_phnum is PN_XNUM without section headers");
        phnum = SOCKER_FIELD(r, shoff, Shdr, sh_info, "section header 0");
    }
    if (phnum != 0 && phoff != 0) {
        if (phentsize != sizeof(Phdr))
            r.fail("e_phentsize is " + std::to_string(phentsize) + ", expected " +
                   std::to_string(sizeof(Phdr)));
        if (phnum > r.size() / sizeof(Phdr))
            r.fail("program header count " + std::to_string(phnum) + " is too large");
        r.need(phoff, phnum * sizeof(Phdr), "program header table");
        for (uint64_t i = 0; i < phnum; ++i) {
            const uint64_t ph = phoff + i * sizeof(Phdr);
            const auto type = SOCKER_FIELD(r, ph, Phdr, p_type, "program header");
            if (type != PT_LOAD && type != PT_DYNAMIC) continue;
            const Mapping m{SOCKER_FIELD(r, ph, Phdr, p_vaddr, "program header"),
                            SOCKER_FIELD(r, ph, Phdr, p_offset, "program header"),
                            SOCKER_FIELD(r, ph, Phdr, p_filesz, "program header")};
            if (type == PT_LOAD) {
                out.maps.push_back(m);
            } else if (!out.dynamic) {
                r.need(m.offset, m.size, "PT_DYNAMIC segment");
                out.dynamic = m;
            }
        }
    }
    // Program headers are what the loader uses: without PT_DYNAMIC the file is static.
    if (phnum != 0 && phoff != 0 && (!out.dynamic || !out.maps.empty())) return out;

    // No program headers (or no PT_LOAD to map addresses with): the section headers (.dynamic, SHF_ALLOC
    // sections for addresses).
    const uint64_t n = sections();
    for (uint64_t i = 0; i < n; ++i) {
        const uint64_t sh = shoff + i * sizeof(Shdr);
        const auto type = SOCKER_FIELD(r, sh, Shdr, sh_type, "section header");
        const uint64_t flags = SOCKER_FIELD(r, sh, Shdr, sh_flags, "section header");
        const Mapping m{SOCKER_FIELD(r, sh, Shdr, sh_addr, "section header"),
                        SOCKER_FIELD(r, sh, Shdr, sh_offset, "section header"),
                        SOCKER_FIELD(r, sh, Shdr, sh_size, "section header")};
        if (type == SHT_DYNAMIC && !out.dynamic) {
            r.need(m.offset, m.size, ".dynamic section");
            out.dynamic = m;
        }
        if ((flags & SHF_ALLOC) != 0 && type != SHT_NOBITS) out.maps.push_back(m);
    }
    return out;
}

// The file offset of address `addr`, through the mappings.
uint64_t to_offset(const Reader& r, const std::vector<Mapping>& maps, uint64_t addr, const char* what) {
    for (const auto& m : maps) {
        if (addr >= m.vaddr && addr - m.vaddr < m.size) {
            const uint64_t off = r.add(m.offset, addr - m.vaddr, what);
            if (off >= r.size())
                r.fail(std::string(what) + " address " + hex(addr) + " maps outside the file");
            return off;
        }
    }
    r.fail(std::string(what) + " address " + hex(addr) + " is not in any loaded part of the file");
}

// The dynamic entries we use.
struct Dynamic {
    std::optional<uint64_t> strtab, strsz, soname, verneed, verneednum, verdef, verdefnum;
    std::vector<uint64_t> needed;
};

template <class E>
Dynamic dynamic_entries(const Reader& r, const Mapping& dyn) {
    using Dyn = typename E::Dyn;
    Dynamic d;
    const uint64_t count = dyn.size / sizeof(Dyn);
    for (uint64_t i = 0; i < count; ++i) {
        const uint64_t at = dyn.offset + i * sizeof(Dyn);
        const int64_t tag = SOCKER_FIELD(r, at, Dyn, d_tag, "dynamic entry");
        const uint64_t val = r.get<typename E::Word>(at, offsetof(Dyn, d_un), "dynamic entry");
        switch (tag) {
            case DT_NULL:
                return d;
            case DT_NEEDED:
                d.needed.push_back(val);
                break;
            case DT_SONAME:
                d.soname = val;
                break;
            case DT_STRTAB:
                d.strtab = val;
                break;
            case DT_STRSZ:
                d.strsz = val;
                break;
            case DT_VERNEED:
                d.verneed = val;
                break;
            case DT_VERNEEDNUM:
                d.verneednum = val;
                break;
            case DT_VERDEF:
                d.verdef = val;
                break;
            case DT_VERDEFNUM:
                d.verdefnum = val;
                break;
            default:
                break;
        }
    }
    return d;
}

// Walks the version chains; `budget` bounds the records read over all chains together, so that
// overlapping or self-referencing records cannot make the walk quadratic.
class VersionWalker {
public:
    VersionWalker(const Reader& r, uint64_t strtab, uint64_t strend)
        : r_(r), strtab_(strtab), strend_(strend), budget_(r.size() / 8 + 16) {}

    std::string name(uint64_t off, const char* what) const {
        if (off >= strend_ - strtab_)
            r_.fail(std::string(what) + " " + hex(off) + " is outside the string table");
        return r_.cstr(strtab_ + off, strend_, what);
    }

    // The next record of a chain: `next` bytes after `at` (0 ends the chain).
    std::optional<uint64_t> step(uint64_t at, uint64_t next, const char* what) {
        if (next == 0) return std::nullopt;
        if (--budget_ == 0) r_.fail(std::string(what) + " chain is longer than the file allows");
        const uint64_t off = r_.add(at, next, what);
        if (off >= r_.size()) r_.fail(std::string(what) + " chain leaves the file at " + hex(off));
        return off;
    }

    std::vector<VersionNeed> needs(uint64_t off, std::optional<uint64_t> num) {
        std::vector<VersionNeed> out;
        std::optional<uint64_t> at = off;
        for (uint64_t i = 0; at && (!num || i < *num); ++i) {
            VersionNeed n;
            n.file =
                name(SOCKER_FIELD(r_, *at, Elf64_Verneed, vn_file, "verneed entry"), "verneed file name");
            const unsigned cnt = SOCKER_FIELD(r_, *at, Elf64_Verneed, vn_cnt, "verneed entry");
            const uint32_t aux = SOCKER_FIELD(r_, *at, Elf64_Verneed, vn_aux, "verneed entry");
            std::optional<uint64_t> a = step(*at, aux, "vernaux");
            for (unsigned j = 0; a && j < cnt; ++j) {
                n.versions.push_back(
                    name(SOCKER_FIELD(r_, *a, Elf64_Vernaux, vna_name, "vernaux entry"), "vernaux name"));
                a = step(*a, SOCKER_FIELD(r_, *a, Elf64_Vernaux, vna_next, "vernaux entry"), "vernaux");
            }
            out.push_back(std::move(n));
            at = step(*at, SOCKER_FIELD(r_, *at, Elf64_Verneed, vn_next, "verneed entry"), "verneed");
        }
        return out;
    }

    std::vector<std::string> defs(uint64_t off, std::optional<uint64_t> num) {
        std::vector<std::string> out;
        std::optional<uint64_t> at = off;
        for (uint64_t i = 0; at && (!num || i < *num); ++i) {
            const unsigned cnt = SOCKER_FIELD(r_, *at, Elf64_Verdef, vd_cnt, "verdef entry");
            const uint32_t aux = SOCKER_FIELD(r_, *at, Elf64_Verdef, vd_aux, "verdef entry");
            // The first verdaux is the version's own name; the others name its parents.
            if (cnt > 0 && aux != 0) {
                const uint64_t a = *step(*at, aux, "verdaux");
                out.push_back(
                    name(SOCKER_FIELD(r_, a, Elf64_Verdaux, vda_name, "verdaux entry"), "verdaux name"));
            }
            at = step(*at, SOCKER_FIELD(r_, *at, Elf64_Verdef, vd_next, "verdef entry"), "verdef");
        }
        return out;
    }

private:
    const Reader& r_;
    uint64_t strtab_, strend_;
    uint64_t budget_;
};

template <class E>
ElfInfo parse_as(const Reader& r, ElfInfo info) {
    using Ehdr = typename E::Ehdr;
    r.need(0, sizeof(Ehdr), "ELF header");
    info.machine = SOCKER_FIELD(r, 0, Ehdr, e_machine, "ELF header");
    const Layout lay = layout<E>(r);
    if (!lay.dynamic) return info;  // statically linked: nothing to report
    const Dynamic d = dynamic_entries<E>(r, *lay.dynamic);
    const bool any = d.soname || !d.needed.empty() || d.verneed || d.verdef;
    if (!any) return info;
    if (!d.strtab) r.fail("dynamic section has no DT_STRTAB");
    const uint64_t strtab = to_offset(r, lay.maps, *d.strtab, "DT_STRTAB");
    uint64_t strend = r.size();
    if (d.strsz) {
        r.need(strtab, *d.strsz, "dynamic string table");
        strend = strtab + *d.strsz;
    }
    VersionWalker w(r, strtab, strend);
    if (d.soname) info.soname = w.name(*d.soname, "DT_SONAME");
    for (uint64_t n : d.needed) info.needed.push_back(w.name(n, "DT_NEEDED"));
    if (d.verneed)
        info.version_needs = w.needs(to_offset(r, lay.maps, *d.verneed, "DT_VERNEED"), d.verneednum);
    if (d.verdef) info.version_defs = w.defs(to_offset(r, lay.maps, *d.verdef, "DT_VERDEF"), d.verdefnum);
    return info;
}

#undef SOCKER_FIELD

}  // namespace

ElfInfo parse(std::string_view bytes, const std::string& origin) {
    if (bytes.size() < EI_NIDENT)
        bad(origin, "file too short for an ELF header (" + std::to_string(bytes.size()) + " bytes)");
    if (std::memcmp(bytes.data(), ELFMAG, SELFMAG) != 0) bad(origin, "not an ELF file (bad magic)");
    const auto cls = static_cast<unsigned char>(bytes[EI_CLASS]);
    const auto data = static_cast<unsigned char>(bytes[EI_DATA]);
    if (data != ELFDATA2LSB && data != ELFDATA2MSB)
        bad(origin, "unknown ELF byte order " + std::to_string(data));
    const Reader r(bytes, origin, data == ELFDATA2MSB);
    ElfInfo info;
    if (cls == ELFCLASS32) return parse_as<Elf32>(r, info);
    if (cls != ELFCLASS64) bad(origin, "unknown ELF class " + std::to_string(cls));
    info.is64 = true;
    return parse_as<Elf64>(r, info);
}

}  // namespace socker::launcher::elf
