// Host MPI injection's compatibility rules (pure; docs/mpi.md): the version numbers at the end
// of a library's file name ("libmpi.so.12.1.8" -> 12.1.8) compared at the admin's level, as
// Sarus's MPI hook and the MPICH ABI initiative define them, and the glibc rule (the highest
// GLIBC_x.y a host library needs against the highest the image's libc.so.6 defines).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "launcher/elf.hpp"

namespace socker::launcher::abi {

using Version = std::vector<unsigned>;  // 12.1.8 -> {12, 1, 8}; major first

// The numbers after ".so." in a library file name: "libmpich.so.12.3.0" -> {12, 3, 0}; none
// (no ".so.", or anything but digits and dots after it) -> nullopt.
std::optional<Version> of_file_name(std::string_view file_name);
// "GLIBC_2.34" -> {2, 34}; other names -> nullopt.
std::optional<Version> of_glibc_symbol_version(std::string_view name);
std::string to_string(const Version& v);  // "12.3.0"

enum class Level { Major, Full, Strict };
std::optional<Level> parse_level(std::string_view word);  // major | full | strict
const char* to_string(Level l);

enum class Verdict {
    Compatible,
    CompatibleOlderHost,  // full: the host's minor is older than the image's (a warning)
    Incompatible,
};
struct Decision {
    Verdict verdict = Verdict::Incompatible;
    std::string reason;  // one phrase naming both versions and the rule
};
// major: majors equal. full: majors equal; host minor >= image minor, else a warning. strict:
// majors and minors equal. A missing minor counts as 0.
Decision compare(const Version& host, const Version& image, Level level);

// The highest GLIBC_x.y an ELF file needs (its version needs, from any file), nullopt if none.
std::optional<Version> glibc_needed(const elf::ElfInfo& lib);
// The highest GLIBC_x.y a libc.so.6 defines, nullopt if none.
std::optional<Version> glibc_defined(const elf::ElfInfo& libc);
bool older(const Version& a, const Version& b);  // a < b, numerically, missing parts 0

}  // namespace socker::launcher::abi
