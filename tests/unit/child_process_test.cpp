// run_child: the one way hooks and credential helpers are run.
#include <gtest/gtest.h>

#include <chrono>

#include "core/base/child_process.h"
#include "core/base/error.h"

using namespace pieces;

namespace {

child_program shell(const std::string& script) {
    child_program p;
    p.path = "/bin/sh";
    p.argv = {"sh", "-c", script};
    return p;
}

}  // namespace

TEST(RunChild, GivesInputAndKeepsBothStreams) {
    child_result r = run_child(shell("cat; echo oops >&2; exit 4"), "hello\n");
    EXPECT_EQ(r.spawn_error, 0);
    EXPECT_EQ(r.status, 4);
    EXPECT_EQ(r.out, "hello\n");
    EXPECT_EQ(r.err, "oops\n");
}

TEST(RunChild, MergesStandardErrorWhenAsked) {
    child_program p = shell("echo one; echo two >&2");
    p.merge_stderr = true;
    child_result r = run_child(p, "");
    EXPECT_EQ(r.out, "one\ntwo\n");
    EXPECT_EQ(r.err, "");
}

TEST(RunChild, IsDoneWhenItExitsThoughAChildStillHoldsItsOutput) {
    auto start = std::chrono::steady_clock::now();
    child_result r = run_child(shell("echo before; sleep 5 & exit 0"), "");
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(4));
    EXPECT_EQ(r.out, "before\n");  // written before the exit: read all the same
}

TEST(RunChild, ATimeoutKillsIt) {
    child_program p = shell("exec sleep 10");
    p.timeout_seconds = 1;
    try {
        run_child(p, "");
        FAIL() << "no timeout";
    } catch (const error& e) {
        EXPECT_STREQ(e.what(), "timed out after 1 s");
    }
}

TEST(RunChild, ReportsWhatKeptItFromStarting) {
    child_program p;
    p.path = "/no/such/program";
    p.argv = {p.path};
    EXPECT_EQ(run_child(p, "").spawn_error, ENOENT);
    p.path = "no-such-program-anywhere";
    p.search_path = true;
    EXPECT_EQ(run_child(p, "").spawn_error, ENOENT);
}

TEST(RunChild, AProgramThatReadsNothingDoesNotStallUs) {
    child_result r = run_child(shell("exit 0"), std::string(1 << 20, 'x'));
    EXPECT_EQ(r.status, 0);
}

TEST(RunChild, UsesTheEnvironmentGiven) {
    std::vector<std::string> env = {"ONLY=this"};
    child_program p = shell("echo \"$ONLY:$HOME\"");
    p.env = &env;
    EXPECT_EQ(run_child(p, "").out, "this:\n");
}

TEST(LastLine, IsTheLastNonEmptyLineTrimmed) {
    EXPECT_EQ(last_line("first\n  second  \n\n"), "second");
    EXPECT_EQ(last_line(""), "");
    EXPECT_EQ(last_line("\n \n"), "");
}
