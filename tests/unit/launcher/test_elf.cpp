// The ELF reader: real host libraries (checked against readelf), synthetic files of every class
// and byte order built here, and malformed input, which must throw BadImage and never crash.
#include <elf.h>
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>

#include "base/error.hpp"
#include "launcher/elf.hpp"
#include "launcher/host_files.hpp"

namespace socker::launcher::elf {
namespace {

const char* const kLibc = "/lib/x86_64-linux-gnu/libc.so.6";
const char* const kLibz = "/lib/x86_64-linux-gnu/libz.so.1";

using socker::test::output_of;
using socker::test::slurp;

// The same facts as readelf -d / -V print them.
std::optional<ElfInfo> readelf(const std::string& path) {
    const auto d = output_of("readelf -W -d '" + path + "' 2>/dev/null");
    const auto v = output_of("readelf -W -V '" + path + "' 2>/dev/null");
    if (!d || !v) return std::nullopt;
    ElfInfo info;
    auto bracketed = [](const std::string& line) {
        const auto a = line.find('['), b = line.rfind(']');
        return line.substr(a + 1, b - a - 1);
    };
    auto word_after = [](const std::string& line, const std::string& label) {
        std::istringstream s(line.substr(line.find(label) + label.size()));
        std::string w;
        s >> w;
        return w;
    };
    std::istringstream ds(*d);
    for (std::string line; std::getline(ds, line);) {
        if (line.find("(NEEDED)") != std::string::npos) info.needed.push_back(bracketed(line));
        if (line.find("(SONAME)") != std::string::npos) info.soname = bracketed(line);
    }
    std::istringstream vs(*v);
    for (std::string line; std::getline(vs, line);) {
        if (line.find(" Rev: ") != std::string::npos) {
            info.version_defs.push_back(word_after(line, "Name: "));
        } else if (line.find(" File: ") != std::string::npos) {
            info.version_needs.push_back({word_after(line, "File: "), {}});
        } else if (line.find(" Name: ") != std::string::npos && line.find(" Flags: ") != std::string::npos &&
                   !info.version_needs.empty()) {
            info.version_needs.back().versions.push_back(word_after(line, "Name: "));
        }
    }
    return info;
}

void expect_same(const ElfInfo& got, const ElfInfo& want) {
    EXPECT_EQ(got.soname, want.soname);
    EXPECT_EQ(got.needed, want.needed);
    ASSERT_EQ(got.version_needs.size(), want.version_needs.size());
    for (size_t i = 0; i < got.version_needs.size(); ++i) {
        EXPECT_EQ(got.version_needs[i].file, want.version_needs[i].file);
        EXPECT_EQ(got.version_needs[i].versions, want.version_needs[i].versions);
    }
    EXPECT_EQ(got.version_defs, want.version_defs);
}

// Parses `bytes`; returns the error's message, or "" when it parsed. Any other exception or a
// BadImage-less Error fails the test.
std::string outcome(std::string_view bytes) {
    try {
        parse(bytes, "test.so");
        return {};
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Exit::BadImage) << e.what();
        return e.what();
    }
}

void expect_bad(std::string_view bytes, const std::string& fragment) {
    try {
        parse(bytes, "bad.so");
        ADD_FAILURE() << "parsed, expected an error containing: " << fragment;
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Exit::BadImage);
        EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
        EXPECT_EQ(std::string(e.what()).rfind("read ELF `bad.so`: ", 0), 0u) << e.what();
    }
}

// ---- A synthetic shared library, any class and byte order ----

struct Spec {
    bool big = false;
    unsigned machine = EM_X86_64;
    bool phdrs = true;    // program headers (PT_LOAD + PT_DYNAMIC)
    bool dynamic = true;  // PT_DYNAMIC/.dynamic at all
    bool shdrs = true;    // section headers
    std::string soname = "libsynth.so.1";
    std::vector<std::string> needed = {"libm.so.6", "libc.so.6"};
    std::vector<VersionNeed> needs = {{"libm.so.6", {"GLIBC_2.29"}},
                                      {"libc.so.6", {"GLIBC_2.2.5", "GLIBC_2.34", "GLIBC_2.14"}}};
    std::vector<std::string> defs = {"libsynth.so.1", "SYNTH_1.0", "SYNTH_2.0"};
};

// Where the builder put things, for the tests that corrupt them.
struct Built {
    std::string bytes;
    size_t phoff = 0, dynamic = 0, dyn_entsize = 0, verneed = 0, verdef = 0, strtab = 0;
    uint64_t vaddr = 0;  // the load address of file offset 0
};

class Out {
public:
    explicit Out(bool big) : big_(big) {}
    void put(size_t off, uint64_t v, size_t n) {
        if (b.size() < off + n) b.resize(off + n, '\0');
        for (size_t i = 0; i < n; ++i) {
            const size_t shift = 8 * (big_ ? n - 1 - i : i);
            b[off + i] = static_cast<char>(shift < 64 ? (v >> shift) & 0xff : 0);  // n > 8: zero fill
        }
    }
    size_t align(size_t a) {
        b.resize((b.size() + a - 1) / a * a, '\0');
        return b.size();
    }
    std::string b;

private:
    bool big_;
};

#define PUT(o, base, Type, member, v) (o).put((base) + offsetof(Type, member), (v), sizeof(Type::member))

template <class Ehdr, class Phdr, class Shdr, class Dyn>
Built build(const Spec& s, unsigned char cls) {
    Built r;
    Out o(s.big);
    r.vaddr = 0x400000;
    const size_t nph = s.dynamic ? 2 : 1;
    o.put(0, 0, sizeof(Ehdr));
    std::memcpy(o.b.data(), ELFMAG, SELFMAG);
    o.b[EI_CLASS] = static_cast<char>(cls);
    o.b[EI_DATA] = s.big ? ELFDATA2MSB : ELFDATA2LSB;
    o.b[EI_VERSION] = EV_CURRENT;
    PUT(o, 0, Ehdr, e_type, ET_DYN);
    PUT(o, 0, Ehdr, e_machine, s.machine);
    PUT(o, 0, Ehdr, e_version, EV_CURRENT);
    PUT(o, 0, Ehdr, e_ehsize, sizeof(Ehdr));
    r.phoff = o.b.size();
    o.put(r.phoff, 0, nph * sizeof(Phdr));

    // .dynstr
    r.strtab = o.b.size();
    std::string strtab(1, '\0');
    auto str = [&](const std::string& x) {
        const size_t at = strtab.size();
        strtab += x;
        strtab.push_back('\0');
        return at;
    };
    const size_t soname = str(s.soname);
    std::vector<size_t> needed;
    for (const auto& n : s.needed) needed.push_back(str(n));
    std::vector<size_t> need_files, def_names;
    std::vector<std::vector<size_t>> need_versions;
    for (const auto& n : s.needs) {
        need_files.push_back(str(n.file));
        need_versions.emplace_back();
        for (const auto& v : n.versions) need_versions.back().push_back(str(v));
    }
    for (const auto& d : s.defs) def_names.push_back(str(d));
    o.b += strtab;

    // .gnu.version_r: each Verneed followed by its Vernaux records.
    r.verneed = o.align(4);
    for (size_t i = 0; i < s.needs.size(); ++i) {
        const size_t at = o.b.size(), cnt = s.needs[i].versions.size();
        PUT(o, at, Elf64_Verneed, vn_version, VER_NEED_CURRENT);
        PUT(o, at, Elf64_Verneed, vn_cnt, cnt);
        PUT(o, at, Elf64_Verneed, vn_file, need_files[i]);
        PUT(o, at, Elf64_Verneed, vn_aux, cnt ? sizeof(Elf64_Verneed) : 0);
        PUT(o, at, Elf64_Verneed, vn_next,
            i + 1 < s.needs.size() ? sizeof(Elf64_Verneed) + cnt * sizeof(Elf64_Vernaux) : 0);
        for (size_t j = 0; j < cnt; ++j) {
            const size_t a = o.b.size();
            PUT(o, a, Elf64_Vernaux, vna_name, need_versions[i][j]);
            PUT(o, a, Elf64_Vernaux, vna_other, 2 + j);
            PUT(o, a, Elf64_Vernaux, vna_next, j + 1 < cnt ? sizeof(Elf64_Vernaux) : 0);
        }
    }
    // .gnu.version_d: each Verdef followed by one Verdaux.
    r.verdef = o.align(4);
    for (size_t i = 0; i < s.defs.size(); ++i) {
        const size_t at = o.b.size();
        PUT(o, at, Elf64_Verdef, vd_version, VER_DEF_CURRENT);
        PUT(o, at, Elf64_Verdef, vd_flags, i == 0 ? VER_FLG_BASE : 0);
        PUT(o, at, Elf64_Verdef, vd_ndx, i + 1);
        PUT(o, at, Elf64_Verdef, vd_cnt, 1);
        PUT(o, at, Elf64_Verdef, vd_aux, sizeof(Elf64_Verdef));
        PUT(o, at, Elf64_Verdef, vd_next,
            i + 1 < s.defs.size() ? sizeof(Elf64_Verdef) + sizeof(Elf64_Verdaux) : 0);
        PUT(o, at + sizeof(Elf64_Verdef), Elf64_Verdaux, vda_name, def_names[i]);
        PUT(o, at + sizeof(Elf64_Verdef), Elf64_Verdaux, vda_next, 0);
    }
    const size_t verdef_end = o.b.size();

    // .dynamic
    r.dynamic = o.align(8);
    r.dyn_entsize = sizeof(Dyn);
    auto dyn = [&](int64_t tag, uint64_t val) {
        const size_t at = o.b.size();
        o.put(at + offsetof(Dyn, d_tag), static_cast<uint64_t>(tag), sizeof(Dyn::d_tag));
        o.put(at + offsetof(Dyn, d_un), val, sizeof(Dyn::d_un));
    };
    for (size_t n : needed) dyn(DT_NEEDED, n);
    dyn(DT_SONAME, soname);
    dyn(DT_STRTAB, r.vaddr + r.strtab);
    dyn(DT_STRSZ, strtab.size());
    if (!s.needs.empty()) {
        dyn(DT_VERNEED, r.vaddr + r.verneed);
        dyn(DT_VERNEEDNUM, s.needs.size());
    }
    if (!s.defs.empty()) {
        dyn(DT_VERDEF, r.vaddr + r.verdef);
        dyn(DT_VERDEFNUM, s.defs.size());
    }
    dyn(DT_NULL, 0);
    const size_t dynamic_end = o.b.size();

    // Section headers: null, .dynstr, .gnu.version_r, .gnu.version_d, .dynamic.
    if (s.shdrs) {
        const size_t shoff = o.align(8);
        struct Sec {
            uint32_t type;
            size_t off, size;
        };
        const std::vector<Sec> secs = {{SHT_NULL, 0, 0},
                                       {SHT_STRTAB, r.strtab, strtab.size()},
                                       {SHT_GNU_verneed, r.verneed, r.verdef - r.verneed},
                                       {SHT_GNU_verdef, r.verdef, verdef_end - r.verdef},
                                       {static_cast<uint32_t>(s.dynamic ? SHT_DYNAMIC : SHT_PROGBITS),
                                        r.dynamic, dynamic_end - r.dynamic}};
        for (size_t i = 0; i < secs.size(); ++i) {
            const size_t at = shoff + i * sizeof(Shdr);
            o.put(at, 0, sizeof(Shdr));
            if (i == 0) continue;
            PUT(o, at, Shdr, sh_type, secs[i].type);
            PUT(o, at, Shdr, sh_flags, SHF_ALLOC);
            PUT(o, at, Shdr, sh_addr, r.vaddr + secs[i].off);
            PUT(o, at, Shdr, sh_offset, secs[i].off);
            PUT(o, at, Shdr, sh_size, secs[i].size);
        }
        PUT(o, 0, Ehdr, e_shoff, shoff);
        PUT(o, 0, Ehdr, e_shentsize, sizeof(Shdr));
        PUT(o, 0, Ehdr, e_shnum, secs.size());
    }
    if (s.phdrs) {
        PUT(o, 0, Ehdr, e_phoff, r.phoff);
        PUT(o, 0, Ehdr, e_phentsize, sizeof(Phdr));
        PUT(o, 0, Ehdr, e_phnum, nph);
        PUT(o, r.phoff, Phdr, p_type, PT_LOAD);
        PUT(o, r.phoff, Phdr, p_vaddr, r.vaddr);
        PUT(o, r.phoff, Phdr, p_filesz, o.b.size());
        PUT(o, r.phoff, Phdr, p_memsz, o.b.size());
        if (s.dynamic) {
            const size_t ph = r.phoff + sizeof(Phdr);
            PUT(o, ph, Phdr, p_type, PT_DYNAMIC);
            PUT(o, ph, Phdr, p_offset, r.dynamic);
            PUT(o, ph, Phdr, p_vaddr, r.vaddr + r.dynamic);
            PUT(o, ph, Phdr, p_filesz, dynamic_end - r.dynamic);
        }
    }
    r.bytes = std::move(o.b);
    return r;
}

Built build(const Spec& s, bool is64) {
    return is64 ? build<Elf64_Ehdr, Elf64_Phdr, Elf64_Shdr, Elf64_Dyn>(s, ELFCLASS64)
                : build<Elf32_Ehdr, Elf32_Phdr, Elf32_Shdr, Elf32_Dyn>(s, ELFCLASS32);
}

void expect_spec(const ElfInfo& got, const Spec& s, bool is64) {
    EXPECT_EQ(got.is64, is64);
    EXPECT_EQ(got.machine, s.machine);
    ElfInfo want;
    want.soname = s.soname;
    want.needed = s.needed;
    want.version_needs = s.needs;
    want.version_defs = s.defs;
    expect_same(got, want);
}

// Patches `n` bytes at `off` in the byte order of the synthetic file.
void patch(std::string& b, size_t off, uint64_t v, size_t n, bool big) {
    Out o(big);
    o.b = std::move(b);
    o.put(off, v, n);
    b = std::move(o.b);
}

// ---- Real host libraries ----

TEST(ElfHost, LibcDefinesItsVersions) {
    const auto bytes = slurp(kLibc);
    if (!bytes) GTEST_SKIP() << kLibc << " not present";
    const ElfInfo info = parse(*bytes, kLibc);
    EXPECT_TRUE(info.is64);
    EXPECT_EQ(info.machine, 62u);
    EXPECT_EQ(info.soname, "libc.so.6");
    ASSERT_FALSE(info.version_defs.empty());
    EXPECT_EQ(info.version_defs.front(), "libc.so.6");
    auto has = [&](const std::string& v) {
        return std::find(info.version_defs.begin(), info.version_defs.end(), v) != info.version_defs.end();
    };
    EXPECT_TRUE(has("GLIBC_2.2.5"));
    EXPECT_TRUE(has("GLIBC_2.34"));
    EXPECT_EQ(info.needed, std::vector<std::string>{"ld-linux-x86-64.so.2"});
}

TEST(ElfHost, LibzNeedsLibcVersions) {
    const auto bytes = slurp(kLibz);
    if (!bytes) GTEST_SKIP() << kLibz << " not present";
    const ElfInfo info = parse(*bytes, kLibz);
    EXPECT_EQ(info.soname, "libz.so.1");
    EXPECT_EQ(info.needed, std::vector<std::string>{"libc.so.6"});
    ASSERT_EQ(info.version_needs.size(), 1u);
    EXPECT_EQ(info.version_needs[0].file, "libc.so.6");
    const auto& v = info.version_needs[0].versions;
    EXPECT_NE(std::find(v.begin(), v.end(), "GLIBC_2.2.5"), v.end());
    ASSERT_FALSE(info.version_defs.empty());
    EXPECT_EQ(info.version_defs.front(), "libz.so.1");
}

TEST(ElfHost, AgreesWithReadelf) {
    int compared = 0;
    for (const char* path :
         {kLibc, kLibz, "/lib/x86_64-linux-gnu/libstdc++.so.6", "/lib/x86_64-linux-gnu/libhwloc.so.15",
          "/lib/x86_64-linux-gnu/libmpich.so.12", "/lib/x86_64-linux-gnu/libmpi.so.40",
          "/lib/x86_64-linux-gnu/libpmix.so.2", "/lib64/ld-linux-x86-64.so.2", "/usr/bin/ls"}) {
        const auto bytes = slurp(path);
        if (!bytes) continue;
        const auto want = readelf(path);
        if (!want) GTEST_SKIP() << "readelf not available";
        SCOPED_TRACE(path);
        expect_same(parse(*bytes, path), *want);
        ++compared;
    }
    if (compared == 0) GTEST_SKIP() << "no host library found";
}

// ---- Synthetic files: both classes, both byte orders, both ways to find the tables ----

class ElfSynthetic : public ::testing::TestWithParam<std::tuple<bool, bool>> {};

TEST_P(ElfSynthetic, ProgramHeadersAndSections) {
    const auto [is64, big] = GetParam();
    Spec s;
    s.big = big;
    s.machine = is64 ? (big ? EM_PPC64 : EM_X86_64) : (big ? EM_PPC : EM_386);
    expect_spec(parse(build(s, is64).bytes, "synth"), s, is64);
}

TEST_P(ElfSynthetic, ProgramHeadersOnly) {  // stripped of its section headers
    const auto [is64, big] = GetParam();
    Spec s;
    s.big = big;
    s.shdrs = false;
    expect_spec(parse(build(s, is64).bytes, "synth"), s, is64);
}

TEST_P(ElfSynthetic, SectionHeadersOnly) {  // the fallback
    const auto [is64, big] = GetParam();
    Spec s;
    s.big = big;
    s.phdrs = false;
    expect_spec(parse(build(s, is64).bytes, "synth"), s, is64);
}

TEST_P(ElfSynthetic, StaticHasNoDynamicFacts) {
    const auto [is64, big] = GetParam();
    Spec s;
    s.big = big;
    s.dynamic = false;
    const ElfInfo info = parse(build(s, is64).bytes, "static");
    EXPECT_EQ(info.is64, is64);
    EXPECT_EQ(info.soname, "");
    EXPECT_TRUE(info.needed.empty());
    EXPECT_TRUE(info.version_needs.empty());
    EXPECT_TRUE(info.version_defs.empty());
}

TEST_P(ElfSynthetic, NoVersions) {
    const auto [is64, big] = GetParam();
    Spec s;
    s.big = big;
    s.needs.clear();
    s.defs.clear();
    expect_spec(parse(build(s, is64).bytes, "synth"), s, is64);
}

INSTANTIATE_TEST_SUITE_P(Elf, ElfSynthetic, ::testing::Combine(::testing::Bool(), ::testing::Bool()),
                         [](const auto& p) {
                             return std::string(std::get<0>(p.param) ? "Elf64" : "Elf32") +
                                    (std::get<1>(p.param) ? "Big" : "Little");
                         });

// ---- Malformed input ----

TEST(ElfMalformed, EmptyAndShort) {
    expect_bad("", "too short");
    expect_bad(
        "\x7f"
        "ELF",
        "too short");
    const auto bytes = slurp(kLibz);
    if (!bytes) GTEST_SKIP();
    expect_bad(bytes->substr(0, 40), "ELF header");  // ident complete, header cut
}

TEST(ElfMalformed, BadMagicClassOrder) {
    Spec s;
    std::string b = build(s, true).bytes;
    std::string m = b;
    m[1] = 'X';
    expect_bad(m, "bad magic");
    m = b;
    m[EI_CLASS] = 7;
    expect_bad(m, "unknown ELF class 7");
    m = b;
    m[EI_DATA] = 0;
    expect_bad(m, "byte order");
    expect_bad(std::string(64, '\0'), "bad magic");
}

TEST(ElfMalformed, ProgramHeaderTable) {
    Spec s;
    const Built good = build(s, true);
    std::string b = good.bytes;
    patch(b, offsetof(Elf64_Ehdr, e_phoff), good.bytes.size() - 10, 8, false);
    expect_bad(b, "program header table");
    b = good.bytes;
    patch(b, offsetof(Elf64_Ehdr, e_phoff), 0xffffffffffffff00ULL, 8, false);
    expect_bad(b, "program header table");
    b = good.bytes;
    patch(b, offsetof(Elf64_Ehdr, e_phnum), 0xfff0, 2, false);
    expect_bad(b, "program header count");
    b = good.bytes;
    patch(b, offsetof(Elf64_Ehdr, e_phentsize), 20, 2, false);
    expect_bad(b, "e_phentsize");
}

TEST(ElfMalformed, DynamicOutsideTheFile) {
    for (bool is64 : {false, true}) {
        Spec s;
        const Built good = build(s, is64);
        const size_t ph = good.phoff + (is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr));
        const size_t off = is64 ? offsetof(Elf64_Phdr, p_offset) : offsetof(Elf32_Phdr, p_offset);
        const size_t fsz = is64 ? offsetof(Elf64_Phdr, p_filesz) : offsetof(Elf32_Phdr, p_filesz);
        const size_t n = is64 ? 8 : 4;
        std::string b = good.bytes;
        patch(b, ph + off, good.bytes.size() + 100, n, false);
        expect_bad(b, "PT_DYNAMIC");
        b = good.bytes;
        patch(b, ph + fsz, 0xfffffff0, n, false);
        expect_bad(b, "PT_DYNAMIC");
        if (is64) {  // offset + size wraps around
            b = good.bytes;
            patch(b, ph + fsz, 0xfffffffffffffff0ULL, n, false);
            expect_bad(b, "PT_DYNAMIC");
        }
    }
}

// The value of the dynamic entry with `tag` in a synthetic 64-bit little-endian file.
size_t dyn_value_at(const Built& b, int64_t tag) {
    for (size_t at = b.dynamic;; at += sizeof(Elf64_Dyn)) {
        int64_t t;
        std::memcpy(&t, b.bytes.data() + at + offsetof(Elf64_Dyn, d_tag), sizeof t);
        if (t == tag) return at + offsetof(Elf64_Dyn, d_un);
        if (t == DT_NULL) throw std::logic_error("no such dynamic entry");
    }
}

TEST(ElfMalformed, Strings) {
    Spec s;
    s.soname = "libsynth.so.1";
    const Built good = build(s, true);
    // DT_STRSZ ending inside the soname: unterminated within the table.
    std::string b = good.bytes;
    patch(b, dyn_value_at(good, DT_STRSZ), 5, 8, false);
    expect_bad(b, "not NUL-terminated");
    // DT_STRSZ past the end of the file.
    b = good.bytes;
    patch(b, dyn_value_at(good, DT_STRSZ), 1u << 30, 8, false);
    expect_bad(b, "dynamic string table");
    // A name offset outside the string table.
    b = good.bytes;
    patch(b, dyn_value_at(good, DT_SONAME), 100000, 8, false);
    expect_bad(b, "DT_SONAME");
    b = good.bytes;
    patch(b, dyn_value_at(good, DT_NEEDED), ~0ULL, 8, false);
    expect_bad(b, "DT_NEEDED");
    // DT_STRTAB at an address no segment maps.
    b = good.bytes;
    patch(b, dyn_value_at(good, DT_STRTAB), 0x10, 8, false);
    expect_bad(b, "DT_STRTAB address 0x10");
    // The last string of the file without its NUL, no DT_STRSZ to bound it.
    Spec t;
    t.needs.clear();
    t.defs.clear();
    t.shdrs = false;
    Built last = build(t, true);
    patch(last.bytes, dyn_value_at(last, DT_STRSZ), 0, 8, false);
    patch(last.bytes, dyn_value_at(last, DT_STRSZ) - 8, DT_DEBUG, 8, false);  // drop DT_STRSZ
    patch(last.bytes, dyn_value_at(last, DT_SONAME), last.bytes.size() - 3, 8, false);
    patch(last.bytes, dyn_value_at(last, DT_STRTAB), last.vaddr, 8, false);
    last.bytes.replace(last.bytes.size() - 3, 3, "xyz");
    expect_bad(last.bytes, "not NUL-terminated");
}

TEST(ElfMalformed, VersionChainsThatLoop) {
    for (bool big : {false, true}) {
        SCOPED_TRACE(big ? "big-endian" : "little-endian");
        Spec s;
        s.big = big;
        const Built good = build(s, true);
        // A next of -16: back to itself for a reader doing 32-bit arithmetic, so a loop there.
        std::string b = good.bytes;
        patch(b, good.verneed + offsetof(Elf64_Verneed, vn_next), 0xfffffff0, 4, big);
        expect_bad(b, "verneed chain");
        b = good.bytes;
        const size_t aux = good.verneed + sizeof(Elf64_Verneed);
        patch(b, aux + offsetof(Elf64_Vernaux, vna_next), 0xfffffff0, 4, big);
        patch(b, good.verneed + offsetof(Elf64_Verneed, vn_cnt), 0xffff, 2, big);
        expect_bad(b, "vernaux chain");
        b = good.bytes;
        patch(b, good.verdef + offsetof(Elf64_Verdef, vd_next), 0xffffffe4, 4, big);
        expect_bad(b, "verdef chain");
        // Overlapping records (next == 1) with the largest counts: bounded by the file size.
        b = good.bytes;
        patch(b, good.verneed + offsetof(Elf64_Verneed, vn_next), 1, 4, big);
        patch(b, good.verneed + offsetof(Elf64_Verneed, vn_aux), 1, 4, big);
        patch(b, good.verneed + offsetof(Elf64_Verneed, vn_cnt), 0xffff, 2, big);
        (void)outcome(b);  // throws or parses; must not hang
    }
    // A count beyond the chain: the chain's end (next == 0) stops the walk.
    Spec s;
    const Built good = build(s, true);
    std::string b = good.bytes;
    patch(b, dyn_value_at(good, DT_VERNEEDNUM), 1000000, 8, false);
    patch(b, dyn_value_at(good, DT_VERDEFNUM), ~0ULL, 8, false);
    expect_spec(parse(b, "synth"), s, true);
}

TEST(ElfMalformed, VerneedLoopInARealLibrary) {
    auto bytes = slurp(kLibz);
    if (!bytes) GTEST_SKIP();
    // Find .gnu.version_r through the (native, 64-bit) section headers.
    Elf64_Ehdr eh;
    std::memcpy(&eh, bytes->data(), sizeof eh);
    size_t verneed = 0;
    for (size_t i = 0; i < eh.e_shnum; ++i) {
        Elf64_Shdr sh;
        std::memcpy(&sh, bytes->data() + eh.e_shoff + i * sizeof sh, sizeof sh);
        if (sh.sh_type == SHT_GNU_verneed) verneed = sh.sh_offset;
    }
    ASSERT_NE(verneed, 0u);
    std::string b = *bytes;
    const uint32_t back = 0xfffffff0;  // -16: itself, for a reader doing 32-bit arithmetic
    std::memcpy(b.data() + verneed + offsetof(Elf64_Verneed, vn_next), &back, 4);
    expect_bad(b, "verneed chain");
    b = *bytes;
    uint32_t vn_aux;
    std::memcpy(&vn_aux, b.data() + verneed + offsetof(Elf64_Verneed, vn_aux), 4);
    std::memcpy(b.data() + verneed + vn_aux + offsetof(Elf64_Vernaux, vna_next), &back, 4);
    expect_bad(b, "vernaux chain");
}

TEST(ElfMalformed, EveryPrefixOfRealLibraries) {
    int parsed = 0, refused = 0;
    for (const char* path : {kLibz, kLibc}) {
        const auto bytes = slurp(path);
        if (!bytes) continue;
        for (size_t n = 0; n < bytes->size(); n += 997) {
            // A copy of exactly n bytes, so that a read past it is a sanitizer error.
            const std::string prefix = bytes->substr(0, n);
            (outcome(prefix).empty() ? parsed : refused)++;
        }
    }
    if (parsed + refused == 0) GTEST_SKIP();
    EXPECT_GT(refused, 0);
}

TEST(ElfMalformed, EveryByteOfTheHeadersStomped) {
    const auto bytes = slurp(kLibz);
    if (!bytes) GTEST_SKIP();
    std::string b = *bytes;
    // The ELF and program headers, then the dynamic tables in the first pages.
    for (size_t i = 0; i < std::min<size_t>(b.size(), 0x2000); ++i) {
        for (int v : {0x00, 0x7f, 0xff}) {
            const char old = b[i];
            b[i] = static_cast<char>(v);
            (void)outcome(b);
            b[i] = old;
        }
    }
    // And every synthetic file, in every class and order.
    for (bool is64 : {false, true})
        for (bool big : {false, true}) {
            Spec s;
            s.big = big;
            std::string sb = build(s, is64).bytes;
            for (size_t i = 0; i < sb.size(); ++i)
                for (int v : {0x00, 0x01, 0x80, 0xf0, 0xff}) {
                    const char old = sb[i];
                    sb[i] = static_cast<char>(v);
                    (void)outcome(sb);
                    sb[i] = old;
                }
        }
}

}  // namespace
}  // namespace socker::launcher::elf
