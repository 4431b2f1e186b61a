// The HTTP/1.1 pieces engine mode talks to dockerd with: heads, requests, chunked bodies, and a
// real exchange over a socket pair.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <cstdio>
#include <thread>

#include "base/error.hpp"
#include "base/http.hpp"

using namespace socker;

TEST(HttpHead, ParsesStatusAndHeadersOnceComplete) {
    EXPECT_FALSE(http::parse_head("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"));
    auto h =
        http::parse_head("HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nX-A:  b \r\n\r\n{}");
    ASSERT_TRUE(h);
    EXPECT_EQ(h->first.status, 404);
    EXPECT_EQ(h->first.reason, "Not Found");
    EXPECT_EQ(h->first.header("content-type"), "application/json");
    EXPECT_EQ(h->first.header("X-A"), "b");
    EXPECT_FALSE(h->first.header("missing"));
    EXPECT_EQ(
        h->second,
        std::string("HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nX-A:  b \r\n\r\n").size());
}

TEST(HttpHead, RefusesWhatIsNotHttp) {
    EXPECT_THROW(http::parse_head("SSH-2.0-OpenSSH\r\n\r\n"), Error);
    EXPECT_THROW(http::parse_head("HTTP/1.1 2x0 OK\r\n\r\n"), Error);
    EXPECT_THROW(http::parse_head("HTTP/1.1 200 OK\r\nno colon here\r\n\r\n"), Error);
    EXPECT_THROW(http::parse_head(std::string(70000, 'a')), Error);  // no end of head in 64 KiB
}

TEST(HttpRequest, CarriesItsBodyWithALength) {
    EXPECT_EQ(http::format_request("GET", "/_ping", ""), "GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n");
    EXPECT_EQ(
        http::format_request("POST", "/x", "{}"),
        "POST /x HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}");
    EXPECT_EQ(http::format_request("POST", "/k", ""),
              "POST /k HTTP/1.1\r\nHost: docker\r\nContent-Length: 0\r\n\r\n");
}

TEST(HttpChunked, ReassemblesPiecesFedByteByByte) {
    const std::string wire = "4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\n\r\nNEXT";
    http::Chunked c(100);
    size_t used = 0;
    for (size_t i = 0; i < wire.size() && !c.done(); ++i) used += c.feed(wire.substr(i, 1));
    EXPECT_TRUE(c.done());
    EXPECT_EQ(c.body(), "Wikipedia");
    EXPECT_EQ(wire.substr(used), "NEXT");
}

TEST(HttpChunked, RefusesBadSizesAndBodiesOverTheLimit) {
    http::Chunked bad(100);
    EXPECT_THROW(bad.feed("zz\r\n"), Error);
    http::Chunked big(4);
    EXPECT_THROW(big.feed("8\r\n12345678\r\n0\r\n\r\n"), Error);
    http::Chunked nocrlf(100);
    EXPECT_THROW(nocrlf.feed("2\r\nabXX\r\n"), Error);
}

TEST(HttpConnection, KeepsAliveAcrossRequestsAndHandsOverRawBytes) {
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    http::Connection c{Fd(sv[0])};
    Fd server(sv[1]);
    std::thread t([&] {
        const std::string answers =
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
            "HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\n\r\nRAW";
        ASSERT_EQ(::write(server.get(), answers.data(), answers.size()),
                  static_cast<ssize_t>(answers.size()));
    });
    EXPECT_EQ(c.request("GET", "/a").body, "hello");
    EXPECT_EQ(c.request("GET", "/b").body, "abc");
    c.send("POST", "/attach");
    const http::Head h = c.read_head();
    EXPECT_EQ(h.status, 101);
    t.join();
    std::string raw = c.take_buffered();
    char b[8];
    while (raw.size() < 3) raw.append(b, static_cast<size_t>(::read(c.fd(), b, sizeof b)));
    EXPECT_EQ(raw, "RAW");
    char req[512];
    const ssize_t n = ::read(server.get(), req, sizeof req);
    EXPECT_EQ(std::string(req, static_cast<size_t>(n)).substr(0, 21), "GET /a HTTP/1.1\r\nHost");
}

TEST(HttpConnection, NamesTheSocketWhenNothingListens) {
    try {
        http::Connection::unix_socket("/nonexistent/docker.sock");
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("/nonexistent/docker.sock"), std::string::npos) << e.what();
        EXPECT_EQ(e.code(), Exit::Io);
    }
}

TEST(HttpConnection, StreamsABodyOfChunksIntoAFile) {
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    http::Connection c{Fd(sv[0])};
    Fd server(sv[1]);
    std::string big(100000, 'z');
    std::string wire = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (size_t off = 0; off < big.size(); off += 30000) {
        const std::string piece = big.substr(off, 30000);
        char hex[16];
        std::snprintf(hex, sizeof hex, "%zx\r\n", piece.size());
        wire += hex + piece + "\r\n";
    }
    wire += "0\r\n\r\n";
    std::thread t([&] {
        for (size_t off = 0; off < wire.size();) {
            const ssize_t n =
                ::write(server.get(), wire.data() + off, std::min<size_t>(4096, wire.size() - off));
            ASSERT_GT(n, 0);
            off += static_cast<size_t>(n);
        }
    });
    FILE* f = std::tmpfile();
    ASSERT_NE(f, nullptr);
    const http::Head h = c.read_head();
    EXPECT_EQ(c.copy_body(h, ::fileno(f)), big.size());
    t.join();
    std::rewind(f);
    std::string back(big.size() + 10, '\0');
    back.resize(std::fread(back.data(), 1, back.size(), f));
    std::fclose(f);
    EXPECT_EQ(back, big);
}
