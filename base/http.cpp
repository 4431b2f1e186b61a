#include "base/http.hpp"

#include <sys/socket.h>
#include <sys/un.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/error.hpp"

namespace socker::http {

namespace {

constexpr size_t kMaxHead = size_t{64} * 1024;

[[noreturn]] void bad(const std::string& what) { throw Error(Exit::Io, "http", "engine API", 0, what); }

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
    return out;
}

std::string trim_sp(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
    return std::string(s);
}

}  // namespace

std::optional<std::string> Head::header(std::string_view name) const {
    const std::string n = lower(name);
    for (const auto& [k, v] : headers)
        if (k == n) return v;
    return std::nullopt;
}

std::optional<std::pair<Head, size_t>> parse_head(std::string_view text) {
    const size_t end = text.find("\r\n\r\n");
    if (end == std::string_view::npos) {
        if (text.size() > kMaxHead) bad("response head over 64 KiB");
        return std::nullopt;
    }
    Head h;
    std::string_view rest = text.substr(0, end + 2);
    size_t eol = rest.find("\r\n");
    const std::string_view status = rest.substr(0, eol);
    if (status.substr(0, 7) != "HTTP/1." || status.size() < 12 || status[8] != ' ')
        bad("not an HTTP/1.x status line: '" + std::string(status.substr(0, 40)) + "'");
    const std::string_view code = status.substr(9, 3);
    if (!std::all_of(code.begin(), code.end(), [](char c) { return c >= '0' && c <= '9'; }))
        bad("bad status code '" + std::string(code) + "'");
    h.status = std::stoi(std::string(code));
    h.reason = status.size() > 13 ? std::string(status.substr(13)) : "";
    rest.remove_prefix(eol + 2);
    while (!rest.empty()) {
        eol = rest.find("\r\n");
        const std::string_view line = rest.substr(0, eol);
        const size_t colon = line.find(':');
        if (colon == std::string_view::npos || colon == 0) bad("malformed header line");
        h.headers.emplace_back(lower(line.substr(0, colon)), trim_sp(line.substr(colon + 1)));
        rest.remove_prefix(eol + 2);
    }
    return std::make_pair(std::move(h), end + 4);
}

std::string format_request(std::string_view method, std::string_view target, std::string_view body,
                           const std::vector<std::pair<std::string, std::string>>& extra) {
    std::string r;
    r.append(method).append(" ").append(target).append(" HTTP/1.1\r\nHost: docker\r\n");
    for (const auto& [k, v] : extra) r.append(k).append(": ").append(v).append("\r\n");
    if (!body.empty())
        r.append("Content-Type: application/json\r\nContent-Length: ")
            .append(std::to_string(body.size()))
            .append("\r\n");
    else if (method == "POST")
        r.append("Content-Length: 0\r\n");
    r.append("\r\n").append(body);
    return r;
}

size_t Chunked::feed(std::string_view in) {
    size_t used = 0;
    while (used < in.size() && state_ != State::Done) {
        if (state_ == State::Data) {
            const size_t n = std::min(left_, in.size() - used);
            total_ += n;
            if (total_ > limit_) bad("response body over " + std::to_string(limit_) + " bytes");
            if (sink_)
                sink_(in.substr(used, n));
            else
                body_.append(in.substr(used, n));
            used += n;
            left_ -= n;
            if (left_ == 0) state_ = State::DataEnd;
            continue;
        }
        const char c = in[used++];
        line_ += c;
        if (line_.size() > 1024) bad("chunk line too long");
        if (c != '\n') continue;
        std::string line =
            line_.substr(0, line_.size() - (line_.size() >= 2 && line_[line_.size() - 2] == '\r' ? 2 : 1));
        line_.clear();
        if (state_ == State::DataEnd) {
            if (!line.empty()) bad("chunk not followed by CRLF");
            state_ = State::Size;
        } else if (state_ == State::Size) {
            const std::string hex = line.substr(0, line.find(';'));
            if (hex.empty() || hex.size() > 12 ||
                hex.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos)
                bad("bad chunk size '" + hex.substr(0, 16) + "'");
            left_ = std::stoull(hex, nullptr, 16);
            state_ = left_ == 0 ? State::Trailer : State::Data;
        } else if (state_ == State::Trailer) {
            if (line.empty()) state_ = State::Done;
        }
    }
    return used;
}

Connection Connection::unix_socket(const std::string& path) {
    sockaddr_un addr{};
    if (path.size() >= sizeof(addr.sun_path))
        throw Error(Exit::Config, "connect", path, 0, "socket path too long");
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd.valid()) throw_errno("socket", path, errno);
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0)
        throw_errno("connect", path, errno);
    return Connection(std::move(fd));
}

void Connection::send(std::string_view method, std::string_view target, std::string_view body,
                      const std::vector<std::pair<std::string, std::string>>& extra) {
    const std::string r = format_request(method, target, body, extra);
    for (size_t off = 0; off < r.size();) {
        const ssize_t n = ::send(fd_.get(), r.data() + off, r.size() - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) throw_errno("send", "engine API " + std::string(target), errno);
        off += static_cast<size_t>(n);
    }
}

bool Connection::fill() {
    char b[16384];
    while (true) {
        const ssize_t n = ::read(fd_.get(), b, sizeof b);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw_errno("read", "engine API", errno);
        if (n == 0) return false;
        buf_.append(b, static_cast<size_t>(n));
        return true;
    }
}

Head Connection::read_head() {
    while (true) {
        if (auto h = parse_head(buf_)) {
            buf_.erase(0, h->second);
            return std::move(h->first);
        }
        if (!fill()) bad("the engine closed the connection before answering");
    }
}

std::string Connection::read_body(const Head& head, size_t limit) {
    if (head.status == 204 || head.status == 304 || head.status == 101) return {};
    if (auto te = head.header("transfer-encoding"); te && lower(*te).find("chunked") != std::string::npos) {
        Chunked c(limit);
        while (true) {
            const size_t used = c.feed(buf_);
            buf_.erase(0, used);
            if (c.done()) return c.body();
            if (!fill()) bad("the engine closed the connection inside a chunked body");
        }
    }
    if (auto cl = head.header("content-length")) {
        if (cl->empty() || cl->size() > 15 || cl->find_first_not_of("0123456789") != std::string::npos)
            bad("bad Content-Length '" + *cl + "'");
        const size_t len = std::stoull(*cl);
        if (len > limit) bad("response body over " + std::to_string(limit) + " bytes");
        while (buf_.size() < len)
            if (!fill()) bad("the engine closed the connection inside a body");
        std::string body = buf_.substr(0, len);
        buf_.erase(0, len);
        return body;
    }
    while (fill())
        if (buf_.size() > limit) bad("response body over " + std::to_string(limit) + " bytes");
    return std::exchange(buf_, {});
}

unsigned long long Connection::copy_body(const Head& head, int out) {
    unsigned long long total = 0;
    auto put = [&](std::string_view d) {
        while (!d.empty()) {
            const ssize_t n = ::write(out, d.data(), d.size());
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) throw_errno("write", "the image stream", errno);
            d.remove_prefix(static_cast<size_t>(n));
            total += static_cast<unsigned long long>(n);
        }
    };
    if (auto te = head.header("transfer-encoding"); te && lower(*te).find("chunked") != std::string::npos) {
        Chunked c(~size_t{0}, put);
        while (true) {
            buf_.erase(0, c.feed(buf_));
            if (c.done()) return total;
            if (!fill()) bad("the engine closed the connection inside a chunked body");
        }
    }
    std::optional<unsigned long long> len;
    if (auto cl = head.header("content-length")) {
        if (cl->empty() || cl->size() > 15 || cl->find_first_not_of("0123456789") != std::string::npos)
            bad("bad Content-Length '" + *cl + "'");
        len = std::stoull(*cl);
    }
    while (!len || total < *len) {
        if (buf_.empty() && !fill()) {
            if (len) bad("the engine closed the connection inside a body");
            return total;
        }
        const size_t n =
            len ? static_cast<size_t>(std::min<unsigned long long>(buf_.size(), *len - total)) : buf_.size();
        put(std::string_view(buf_).substr(0, n));
        buf_.erase(0, n);
    }
    return total;
}

Response Connection::request(std::string_view method, std::string_view target, std::string_view body,
                             size_t limit) {
    send(method, target, body);
    Response r;
    r.head = read_head();
    r.body = read_body(r.head, limit);
    return r;
}

}  // namespace socker::http
