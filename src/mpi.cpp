#include "src/mpi.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <set>
#include <sstream>

#include "base/error.hpp"
#include "base/fd.hpp"
#include "base/file.hpp"
#include "base/text.hpp"
#include "launcher/elf.hpp"
#include "launcher/linux_sys.hpp"
#include "launcher/sys.hpp"

namespace socker::mpi {

namespace abi = launcher::abi;
namespace ldcache = launcher::ldcache;
using launcher::MountKind;
using launcher::MountOp;

namespace {

constexpr size_t kLibraryLimit = 512u << 20;  // a library file read whole
constexpr size_t kCacheLimit = 64u << 20;     // a loader cache
constexpr size_t kMaxString = 4096;           // a path or SONAME on the scan's pipe
constexpr int32_t kX8664 = ldcache::kFlagElfLibc6 | ldcache::kFlagX8664Lib64;

std::string base_name(const std::string& path) {
    const size_t slash = path.rfind('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
}
std::string dir_name(const std::string& path) {
    const size_t slash = path.rfind('/');
    return slash == std::string::npos || slash == 0 ? "/" : path.substr(0, slash);
}

std::string section_name(const MpiSection& m) {
    return m.name == "default" ? "[mpi]" : "[mpi:" + m.name + "]";
}

std::string version_text(const std::optional<abi::Version>& v) { return v ? abi::to_string(*v) : ""; }

// The version of a library as its file says: the real file's name, else the SONAME's.
std::optional<abi::Version> version_of(const std::string& real, const std::string& soname) {
    if (auto v = abi::of_file_name(base_name(real))) return v;
    return abi::of_file_name(soname);
}

std::string hex(const std::string& s) {
    static const char* digits = "0123456789abcdef";
    std::string out;
    out.reserve(s.size() * 2);
    for (unsigned char c : s) {
        out += digits[c >> 4];
        out += digits[c & 15];
    }
    return out;
}

[[noreturn]] void bad_answer(const std::string& what) {
    throw Error(Exit::Internal, "read the image scan's answer", "", 0, what);
}

std::string unhex(const std::string& s) {
    if (s.size() % 2 || s.size() > 2 * kMaxString) bad_answer("bad string field");
    std::string out;
    for (size_t i = 0; i < s.size(); i += 2) {
        auto val = [](char c) -> int {
            if (c >= '0' && c <= '9') return c - '0';
            if (c >= 'a' && c <= 'f') return c - 'a' + 10;
            bad_answer("bad hex digit");
        };
        out += static_cast<char>(val(s[i]) * 16 + val(s[i + 1]));
    }
    if (out.find('\0') != std::string::npos) bad_answer("NUL in a string");
    return out;
}

unsigned long long number(const std::string& s) {
    if (s.empty() || s.size() > 20 || s.find_first_not_of("0123456789") != std::string::npos)
        bad_answer("bad number '" + s + "'");
    return std::strtoull(s.c_str(), nullptr, 10);
}

std::string absolute(const std::string& p) {
    if (p.empty() || p[0] != '/') bad_answer("a path that is not absolute");
    return p;
}

// Inside the dropped child: a file of the image, opened in its root.
Fd open_in_root(int rootfd, const std::string& path, int flags) {
    std::string rel = path;
    while (!rel.empty() && rel[0] == '/') rel.erase(0, 1);
    return Fd(openat2_fd(rootfd, rel.empty() ? "." : rel, flags | O_CLOEXEC,
                         RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV));
}

// The image's path of what an open file in its root is (the root's own prefix cut off).
std::optional<std::string> path_in_root(int fd, const std::string& root) {
    const std::string p = fd_path(fd);
    if (p.size() <= root.size() || p.compare(0, root.size(), root) != 0 || p[root.size()] != '/')
        return std::nullopt;
    return p.substr(root.size());
}

ImageLibraries read_image(int rootfd, const std::string& root, const std::vector<std::string>& names) {
    ImageLibraries img;
    Fd cache = open_in_root(rootfd, "/etc/ld.so.cache", O_RDONLY);
    if (cache.get() < 0) {
        if (errno == ENOENT) return img;
        throw_errno("open", "/etc/ld.so.cache (in the image)", errno, Exit::BadImage);
    }
    img.cache = ldcache::parse(read_fd(cache.get(), "/etc/ld.so.cache (in the image)", kCacheLimit),
                               "the image's /etc/ld.so.cache");
    img.has_cache = true;
    const std::set<std::string> wanted(names.begin(), names.end());
    for (const auto& e : img.cache) {
        if (e.flags != kX8664 || img.real.count(e.path)) continue;
        const std::string name = library_name(e.key);
        if (e.key != "libc.so.6" && !wanted.count(name) && !is_mpi_library(name)) continue;
        Fd f = open_in_root(rootfd, e.path, O_PATH);
        if (f.get() < 0) continue;  // a stale entry: the loader would not find it either
        if (auto real = path_in_root(f.get(), root)) img.real[e.path] = *real;
    }
    for (const auto& e : img.cache) {
        if (e.key != "libc.so.6" || e.flags != kX8664 || !img.real.count(e.path)) continue;
        img.libc = img.real[e.path];
        Fd f = open_in_root(rootfd, img.libc, O_RDONLY);
        if (f.get() < 0) throw_errno("open", img.libc + " (in the image)", errno, Exit::BadImage);
        const std::string bytes = read_fd(f.get(), img.libc + " (in the image)", kLibraryLimit);
        img.glibc = abi::glibc_defined(launcher::elf::parse(bytes, "the image's " + img.libc));
        // glibc's banner ("... stable release version 2.31."), for messages: a release that added
        // no interface defines no symbol version of its own (2.31's newest is GLIBC_2.30).
        constexpr std::string_view kBanner = "release version ";
        for (size_t at = bytes.find(kBanner); at != std::string::npos && img.glibc_release.empty();
             at = bytes.find(kBanner, at + 1)) {
            size_t end = at + kBanner.size();
            while (end < bytes.size() && end - at < kBanner.size() + 16 &&
                   ((bytes[end] >= '0' && bytes[end] <= '9') || bytes[end] == '.'))
                ++end;
            std::string v = bytes.substr(at + kBanner.size(), end - at - kBanner.size());
            while (!v.empty() && v.back() == '.') v.pop_back();
            if (abi::of_file_name("x.so." + v)) img.glibc_release = v;
        }
        break;
    }
    return img;
}

MountOp read_only_bind(const std::string& source, const std::string& target) {
    MountOp op;
    op.kind = MountKind::Bind;
    op.source = source;
    op.target = target;
    op.read_only = true;
    return op;
}

void write_all(int fd, const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
        const ssize_t n = ::write(fd, s.data() + off, s.size() - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        off += static_cast<size_t>(n);
    }
}

}  // namespace

std::string library_name(const std::string& file) {
    const std::string b = base_name(file);
    const size_t so = b.find(".so");
    return so == std::string::npos ? b : b.substr(0, so);
}

bool is_mpi_library(const std::string& name) {
    if (name == "libmpi" || name == "libmpich") return true;
    if (name.rfind("libmpi_", 0) != 0) return false;
    for (const char* binding : {"libmpi_cxx", "libmpi_mpifh", "libmpi_usempi", "libmpi_java"})
        if (name.rfind(binding, 0) == 0) return false;
    return true;
}

std::vector<HostLibrary> read_host_libraries(const MpiSection& m) {
    std::vector<HostLibrary> out;
    auto add = [&](const std::string& path, Role role) {
        HostLibrary h;
        h.role = role;
        h.path = path;
        char buf[PATH_MAX];
        if (!::realpath(path.c_str(), buf))
            throw Error(Exit::Config, "admin config", section_name(m) + " library " + path, errno);
        h.real = buf;
        const MappedFile file(h.real, kLibraryLimit, Exit::Config);  // the admin's file: its headers read
        const launcher::elf::ElfInfo info = launcher::elf::parse(file.bytes(), h.real);
        h.soname = info.soname.empty() ? base_name(path) : info.soname;
        h.version = version_of(h.real, h.soname);
        h.needed = info.needed;
        h.glibc_needed = abi::glibc_needed(info);
        out.push_back(std::move(h));
    };
    try {
        for (const auto& p : m.libraries) add(p, Role::Mpi);
        for (const auto& p : m.dependencies) add(p, Role::Dependency);
        if (m.glibc_inject)
            for (const auto& p : m.glibc_libraries) add(p, Role::Glibc);
    } catch (Error& e) {
        if (e.code() == Exit::BadImage)  // not an ELF file: the admin listed it
            throw Error(Exit::Config, "admin config", section_name(m), 0, e.what());
        throw;
    }
    return out;
}

std::string encode(const ImageLibraries& img) {
    std::ostringstream o;
    o << "C " << (img.has_cache ? 1 : 0) << "\n";
    for (const auto& e : img.cache)
        o << "E " << static_cast<uint32_t>(e.flags) << " " << e.hwcap << " " << e.osversion << " "
          << hex(e.key) << " " << hex(e.path) << "\n";
    for (const auto& [path, real] : img.real) o << "R " << hex(path) << " " << hex(real) << "\n";
    if (img.glibc) o << "G " << abi::to_string(*img.glibc) << "\n";
    if (!img.libc.empty()) o << "L " << hex(img.libc) << "\n";
    if (!img.glibc_release.empty()) o << "V " << img.glibc_release << "\n";
    o << "END\n";
    return o.str();
}

ImageLibraries decode(const std::string& text) {
    ImageLibraries img;
    std::istringstream in(text);
    std::string line;
    bool end = false, cache_line = false;
    size_t lines = 0;
    while (std::getline(in, line)) {
        if (end) bad_answer("text after END");
        if (++lines > 2000000) bad_answer("too many lines");
        std::vector<std::string> f = split_list(line, ' ');
        if (f.empty()) bad_answer("empty line");
        if (f[0] == "END" && f.size() == 1) {
            end = true;
        } else if (f[0] == "C" && f.size() == 2 && (f[1] == "0" || f[1] == "1")) {
            img.has_cache = f[1] == "1";
            cache_line = true;
        } else if (f[0] == "E" && f.size() == 6) {
            ldcache::Entry e;
            const unsigned long long flags = number(f[1]), osv = number(f[3]);
            if (flags > UINT32_MAX || osv > UINT32_MAX) bad_answer("entry field out of range");
            e.flags = static_cast<int32_t>(static_cast<uint32_t>(flags));
            e.hwcap = number(f[2]);
            e.osversion = static_cast<uint32_t>(osv);
            e.key = unhex(f[4]);
            e.path = absolute(unhex(f[5]));
            if (e.key.empty() || e.key.find('/') != std::string::npos) bad_answer("bad cache key");
            img.cache.push_back(std::move(e));
        } else if (f[0] == "R" && f.size() == 3) {
            img.real[absolute(unhex(f[1]))] = absolute(unhex(f[2]));
        } else if (f[0] == "G" && f.size() == 2) {
            img.glibc = abi::of_file_name("x.so." + f[1]);
            if (!img.glibc) bad_answer("bad glibc version");
        } else if (f[0] == "V" && f.size() == 2) {
            if (!abi::of_file_name("x.so." + f[1])) bad_answer("bad glibc release");
            img.glibc_release = f[1];
        } else if (f[0] == "L" && f.size() == 2) {
            img.libc = absolute(unhex(f[1]));
        } else {
            bad_answer("unexpected line");
        }
    }
    if (!end || !cache_line) bad_answer("truncated");
    return img;
}

ImageLibraries scan_image(const launcher::ContainerSpec& spec_in, const std::vector<std::string>& names) {
    // The container's root as it will be, but of its own: the layers only (a squashfs image
    // keeps them too), no mounts, no share key (no rank may take it for a container to join).
    launcher::ContainerSpec spec = spec_in;
    spec.squashfs_file.clear();
    spec.mounts.clear();
    spec.share.reset();
    spec.share_key.clear();
    spec.rootfs_source = "socker-mpi-scan";
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) throw_errno("pipe", "image scan", errno);
    Fd rd(p[0]), wr(p[1]);
    const pid_t pid = ::fork();
    if (pid < 0) throw_errno("fork", "image scan", errno);
    if (pid == 0) {
        rd = Fd();
        std::string answer;
        try {
            launcher::LinuxSys sys;
            sys.unshare_mount_namespace();
            const std::string root = sys.mount_rootfs(spec);
            Fd rootfd(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
            if (rootfd.get() < 0) throw_errno("open", root, errno);
            // From here on as the user, for good: the image's bytes are read and parsed only so.
            launcher::drop_privileges(spec.id, sys);
            sys.set_no_new_privs();
            answer = encode(read_image(rootfd.get(), root, names));
        } catch (const Error& e) {
            answer = "X " + std::to_string(static_cast<int>(e.code())) + " " + hex(e.what()) + "\n";
        } catch (const std::exception& e) {
            answer = "X 70 " + hex(e.what()) + "\n";
        }
        write_all(wr.get(), answer);
        ::_exit(0);
    }
    wr = Fd();
    std::string answer;
    try {
        answer = read_fd(rd.get(), "the image scan's answer", 256u << 20);
    } catch (...) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
        throw;
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) throw_errno("waitpid", "image scan", errno);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        throw Error(Exit::Internal, "scan the image's libraries", spec.image_ref, 0,
                    "the scanning process died");
    if (answer.rfind("X ", 0) == 0) {
        std::vector<std::string> f = split_list(trim(answer), ' ');
        if (f.size() != 3) bad_answer("bad error line");
        const unsigned long long code = number(f[1]);
        const std::string what = unhex(f[2]);
        const Exit codes[] = {Exit::Usage, Exit::BadImage, Exit::Internal,
                              Exit::Io,    Exit::Config,   Exit::Refused};
        Exit c = Exit::Internal;
        for (Exit k : codes)
            if (static_cast<unsigned long long>(k) == code) c = k;
        throw Error(c, "scan the image's libraries", spec.image_ref, 0, what);
    }
    return decode(answer);
}

Injection plan_injection(const MpiSection& m, const std::vector<HostLibrary>& host, const ImageLibraries& img,
                         const std::string& image_ref) {
    Injection out;
    const std::string sec = section_name(m);
    if (!img.has_cache)
        throw Error(Exit::BadImage, "inject the host's MPI", image_ref, 0,
                    "the image has no dynamic-linker cache (/etc/ld.so.cache): run ldconfig as the last step "
                    "of its build (RUN ldconfig), then import it again");
    // The image's x86-64 entries by SONAME and by library name.
    std::map<std::string, const ldcache::Entry*> by_soname;
    std::multimap<std::string, const ldcache::Entry*> by_name;
    for (const auto& e : img.cache) {
        if (e.flags != kX8664) continue;
        by_soname.emplace(e.key, &e);
        by_name.emplace(library_name(e.key), &e);
    }
    auto real_of = [&](const ldcache::Entry* e) -> std::string {
        auto it = img.real.find(e->path);
        return it == img.real.end() ? "" : it->second;
    };
    const std::string libdir = img.libc.empty() ? "/usr/lib" : dir_name(img.libc);

    // glibc first: the host libraries' needs against the image's glibc.
    std::optional<abi::Version> need;
    std::string needer;
    for (const auto& h : host)
        if (h.role != Role::Glibc && h.glibc_needed && (!need || abi::older(*need, *h.glibc_needed))) {
            need = h.glibc_needed;
            needer = base_name(h.real);
        }
    bool inject_glibc = false;
    if (need) {
        if (!img.glibc)
            throw Error(Exit::BadImage, "inject the host's MPI", image_ref, 0,
                        "the image has no glibc (no libc.so.6 in its loader cache) and the host's " + needer +
                            " needs glibc " + abi::to_string(*need));
        if (abi::older(*img.glibc, *need)) {
            if (!m.glibc_inject)
                throw Error(
                    Exit::BadImage, "inject the host's MPI", image_ref, 0,
                    "the host's " + needer + " needs glibc " + abi::to_string(*need) +
                        ", the image has glibc " +
                        (img.glibc_release.empty() ? abi::to_string(*img.glibc)
                                                   : img.glibc_release + " (symbol versions up to GLIBC_" +
                                                         abi::to_string(*img.glibc) + ")") +
                        ": use an image with glibc >= " + abi::to_string(*need) +
                        " (or the admin sets glibc = inject in " + sec + ")");
            inject_glibc = true;
        }
    }

    std::vector<ldcache::Entry> cache = img.cache;
    std::set<std::string> provided;  // SONAMEs the container will have
    for (const auto& e : img.cache)
        if (e.flags == kX8664) provided.insert(e.key);
    std::set<std::string> bound;  // image files already bound over
    for (const auto& h : host) {
        if (h.role == Role::Glibc && !inject_glibc) continue;
        launcher::InjectedLibrary rep;
        rep.soname = h.soname;
        rep.host_path = h.real;
        rep.host_version = version_text(h.version);
        const char* suffix = h.role == Role::Dependency ? " (dependency)"
                             : h.role == Role::Glibc    ? " (glibc)"
                                                        : "";
        // The image's counterpart: the same SONAME; for an MPI library, else the same library name
        // (libmpi.so.12 on the host, libmpi.so.40 in the image: compared, and refused).
        const ldcache::Entry* match = nullptr;
        if (auto it = by_soname.find(h.soname); it != by_soname.end() && !real_of(it->second).empty())
            match = it->second;
        if (!match && h.role == Role::Mpi) {
            const std::string name = library_name(h.soname);
            auto [lo, hi] = by_name.equal_range(name);
            for (auto it = lo; it != hi && !match; ++it)
                if (!real_of(it->second).empty()) match = it->second;
            for (auto it = by_name.begin(); it != by_name.end() && !match && is_mpi_library(name); ++it)
                if (is_mpi_library(it->first) && !real_of(it->second).empty()) match = it->second;
        }
        if (!match && h.role == Role::Glibc) continue;  // only over the image's own glibc libraries
        if (match) {
            const std::string image_real = real_of(match);
            const std::optional<abi::Version> iv = version_of(image_real, match->key);
            rep.image_path = image_real;
            rep.image_version = version_text(iv);
            if (h.role == Role::Mpi) {
                if (!h.version || !iv)
                    throw Error(Exit::BadImage, "inject the host's MPI", image_ref, 0,
                                "no version number in the name of the host's " + base_name(h.real) +
                                    " or the image's " + base_name(image_real) + " to compare");
                const abi::Decision d = abi::compare(*h.version, *iv, m.abi);
                if (d.verdict == abi::Verdict::Incompatible)
                    throw Error(Exit::BadImage, "inject the host's MPI", image_ref, 0,
                                "the host's " + base_name(h.real) + " and the image's " +
                                    base_name(image_real) + " are not compatible: " + d.reason);
                if (d.verdict == abi::Verdict::CompatibleOlderHost)
                    out.warnings.push_back("host MPI: " + base_name(h.real) + " over the image's " +
                                           base_name(image_real) + ": " + d.reason);
                rep.reason = d.reason;
            } else {
                rep.reason = h.role == Role::Glibc
                                 ? "the image's libc.so.6 defines up to GLIBC_" + version_text(img.glibc) +
                                       ", the host's libraries need GLIBC_" + version_text(need) +
                                       ": glibc = inject"
                                 : "same SONAME in the image";
            }
            if (bound.insert(image_real).second) out.mounts.push_back(read_only_bind(h.real, image_real));
            rep.decision = std::string("replace") + suffix;
            provided.insert(h.soname);
            if (match->key != h.soname) {  // the host's SONAME points at the bound file too
                MountOp link;
                link.kind = MountKind::Symlink;
                link.target = dir_name(image_real) + "/" + h.soname;
                link.data = base_name(image_real);
                out.mounts.push_back(link);
                cache.push_back({h.soname, link.target, kX8664, 0, 0});
            }
        } else {
            // Not in the image: into its library directory, with the links the loader follows.
            out.mounts.push_back(read_only_bind(h.real, libdir + "/" + base_name(h.real)));
            if (h.soname != base_name(h.real)) {
                MountOp link;
                link.kind = MountKind::Symlink;
                link.target = libdir + "/" + h.soname;
                link.data = base_name(h.real);
                out.mounts.push_back(link);
            }
            cache.push_back({h.soname, libdir + "/" + h.soname, kX8664, 0, 0});
            provided.insert(h.soname);
            rep.decision = std::string("add") + suffix;
            rep.reason = "not in the image: added to " + libdir;
        }
        out.libraries.push_back(std::move(rep));
    }
    // What the injected libraries need, the container must have.
    for (const auto& h : host) {
        if (h.role == Role::Glibc) continue;
        for (const auto& n : h.needed)
            if (!provided.count(n))
                throw Error(Exit::BadImage, "inject the host's MPI", image_ref, 0,
                            "the host's " + base_name(h.real) + " needs " + n +
                                ", which is neither in the image's loader cache nor in " + sec +
                                " (the admin lists it in dependencies)");
    }
    // The container's own loader cache: the image's entries and the added libraries'.
    MountOp c;
    c.kind = MountKind::File;
    c.target = "/etc/ld.so.cache";
    c.data = ldcache::write(cache);
    c.read_only = true;
    out.mounts.push_back(c);
    for (const auto& b : m.binds) {
        const size_t colon = b.find(':');
        const std::string source = b.substr(0, colon);
        out.mounts.push_back(
            read_only_bind(source, colon == std::string::npos ? source : b.substr(colon + 1)));
    }
    for (const auto& kv : m.env) {
        const size_t eq = kv.find('=');
        out.env.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
    }
    return out;
}

}  // namespace socker::mpi
