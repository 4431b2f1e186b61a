#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "base/error.hpp"
#include "base/fd.hpp"
#include "base/file.hpp"

namespace socker {
namespace {

TEST(File, BoundedReadsAndTheirErrors) {
    char path[] = "/tmp/socker-base-test.XXXXXX";
    const Fd fd(::mkstemp(path));
    ASSERT_TRUE(fd.valid());
    const std::string data(100000, 'x');
    ASSERT_EQ(::write(fd.get(), data.data(), data.size()), static_cast<ssize_t>(data.size()));
    EXPECT_EQ(read_file(path), data);
    EXPECT_EQ(fd_path(fd.get()), path);
    try {
        read_file(path, 1000, Exit::BadImage);
        ADD_FAILURE() << "limit not enforced";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Exit::BadImage);
        EXPECT_NE(std::string(e.what()).find("larger than 1000 bytes"), std::string::npos);
    }
    ::unlink(path);
    try {
        read_file(path);
        ADD_FAILURE() << "read a removed file";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Exit::Io);
        EXPECT_EQ(e.err(), ENOENT);
    }
    Fd moved(::dup(0));
    const int raw = moved.get();
    Fd other(std::move(moved));
    EXPECT_EQ(other.get(), raw);
    EXPECT_FALSE(moved.valid());  // NOLINT(bugprone-use-after-move): moved-from state is defined
}

}  // namespace
}  // namespace socker

TEST(MappedFile, MapsTheWholeFileAndRefusesOverTheLimit) {
    char tmpl[] = "/tmp/socker-map-XXXXXX";
    const int fd = ::mkstemp(tmpl);
    ASSERT_GE(fd, 0);
    const std::string content = std::string(100000, 'e') + "END";
    ASSERT_EQ(::write(fd, content.data(), content.size()), static_cast<ssize_t>(content.size()));
    ::close(fd);
    {
        const socker::MappedFile m(tmpl, 1u << 20);
        EXPECT_EQ(m.bytes(), content);
    }
    EXPECT_THROW(socker::MappedFile(tmpl, 1000, socker::Exit::Config), socker::Error);
    ::unlink(tmpl);
    EXPECT_THROW(socker::MappedFile("/nonexistent/file", 10), socker::Error);
    EXPECT_THROW(socker::MappedFile("/tmp", 10), socker::Error);  // not a regular file
}
