#include "src/audit.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "base/fd.hpp"

namespace socker::audit {

namespace {

// A plain token, or a double-quoted string with \", \\ and \xHH (control bytes, DEL) escaped.
std::string audit_value(const std::string& v, size_t max_bytes = std::string::npos) {
    const bool plain =
        !v.empty() && v.size() <= max_bytes &&
        v.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:/@+,-") ==
            std::string::npos;
    if (plain) return v;
    std::string out = "\"";
    for (unsigned char c : v) {
        if (out.size() + 5 > max_bytes) break;  // room for an escape and the closing quote
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c < 0x20 || c == 0x7f) {
            char hex[5];
            std::snprintf(hex, sizeof hex, "\\x%02x", c);
            out += hex;
        } else {
            out += static_cast<char>(c);
        }
    }
    return out + "\"";
}

}  // namespace

std::string audit_record(const AuditFields& f) {
    // Identity first and whole; the free-form fields after it, each bounded, the command last
    // with whatever room is left.
    std::string r = "decision=" + audit_value(f.decision) + " user=" + audit_value(f.user) +
                    " uid=" + std::to_string(f.uid) + " job=" + audit_value(f.job) +
                    " step=" + audit_value(f.step) + " rank=" + std::to_string(f.rank) +
                    " store=" + audit_value(f.store) + " digest=" + audit_value(f.digest) +
                    " image=" + audit_value(f.image, 512);
    if (!f.reason.empty()) r += " reason=" + audit_value(f.reason, 640);
    std::string cmd;
    for (const auto& a : f.argv) cmd += (cmd.empty() ? "" : " ") + a;
    const std::string whole = audit_value(cmd);
    if (r.size() + 5 + whole.size() <= kAuditMaxBytes) return r + " cmd=" + whole;
    const std::string marker = " cmd_truncated=" + std::to_string(cmd.size());
    return r + " cmd=" + audit_value(cmd, kAuditMaxBytes - r.size() - 5 - marker.size()) + marker;
}

std::string send(const Policy& pol, const std::string& record) {
    switch (pol.log) {
        case LogDest::None:
            return "";
        case LogDest::Stderr:
            std::fprintf(stderr, "socker-mpi audit: %s\n", record.c_str());
            return "";
        case LogDest::Syslog:
            break;
    }
    // RFC 3164 as glibc's syslog(3) writes it, sent by hand: syslog(3) says nothing when no
    // daemon listens, and the admin may require that the record lands.
    char stamp[32];
    const std::time_t t = std::time(nullptr);
    struct tm tm {};
    ::localtime_r(&t, &tm);
    std::strftime(stamp, sizeof stamp, "%b %e %T", &tm);
    const std::string msg = "<" + std::to_string(LOG_AUTHPRIV | LOG_NOTICE) + ">" + stamp + " socker-mpi[" +
                            std::to_string(::getpid()) + "]: " + record;
    struct sockaddr_un addr {};
    addr.sun_family = AF_UNIX;
    if (pol.syslog_socket.size() >= sizeof addr.sun_path) return pol.syslog_socket + ": path too long";
    std::memcpy(addr.sun_path, pol.syslog_socket.c_str(), pol.syslog_socket.size() + 1);
    std::string why;
    for (int type : {SOCK_DGRAM, SOCK_STREAM}) {
        Fd s(::socket(AF_UNIX, type | SOCK_CLOEXEC, 0));
        if (s.get() < 0) return std::string("socket: ") + std::strerror(errno);
        if (::connect(s.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
            why = pol.syslog_socket + ": " + std::strerror(errno);
            if (errno == EPROTOTYPE) continue;  // a stream socket: try that
            return why;
        }
        const std::string out = type == SOCK_STREAM ? msg + '\0' : msg;
        if (::send(s.get(), out.data(), out.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(out.size()))
            return "";
        return pol.syslog_socket + ": " + std::strerror(errno);
    }
    return why;
}

}  // namespace socker::audit
