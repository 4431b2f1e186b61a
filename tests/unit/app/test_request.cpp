#include <gtest/gtest.h>

#include "base/error.hpp"
#include "src/request.hpp"

namespace socker {
namespace {

UserRequest parse(std::vector<std::string> a) { return parse_command_line(a); }

TEST(Request, ImageAndCommandWithOptionsOfItsOwn) {
    auto r = std::get<RunRequest>(parse({"-v", "/scratch/a:/data:ro", "demo", "/bin/sh", "-c", "id --help"}));
    EXPECT_EQ(r.image, "demo");
    EXPECT_EQ(r.command, (std::vector<std::string>{"/bin/sh", "-c", "id --help"}));
    ASSERT_EQ(r.binds.size(), 1u);
    EXPECT_EQ(r.binds[0].source, "/scratch/a");
    EXPECT_EQ(r.binds[0].target, "/data");
    EXPECT_TRUE(r.binds[0].read_only);
}

TEST(Request, BindIsPlacementOrMountByItsValue) {
    // --bind is a mount; --bind=KIND is the old spelling of --bind-to, kept for one release.
    auto r = std::get<RunRequest>(parse({"--bind=core", "--bind", "/home/a", "img", "x"}));
    EXPECT_EQ(r.placement.bind, topology::BindKind::Core);
    ASSERT_EQ(r.binds.size(), 1u);
    EXPECT_EQ(r.binds[0].target, "/home/a");
    try {
        parse({"--bind=cores", "img"});
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Exit::Usage);
        EXPECT_NE(std::string(e.what()).find("did you mean '--bind-to=core'"), std::string::npos) << e.what();
    }
    auto t = std::get<RunRequest>(
        parse({"--bind-to", "numa", "--membind=local", "--distribution", "cyclic", "img"}));
    EXPECT_EQ(t.placement.bind, topology::BindKind::Numa);
    EXPECT_EQ(t.placement.membind, topology::MemBind::Local);
    EXPECT_EQ(t.placement.distribution, topology::Distribution::Cyclic);
    EXPECT_TRUE(t.binds.empty());
    for (std::vector<std::string> bad : {std::vector<std::string>{"--bind-to=rack", "img"},
                                         {"--membind=near", "img"},
                                         {"--cpus-per-rank=0", "img"}}) {
        try {
            parse(bad);
            ADD_FAILURE() << bad[0];
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), Exit::Usage) << bad[0];
        }
    }
}

TEST(Request, RunSubcommandAndImageWithoutCommand) {
    auto r = std::get<RunRequest>(parse({"run", "plan"}));
    EXPECT_EQ(r.image, "plan");
    EXPECT_TRUE(r.command.empty());
}

TEST(Request, UnknownOptionGetsSuggestion) {
    try {
        parse({"--dry-rn", "img"});
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Exit::Usage);
        EXPECT_NE(std::string(e.what()).find("did you mean '--dry-run'"), std::string::npos) << e.what();
    }
}

TEST(Request, MissingImageIsUsageError) {
    try {
        parse({});
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Exit::Usage);
        EXPECT_NE(std::string(e.what()).find("no image given"), std::string::npos);
    }
}

TEST(Request, ImageSubcommands) {
    auto i = std::get<ImportRequest>(parse({"image", "import", "/tmp/x.tar", "demo:1"}));
    EXPECT_EQ(i.source, "/tmp/x.tar");
    EXPECT_EQ(i.name, "demo:1");
    EXPECT_TRUE(std::holds_alternative<ImageListRequest>(parse({"image", "ls"})));
    EXPECT_EQ(std::get<ImageRemoveRequest>(parse({"image", "rm", "demo"})).name, "demo");
    auto p = std::get<PlanRequest>(
        parse({"plan", "--topology", "pack:2 core:4 pu:1", "--ranks", "4", "--bind=core", "--format=json"}));
    EXPECT_EQ(p.options.ranks, 4);
    EXPECT_EQ(p.options.format, "json");
    EXPECT_EQ(p.options.placement.bind, topology::BindKind::Core);
    auto q = std::get<PlanRequest>(parse({"plan", "--bind-to", "l3", "--ranks", "2"}));
    EXPECT_EQ(q.options.placement.bind, topology::BindKind::L3);
}

TEST(Request, Doctor) {
    auto d = std::get<DoctorRequest>(parse({"doctor"}));
    EXPECT_FALSE(d.no_launch);
    EXPECT_FALSE(d.config.empty());
    EXPECT_FALSE(d.launcher.empty());
    d = std::get<DoctorRequest>(
        parse({"doctor", "--no-launch", "--config", "/tmp/t.conf", "--image", "demo"}));
    EXPECT_TRUE(d.no_launch);
    EXPECT_EQ(d.config, "/tmp/t.conf");
    EXPECT_EQ(d.image, "demo");
    EXPECT_THROW(parse({"doctor", "--frobnicate"}), Error);
    EXPECT_THROW(parse({"doctor", "extra"}), Error);
    EXPECT_THROW(parse({"image", "ls", "--frobnicate"}), Error);  // no subcommand ignores words
    EXPECT_THROW(parse({"plan", "--ranks", "2", "stray"}), Error);
    // An image named like the subcommand is reached through run, as for the others.
    EXPECT_EQ(std::get<RunRequest>(parse({"run", "doctor", "/bin/true"})).image, "doctor");
}

TEST(Request, EverySubcommandHelpHasAnExample) {
    for (const std::vector<std::string>& a : {std::vector<std::string>{"run", "--help"},
                                              {"image", "--help"},
                                              {"image", "import", "--help"},
                                              {"image", "ls", "--help"},
                                              {"image", "rm", "--help"},
                                              {"image", "inspect", "--help"},
                                              {"image", "gc", "--help"},
                                              {"plan", "--help"},
                                              {"doctor", "--help"}}) {
        try {
            parse(a);
            ADD_FAILURE() << a[0] << " --help did not ask for help";
        } catch (const HelpRequested& h) {
            EXPECT_NE(h.text.find("Example"), std::string::npos) << a[0] << " " << a[1] << ":\n" << h.text;
        }
    }
}

TEST(Request, PrivilegeOptionsAreRefusedNotJustUnknown) {
    for (std::vector<std::string> a : {std::vector<std::string>{"--privileged", "img", "x"},
                                       {"-v", "/a:/b", "--cap-add=SYS_ADMIN", "img"},
                                       {"--user", "0", "img"},
                                       {"-u", "0:0", "img"}}) {
        try {
            parse(a);
            FAIL() << a[0];
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), Exit::Refused) << e.what();
            EXPECT_NE(std::string(e.what()).find("never grants privileges"), std::string::npos);
        }
    }
    // After the image, the same words belong to the command.
    auto r = std::get<RunRequest>(parse({"img", "tool", "--privileged"}));
    EXPECT_EQ(r.command.back(), "--privileged");
}

TEST(Request, BindSpecs) {
    EXPECT_THROW(parse_bind("relative:/x"), Error);
    EXPECT_THROW(parse_bind("/a:/b:rx"), Error);
    EXPECT_THROW(parse_bind("/a:/b:ro:x"), Error);
    auto b = parse_bind("/a");
    EXPECT_EQ(b.target, "/a");
    EXPECT_FALSE(b.read_only);
}

TEST(Request, EnvNeedsKeyValue) {
    EXPECT_THROW(parse({"-e", "NOVALUE", "img"}), Error);
    EXPECT_EQ(std::get<RunRequest>(parse({"-e", "A=b=c", "img"})).env_set.at(0), "A=b=c");
}

}  // namespace
}  // namespace socker
