#include <gtest/gtest.h>

#include "base/error.hpp"
#include "image/store.hpp"

namespace socker::image {
namespace {

TEST(ImageName, Valid) {
    EXPECT_EQ(parse_image_name("demo").str(), "demo:latest");
    EXPECT_EQ(parse_image_name("lab/solver:1.2").str(), "lab/solver:1.2");
    EXPECT_EQ(parse_image_name("my-app_x.y:V1_rc-2").tag, "V1_rc-2");
    EXPECT_EQ(parse_image_name("a/b.c/d-e_f:_t").str(), "a/b.c/d-e_f:_t");
    EXPECT_EQ(parse_image_name("x:" + std::string(128, 'T')).tag.size(), 128u);
}

TEST(ImageName, RefusedBeforeTouchingTheFilesystem) {
    for (const std::string& bad : std::vector<std::string>{"../../x",
                                                           "/abs",
                                                           "-x",
                                                           ".hidden",
                                                           "a//b",
                                                           "UPPER",
                                                           "a:",
                                                           "a:b:c",
                                                           std::string(64 * 1024, 'a'),
                                                           "x\ny",
                                                           "x\x1b[31m",
                                                           "a b",
                                                           "",
                                                           "a/../b",
                                                           "a/",
                                                           "/a",
                                                           "a-",
                                                           "a.-b",
                                                           "a__b",
                                                           "a:.t",
                                                           "a:-t",
                                                           "x:" + std::string(129, 'T'),
                                                           "a:t/u",
                                                           "A:t",
                                                           "a/B"}) {
        try {
            parse_image_name(bad);
            FAIL() << "accepted '" << bad << "'";
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), Exit::Usage);
            EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos);
        }
    }
}

TEST(ImageRecord, RoundTripAndRejectsBadIds) {
    ImageRecord r;
    r.id = std::string(64, 'a');
    r.names = {"demo:latest"};
    r.layers = {std::string(64, 'b')};
    r.config.cmd = {"/bin/sh"};
    auto back = record_from_json(record_to_json(r), "t");
    EXPECT_EQ(back.names, r.names);
    EXPECT_EQ(back.config.cmd, r.config.cmd);
    r.layers = {"../../etc"};
    EXPECT_THROW(record_from_json(record_to_json(r), "t"), Error);
}

}  // namespace
}  // namespace socker::image
