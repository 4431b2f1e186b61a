// ELF dynamic-section facts of one shared library, read from its bytes (pure): its SONAME, what
// it needs (DT_NEEDED) and the symbol versions it needs from each of them (.gnu.version_r) or
// defines (.gnu.version_d). Used by host MPI injection (docs/mpi.md): the host libraries'
// glibc needs (trusted host files, read as root) and the image's glibc version (image files,
// read only by a process dropped to the user).
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace socker::launcher::elf {

struct VersionNeed {
    std::string file;                   // e.g. "libc.so.6"
    std::vector<std::string> versions;  // e.g. {"GLIBC_2.2.5", "GLIBC_2.34"}, file order
};

struct ElfInfo {
    bool is64 = false;
    unsigned machine = 0;             // e_machine (62 = x86-64)
    std::string soname;               // DT_SONAME ("" = none)
    std::vector<std::string> needed;  // DT_NEEDED, in order
    std::vector<VersionNeed> version_needs;
    std::vector<std::string> version_defs;  // .gnu.version_d names (the first, the file's own
                                            // base name entry, included), file order
};

// Parses an ELF shared object or executable (32/64-bit, either byte order). Every offset and
// size is bounds-checked against the bytes: a malformed or truncated file throws
// Error(Exit::BadImage) naming `origin` and what was wrong; never reads outside `bytes`.
ElfInfo parse(std::string_view bytes, const std::string& origin);

}  // namespace socker::launcher::elf
