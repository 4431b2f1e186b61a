// Host MPI injection (docs/mpi.md): the host's MPI libraries, their dependencies and (when the
// admin allows it) its glibc, bound read-only over the image's compatible ones or added into the
// image's library directory, with a loader cache of this container's own. Three stages:
//   read_host_libraries  root, the admin's host files (trusted): SONAME, version, needs;
//   scan_image           the image's loader cache and libc.so.6, read by a child process dropped
//                        to the user (image data is never parsed as root);
//   plan_injection       pure: the ABI and glibc rules, the mounts, the new cache, the report.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "launcher/abi.hpp"
#include "launcher/ldcache.hpp"
#include "launcher/spec.hpp"
#include "src/policy.hpp"

namespace socker::mpi {

enum class Role { Mpi, Dependency, Glibc };

struct HostLibrary {
    Role role = Role::Mpi;
    std::string path;                               // as the admin listed it
    std::string real;                               // its real path (the file bound)
    std::string soname;                             // DT_SONAME, else the listed file name
    std::optional<launcher::abi::Version> version;  // from the real file's name
    std::vector<std::string> needed;                // DT_NEEDED
    std::optional<launcher::abi::Version> glibc_needed;
};
// Every library of the section (libraries, dependencies, and glibc_libraries when glibc =
// inject), read as root: a missing or unreadable file, or one that is not an ELF shared
// library, is the admin's config (78) and names the file.
std::vector<HostLibrary> read_host_libraries(const MpiSection& m);

// What the image's loader knows.
struct ImageLibraries {
    bool has_cache = false;
    std::vector<launcher::ldcache::Entry> cache;  // its /etc/ld.so.cache, every entry
    std::map<std::string, std::string> real;      // cache path -> the file it names (in the image)
    std::optional<launcher::abi::Version> glibc;  // the highest GLIBC_x.y its libc.so.6 defines
    std::string glibc_release;                    // its banner's "release version 2.31" ("" = none)
    std::string libc;                             // its libc.so.6 (real path; "" = none)
};
// The library name a file or SONAME stands for: "libmpich.so.12.3.0" -> "libmpich".
std::string library_name(const std::string& file);
// Whether a library name is an MPI library itself, whatever the MPI: libmpi (Open MPI, the MPICH
// ABI's libmpi.so.12), libmpich (MPICH, MVAPICH), Cray's compiler-tagged libmpi_gnu_123 and the
// like -- not Open MPI's language bindings (libmpi_cxx, libmpi_mpifh, libmpi_usempi*). A host
// MPI library is compared with the image's MPI library of another name (host libmpich.so.12,
// image libmpi.so.40: refused).
bool is_mpi_library(const std::string& name);
// The image's libraries, read from the container's root as it will be (the image's layers,
// mounted in a private mount namespace) by a child process dropped to the user with
// no_new_privs: the loader cache, and the real paths of the entries whose library name is one
// of `names` (and of libc.so.6, whose version definitions give the image's glibc).
ImageLibraries scan_image(const launcher::ContainerSpec& spec, const std::vector<std::string>& names);
// The child's answer on the pipe, and its strict reading (pure; unit-tested).
std::string encode(const ImageLibraries& img);
ImageLibraries decode(const std::string& text);

struct Injection {
    std::vector<launcher::MountOp> mounts;
    std::vector<launcher::InjectedLibrary> libraries;
    std::vector<std::pair<std::string, std::string>> env;  // the section's env, before the user's -e
    std::vector<std::string> warnings;                     // e.g. abi = full with an older host
};
// Pure: the rules of docs/mpi.md. Refusals are Error(Exit::BadImage, 65) naming both versions
// (ABI), the glibc versions, a library the host MPI needs that neither the image nor the
// section has, or an image without a loader cache.
Injection plan_injection(const MpiSection& m, const std::vector<HostLibrary>& host, const ImageLibraries& img,
                         const std::string& image_ref);

}  // namespace socker::mpi
