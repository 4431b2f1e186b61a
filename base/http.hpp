// A small HTTP/1.1 client over a Unix socket, for one server: the Docker engine's API socket
// (launcher/engine.hpp). Requests with Content-Length bodies; responses with Content-Length,
// chunked or close-delimited bodies, each bounded; a connection kept alive between requests, and
// handed over raw after an upgrade (the attach stream). Written here rather than taken from
// libcurl: the attach needs the socket itself after a 101 (a hijack curl does not expose), and
// the setuid launcher should carry no more than this.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/fd.hpp"

namespace socker::http {

struct Head {
    int status = 0;
    std::string reason;
    std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
    std::optional<std::string> header(std::string_view name) const;
};

struct Response {
    Head head;
    std::string body;
};

// Pure: the status line and headers in `text` (up to and including the blank line). nullopt:
// not yet complete; throws Error(Io) on a malformed head.
std::optional<std::pair<Head, size_t>> parse_head(std::string_view text);

// Pure: the request bytes. `body` non-empty: sent as application/json with its length.
std::string format_request(std::string_view method, std::string_view target, std::string_view body,
                           const std::vector<std::pair<std::string, std::string>>& extra = {});

// Pure, incremental: a chunked body. feed() takes bytes; done() once the last chunk and trailer
// have come; body() the data so far. Throws Error(Io) on malformed chunks or over `limit`.
class Chunked {
public:
    explicit Chunked(size_t limit, std::function<void(std::string_view)> sink = {})
        : limit_(limit), sink_(std::move(sink)) {}
    size_t feed(std::string_view in);  // bytes consumed (all, unless done() before the end)
    bool done() const { return state_ == State::Done; }
    const std::string& body() const { return body_; }

private:
    enum class State { Size, Data, DataEnd, Trailer, Done };
    State state_ = State::Size;
    std::string line_, body_;
    size_t left_ = 0, limit_, total_ = 0;
    std::function<void(std::string_view)> sink_;  // set: data goes there, not into body()
};

class Connection {
public:
    // Connects to the socket at `path` with the caller's credentials. Throws Error(Io) naming it.
    static Connection unix_socket(const std::string& path);
    explicit Connection(Fd fd) : fd_(std::move(fd)) {}

    void send(std::string_view method, std::string_view target, std::string_view body = {},
              const std::vector<std::pair<std::string, std::string>>& extra = {});
    Head read_head();
    std::string read_body(const Head& head, size_t limit);  // by length, chunks or close
    // The body streamed to `out` as it comes (an image archive); returns its length.
    unsigned long long copy_body(const Head& head, int out);
    Response request(std::string_view method, std::string_view target, std::string_view body = {},
                     size_t limit = 1u << 20);
    // After an upgrade: the bytes already read past the head, then read from fd() directly.
    std::string take_buffered() { return std::exchange(buf_, {}); }
    int fd() const { return fd_.get(); }

private:
    bool fill();  // false on EOF
    Fd fd_;
    std::string buf_;
};

}  // namespace socker::http
