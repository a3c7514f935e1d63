#include "core/build/piecefile.h"

#include <gtest/gtest.h>

#include "core/base/error.h"

using namespace pieces;
using namespace pieces::build;

namespace {

using strings = std::vector<std::string>;
using pairs = std::vector<std::pair<std::string, std::string>>;
using vars_t = std::map<std::string, std::string>;

piecefile parse(std::string_view text) { return parse_piecefile(text, "Piecefile"); }

// The message parse_piecefile throws for `text`, or "" when it parses.
std::string parse_error(std::string_view text) {
    try {
        parse(text);
    } catch (const error& e) {
        return e.what();
    }
    return "";
}

// The one instruction after "FROM scratch".
instruction only(std::string_view body) {
    piecefile pf = parse("FROM scratch\n" + std::string(body) + "\n");
    EXPECT_EQ(pf.instructions.size(), 2u);
    return pf.instructions.back();
}

std::string expand_error(std::string_view word, const vars_t& vars = {}) {
    try {
        expand(word, vars);
    } catch (const error& e) {
        return e.what();
    }
    return "";
}

}  // namespace

// ---- the file's structure ----

TEST(Piecefile, ParsesEveryInstructionWithItsLineAndUpperCaseKeyword) {
    piecefile pf = parse(
        "FROM alpine:3.18\n"
        "run echo hi\n"
        "Cmd [\"sh\"]\n"
        "COPY a /a\n"
        "ADD b.tar /b\n"
        "ENV A=1\n"
        "WORKDIR /w\n"
        "USER 1000:1000\n"
        "ENTRYPOINT [\"/init\"]\n"
        "LABEL k=v\n"
        "ARG N=1\n"
        "EXPOSE 80/tcp\n"
        "SHELL [\"/bin/bash\", \"-c\"]\n"
        "FROM_URL file:///r.tar.gz\n");
    EXPECT_EQ(pf.path, "Piecefile");
    strings keywords;
    for (const instruction& ins : pf.instructions) keywords.push_back(ins.keyword);
    EXPECT_EQ(keywords, (strings{"FROM", "RUN", "CMD", "COPY", "ADD", "ENV", "WORKDIR", "USER", "ENTRYPOINT",
                                 "LABEL", "ARG", "EXPOSE", "SHELL", "FROM_URL"}));
    for (size_t i = 0; i < pf.instructions.size(); ++i) EXPECT_EQ(pf.instructions[i].line, static_cast<int>(i) + 1);
    EXPECT_EQ(pf.instructions[1].text, "run echo hi");
    EXPECT_EQ(pf.instructions[1].args, strings{"echo hi"});
}

TEST(Piecefile, SkipsCommentsAndBlankLinesAndCountsThem) {
    piecefile pf = parse("# a comment\n\n   # indented comment\nFROM scratch\n\n\nRUN true # not a comment\n");
    ASSERT_EQ(pf.instructions.size(), 2u);
    EXPECT_EQ(pf.instructions[0].line, 4);
    EXPECT_EQ(pf.instructions[1].line, 7);
    EXPECT_EQ(pf.instructions[1].args, strings{"true # not a comment"});
}

TEST(Piecefile, AcceptsCrlfAndAByteOrderMark) {
    piecefile pf = parse("\xEF\xBB\xBF" "FROM scratch\r\nRUN a \\\r\n  b\r\n");
    ASSERT_EQ(pf.instructions.size(), 2u);
    EXPECT_EQ(pf.instructions[0].keyword, "FROM");
    EXPECT_EQ(pf.instructions[1].args, strings{"a   b"});
}

TEST(Piecefile, JoinsContinuationLines) {
    piecefile pf = parse("FROM scratch\nRUN apt-get update && \\\n    apt-get install -y curl\nCMD x\n");
    ASSERT_EQ(pf.instructions.size(), 3u);
    const instruction& run = pf.instructions[1];
    EXPECT_EQ(run.args, strings{"apt-get update &&     apt-get install -y curl"});
    EXPECT_EQ(run.text, "RUN apt-get update &&     apt-get install -y curl");
    EXPECT_EQ(run.line, 2);
    EXPECT_EQ(pf.instructions[2].line, 4);
}

TEST(Piecefile, ContinuationAllowsTrailingWhitespaceAfterTheBackslash) {
    piecefile pf = parse("FROM scratch\nRUN a \\  \t\n b\n");
    ASSERT_EQ(pf.instructions.size(), 2u);
    EXPECT_EQ(pf.instructions[1].args, strings{"a  b"});
}

TEST(Piecefile, ContinuationSkipsCommentsAndBlankLinesInside) {
    piecefile pf = parse(
        "FROM scratch\n"
        "RUN a \\\n"
        "# a comment inside\n"
        "    # an indented one\n"
        "\n"
        "  && b\n"
        "CMD c\n");
    ASSERT_EQ(pf.instructions.size(), 3u);
    EXPECT_EQ(pf.instructions[1].args, strings{"a   && b"});
    EXPECT_EQ(pf.instructions[2].line, 7);
}

TEST(Piecefile, ContinuationAtTheEndOfTheFileEndsTheInstruction) {
    piecefile pf = parse("FROM scratch\nRUN a \\\n");
    ASSERT_EQ(pf.instructions.size(), 2u);
    EXPECT_EQ(pf.instructions[1].args, strings{"a"});
}

TEST(Piecefile, EscapeDirectiveMakesBacktickTheContinuation) {
    piecefile pf = parse("# escape=`\nFROM scratch\nRUN dir C:\\ `\n  /b\nWORKDIR C:\\work\n");
    EXPECT_EQ(pf.escape, '`');
    ASSERT_EQ(pf.instructions.size(), 3u);
    EXPECT_EQ(pf.instructions[1].args, strings{"dir C:\\   /b"});
    EXPECT_EQ(pf.instructions[2].args, strings{"C:\\work"});
    EXPECT_EQ(pf.instructions[2].line, 5);
    EXPECT_EQ(pf.instructions[2].escape, '`');
    // Key/value splitting and expansion follow the file's escape character too.
    piecefile env = parse("# escape=`\nFROM scratch\nENV P=C:\\dir\\ A=b` c\n");
    EXPECT_EQ(parse_key_values(env.instructions[1], vars_t{}), (pairs{{"P", "C:\\dir\\"}, {"A", "b c"}}));
    // A backslash at the end of a line no longer continues it.
    piecefile plain = parse("#escape = `\nFROM scratch\nRUN echo \\\nCMD x\n");
    ASSERT_EQ(plain.instructions.size(), 3u);
    EXPECT_EQ(plain.instructions[1].args, strings{"echo \\"});
}

TEST(Piecefile, EscapeDirectiveOnlyCountsAtTheTop) {
    // After an instruction, a comment, or a blank line it is an ordinary comment.
    piecefile late = parse("FROM scratch\n# escape=`\nRUN a \\\n b\n");
    EXPECT_EQ(late.escape, '\\');
    EXPECT_EQ(late.instructions[1].args, strings{"a  b"});
    EXPECT_EQ(parse("\n# escape=`\nFROM scratch\n").escape, '\\');
    EXPECT_EQ(parse("# hello\n# escape=`\nFROM scratch\n").escape, '\\');
    // Known directives may come before it.
    EXPECT_EQ(parse("# syntax=docker/dockerfile:1\n# escape=`\nFROM scratch\n").escape, '`');
}

TEST(Piecefile, EscapeDirectiveErrors) {
    EXPECT_EQ(parse_error("# escape=x\nFROM scratch\n"), "Piecefile:1: the escape directive takes \\ or `, got \"x\"");
    EXPECT_EQ(parse_error("# escape=`\n# escape=\\\nFROM scratch\n"), "Piecefile:2: the escape directive is given twice");
}

// ---- exec form and shell form ----

TEST(Piecefile, ExecFormIsAJsonArrayOfStrings) {
    instruction cmd = only(R"(CMD ["/bin/echo", "a b", "q\"uote", "\u00e9"])");
    EXPECT_TRUE(cmd.exec_form);
    EXPECT_EQ(cmd.args, (strings{"/bin/echo", "a b", "q\"uote", "\xC3\xA9"}));
    instruction run = only("RUN [\"sh\", \\\n  \"-c\", \"true\"]");
    EXPECT_TRUE(run.exec_form);
    EXPECT_EQ(run.args, (strings{"sh", "-c", "true"}));
}

TEST(Piecefile, ShellFormIsOneArgumentWithTheText) {
    instruction cmd = only("CMD   echo \"$HOME\"  &&  ls  ");
    EXPECT_FALSE(cmd.exec_form);
    EXPECT_EQ(cmd.args, strings{"echo \"$HOME\"  &&  ls"});
    EXPECT_EQ(cmd.text, "CMD   echo \"$HOME\"  &&  ls");
}

TEST(Piecefile, ShellTestCommandWithBracketsStaysShellForm) {
    instruction run = only("RUN [ -f /etc/os-release ]");
    EXPECT_FALSE(run.exec_form);
    EXPECT_EQ(run.args, strings{"[ -f /etc/os-release ]"});
    EXPECT_FALSE(only("RUN [ \"$A\" = \"b\" ]").exec_form);
    EXPECT_FALSE(only("RUN [[ -d /x ]]").exec_form);
    EXPECT_FALSE(only("RUN [ -d /x ] && echo yes").exec_form);
}

TEST(Piecefile, EmptyExecFormClearsCmdAndEntrypoint) {
    instruction cmd = only("CMD []");
    EXPECT_TRUE(cmd.exec_form);
    EXPECT_TRUE(cmd.args.empty());
    EXPECT_TRUE(only("ENTRYPOINT []").exec_form);
    EXPECT_EQ(parse_error("FROM scratch\nRUN []\n"), "Piecefile:2: RUN needs a command");
}

TEST(Piecefile, BrokenJsonIsAnErrorWithItsLine) {
    std::string e = parse_error("FROM scratch\n\nCMD [\"a\", ]\n");
    EXPECT_TRUE(e.starts_with("Piecefile:3: CMD: invalid JSON array at \"]\": ")) << e;
    e = parse_error("FROM scratch\nENTRYPOINT ['sh', '-c']\n");
    EXPECT_TRUE(e.starts_with("Piecefile:2: ENTRYPOINT: invalid JSON array")) << e;
    e = parse_error("FROM scratch\nRUN [\"a\", \\\n   \"b\",]\n");
    EXPECT_TRUE(e.starts_with("Piecefile:2: RUN: invalid JSON array")) << e;
    EXPECT_EQ(parse_error("FROM scratch\nCMD [\"a\", 1]\n"),
              "Piecefile:2: CMD: the JSON array must hold only strings, got 1");
}

TEST(Piecefile, ExecFormOnlyForCommandsAndCopies) {
    // WORKDIR does not read JSON: the brackets are part of the path.
    instruction w = only("WORKDIR [\"/a\"]");
    EXPECT_FALSE(w.exec_form);
    EXPECT_EQ(w.args, strings{"[\"/a\"]"});
}

TEST(Piecefile, ShellNeedsExecForm) {
    EXPECT_EQ(only(R"(SHELL ["/bin/bash", "-eu", "-c"])").args, (strings{"/bin/bash", "-eu", "-c"}));
    EXPECT_EQ(parse_error("FROM scratch\nSHELL /bin/bash -c\n"),
              "Piecefile:2: SHELL needs a JSON array, e.g. SHELL [\"/bin/sh\", \"-c\"]");
    EXPECT_EQ(parse_error("FROM scratch\nSHELL []\n"),
              "Piecefile:2: SHELL needs at least the shell program: SHELL [\"/bin/sh\", \"-c\"]");
}

// ---- flags ----

TEST(Piecefile, CopyFlagsComeOutOfTheArguments) {
    instruction c = only("COPY --chown=1:1 --from=builder --chmod=755 --link src/ /dst/");
    EXPECT_EQ(c.flags, (pairs{{"chown", "1:1"}, {"from", "builder"}, {"chmod", "755"}, {"link", "true"}}));
    EXPECT_EQ(c.args, strings{"src/ /dst/"});
    instruction e = only(R"(COPY --chown="app:app" ["a b", "/c"])");
    EXPECT_TRUE(e.exec_form);
    EXPECT_EQ(e.flags, (pairs{{"chown", "app:app"}}));
    EXPECT_EQ(e.args, (strings{"a b", "/c"}));
}

TEST(Piecefile, FromPlatformAndRunMountFlags) {
    piecefile pf = parse("FROM --platform=linux/amd64 alpine\nRUN --mount=type=cache,target=/c --mount=type=tmpfs,target=/t make\n");
    EXPECT_EQ(pf.instructions[0].flags, (pairs{{"platform", "linux/amd64"}}));
    EXPECT_EQ(pf.instructions[0].args, strings{"alpine"});
    EXPECT_EQ(pf.instructions[1].flags, (pairs{{"mount", "type=cache,target=/c"}, {"mount", "type=tmpfs,target=/t"}}));
    EXPECT_EQ(pf.instructions[1].args, strings{"make"});
}

TEST(Piecefile, FlagErrors) {
    EXPECT_EQ(parse_error("FROM scratch\nCOPY --own=1 a b\n"),
              "Piecefile:2: COPY has no flag --own (it takes --from, --chown, --chmod, --link, --parents, --exclude)");
    EXPECT_EQ(parse_error("FROM scratch\nCOPY --from b c\n"), "Piecefile:2: COPY --from needs a value: --from=VALUE");
    EXPECT_EQ(parse_error("FROM scratch\nCOPY --chown=1 --chown=2 b c\n"), "Piecefile:2: COPY --chown is given twice");
    EXPECT_EQ(parse_error("FROM scratch\nCOPY --link=maybe b c\n"),
              "Piecefile:2: COPY --link takes true or false, got \"maybe\"");
    EXPECT_EQ(parse_error("FROM scratch\nCMD --help\n"), "Piecefile:2: CMD takes no flags, got --help");
}

// ---- shapes of each instruction ----

TEST(Piecefile, FromNeedsAnImageAndMayNameAStage) {
    EXPECT_EQ(parse("FROM ubuntu:22.04 AS build\n").instructions[0].args, strings{"ubuntu:22.04 AS build"});
    EXPECT_EQ(parse_error("FROM\n"), "Piecefile:1: FROM needs an image: FROM image[:tag] [AS name]");
    EXPECT_EQ(parse_error("FROM a b\n"),
              "Piecefile:1: FROM takes one image and an optional AS name: FROM image[:tag] [AS name]");
    EXPECT_EQ(parse_error("FROM a AS 1x\n"),
              "Piecefile:1: FROM: stage name \"1x\" must start with a letter and hold only letters, digits, '-', '_' and '.'");
    // Variables from ARGs before FROM are allowed in the image.
    EXPECT_EQ(parse("ARG V=3.18\nFROM alpine:${V}\n").instructions.size(), 2u);
}

TEST(Piecefile, FromUrlTakesAUrlAndAnOptionalDigest) {
    const std::string digest = "sha256:" + std::string(64, 'a');
    piecefile pf = parse("FROM_URL https://example.com/rootfs.tar.xz " + digest + "\n");
    EXPECT_EQ(pf.instructions[0].keyword, "FROM_URL");
    EXPECT_EQ(pf.instructions[0].args, strings{"https://example.com/rootfs.tar.xz " + digest});
    EXPECT_NO_THROW(parse("from_url file:///tmp/busybox.tar.gz\n"));
    EXPECT_NO_THROW(parse("FROM_URL http://h/r.tar.zst AS base\n"));
    EXPECT_EQ(parse_error("FROM_URL\n"), "Piecefile:1: FROM_URL needs a URL: FROM_URL url [sha256:DIGEST]");
    EXPECT_EQ(parse_error("FROM_URL ftp://h/r.tar\n"),
              "Piecefile:1: FROM_URL needs an http://, https:// or file:// URL, got \"ftp://h/r.tar\"");
    EXPECT_EQ(parse_error("FROM_URL file:///r.tar md5:abc\n"),
              "Piecefile:1: FROM_URL digest must be sha256: and 64 lower-case hex digits, got \"md5:abc\"");
    EXPECT_EQ(parse_error("FROM_URL file:///r.tar " + digest + " extra\n"),
              "Piecefile:1: FROM_URL takes a URL and an optional sha256:DIGEST");
}

TEST(Piecefile, CopyAndAddNeedASourceAndADestination) {
    EXPECT_EQ(parse_error("FROM scratch\n\n\n\n\n\nCOPY onlyone\n"), "Piecefile:7: COPY needs a source and a destination");
    EXPECT_EQ(parse_error("FROM scratch\nADD [\"one\"]\n"), "Piecefile:2: ADD needs a source and a destination");
    EXPECT_EQ(parse_error("FROM scratch\nCOPY\n"), "Piecefile:2: COPY needs a source and a destination");
    EXPECT_EQ(only("COPY a b c /d/").args, strings{"a b c /d/"});
    // A quoted name with a space is one word: a source without a destination.
    EXPECT_EQ(parse_error("FROM scratch\nCOPY \"a b\"\n"), "Piecefile:2: COPY needs a source and a destination");
}

TEST(Piecefile, WorkdirTakesOnePath) {
    EXPECT_EQ(only("WORKDIR \"/my dir\"").args, strings{"\"/my dir\""});
    EXPECT_EQ(parse_error("FROM scratch\nWORKDIR /a /b\n"),
              "Piecefile:2: WORKDIR takes one path (quote a path that has spaces)");
    EXPECT_EQ(parse_error("FROM scratch\nWORKDIR\n"), "Piecefile:2: WORKDIR needs a path");
}

TEST(Piecefile, UserIsUserOrUserColonGroup) {
    EXPECT_NO_THROW(only("USER app"));
    EXPECT_NO_THROW(only("USER 1000:1000"));
    EXPECT_NO_THROW(only("USER ${U}:${G}"));
    EXPECT_EQ(parse_error("FROM scratch\nUSER app:\n"), "Piecefile:2: USER expects user[:group], got \"app:\"");
    EXPECT_EQ(parse_error("FROM scratch\nUSER :g\n"), "Piecefile:2: USER expects user[:group], got \":g\"");
    EXPECT_EQ(parse_error("FROM scratch\nUSER a b\n"), "Piecefile:2: USER takes one user[:group]");
}

TEST(Piecefile, ExposeTakesPortsWithProtocols) {
    EXPECT_EQ(only("EXPOSE 80 443/tcp 53/udp 8000-8010 $PORT").args, strings{"80 443/tcp 53/udp 8000-8010 $PORT"});
    EXPECT_EQ(parse_error("FROM scratch\nEXPOSE 80/icmp\n"),
              "Piecefile:2: EXPOSE: protocol of \"80/icmp\" must be tcp, udp or sctp");
    EXPECT_EQ(parse_error("FROM scratch\nEXPOSE 70000\n"),
              "Piecefile:2: EXPOSE expects port[/tcp|udp] with a port from 1 to 65535 (or a range like 8000-8010), got \"70000\"");
    EXPECT_EQ(parse_error("FROM scratch\nEXPOSE http\n").substr(0, 28), "Piecefile:2: EXPOSE expects ");
    EXPECT_EQ(parse_error("FROM scratch\nEXPOSE\n"), "Piecefile:2: EXPOSE needs a port: EXPOSE port[/tcp|udp]");
}

TEST(Piecefile, RunAndCmdNeedACommand) {
    EXPECT_EQ(parse_error("FROM scratch\nRUN\n"), "Piecefile:2: RUN needs a command");
    EXPECT_EQ(parse_error("FROM scratch\nCMD   \n"), "Piecefile:2: CMD needs a command");
    EXPECT_EQ(parse_error("FROM scratch\nRUN \\\n\n"), "Piecefile:2: RUN needs a command");
}

TEST(Piecefile, ArgMayComeBeforeFromAndTakesSeveralNames) {
    piecefile pf = parse("ARG BASE=alpine\nARG A B=2\nFROM $BASE\n");
    ASSERT_EQ(pf.instructions.size(), 3u);
    EXPECT_EQ(parse_key_values(pf.instructions[0]), (pairs{{"BASE", "alpine"}}));
    EXPECT_EQ(parse_key_values(pf.instructions[1]), (pairs{{"A", ""}, {"B", "2"}}));
    EXPECT_EQ(parse_error("FROM scratch\nARG =x\n"), "Piecefile:2: ARG needs a name before =, got \"=x\"");
    EXPECT_EQ(parse_error("FROM scratch\nARG\n"), "Piecefile:2: ARG needs a name: ARG name[=default]");
}

TEST(Piecefile, FirstInstructionMustBeFrom) {
    EXPECT_EQ(parse_error("# c\nRUN echo\nFROM scratch\n"),
              "Piecefile:2: expected FROM or FROM_URL before RUN (only ARG may come first)");
    EXPECT_EQ(parse_error("ARG X=1\nENV A=b\n"),
              "Piecefile:2: expected FROM or FROM_URL before ENV (only ARG may come first)");
    EXPECT_EQ(parse_error("ARG X=1\n"), "Piecefile: no FROM or FROM_URL instruction");
    EXPECT_EQ(parse_error("# only a comment\n\n"), "Piecefile: no instructions; a Piecefile starts with FROM or FROM_URL");
    EXPECT_EQ(parse_error(""), "Piecefile: no instructions; a Piecefile starts with FROM or FROM_URL");
}

TEST(Piecefile, UnknownInstructionIsNamed) {
    EXPECT_EQ(parse_error("FROM scratch\nRUNN echo\n"),
              "Piecefile:2: unknown instruction \"RUNN\" (expected FROM, FROM_URL, RUN, CMD, COPY, ADD, ENV, WORKDIR, "
              "USER, ENTRYPOINT, LABEL, ARG, EXPOSE, SHELL, VOLUME, STOPSIGNAL, HEALTHCHECK, ONBUILD or MAINTAINER)");
    // A heredoc's body reads as unknown instructions: the message says why.
    std::string heredoc = parse_error("FROM scratch\nRUN <<EOF\necho hi\nEOF\n");
    EXPECT_TRUE(heredoc.starts_with("Piecefile:3: unknown instruction \"echo\"")) << heredoc;
    EXPECT_TRUE(heredoc.ends_with("; heredocs (<<) are not supported")) << heredoc;
    EXPECT_FALSE(parse_error("FROM scratch\nRUNN x\n").ends_with("not supported"));
    // Even as the first line, the unknown word is what the message names.
    EXPECT_TRUE(parse_error("FORM x\n").starts_with("Piecefile:1: unknown instruction \"FORM\"")) << parse_error("FORM x\n");
}

TEST(Piecefile, ErrorsNameTheFileGiven) {
    try {
        parse_piecefile("FROM scratch\nCOPY x\n", "/src/app/Dockerfile");
        FAIL() << "no error";
    } catch (const error& e) {
        EXPECT_STREQ(e.what(), "/src/app/Dockerfile:2: COPY needs a source and a destination");
    }
}

// ---- ENV, LABEL and key/value pairs ----

TEST(Piecefile, EnvPairsKeepTheirQuotingForExpand) {
    instruction env = only(R"(ENV A=1 B="two words" C='$lit' D=a\ b E=)");
    EXPECT_EQ(parse_key_values(env),
              (pairs{{"A", "1"}, {"B", "\"two words\""}, {"C", "'$lit'"}, {"D", "a\\ b"}, {"E", ""}}));
    EXPECT_EQ(parse_key_values(env, vars_t{{"lit", "no"}}),
              (pairs{{"A", "1"}, {"B", "two words"}, {"C", "$lit"}, {"D", "a b"}, {"E", ""}}));
}

TEST(Piecefile, EnvOldFormTakesTheRestOfTheLine) {
    instruction env = only("ENV GREETING hello   \"big\" world");
    EXPECT_EQ(parse_key_values(env), (pairs{{"GREETING", "hello   \"big\" world"}}));
    EXPECT_EQ(parse_key_values(env, {}), (pairs{{"GREETING", "hello   big world"}}));
    EXPECT_EQ(parse_error("FROM scratch\nENV LONELY\n"),
              "Piecefile:2: ENV expects name=value (or the old form \"ENV name value\"), got \"LONELY\"");
}

TEST(Piecefile, EnvErrors) {
    EXPECT_EQ(parse_error("FROM scratch\nENV A=1 B\n"), "Piecefile:2: ENV expects name=value pairs, got \"B\" without =");
    EXPECT_EQ(parse_error("FROM scratch\nENV =1\n"), "Piecefile:2: ENV needs a name before =, got \"=1\"");
    EXPECT_EQ(parse_error("FROM scratch\nENV A=\"open\n"),
              "Piecefile:2: ENV: unterminated \" quote in \"A=\"open\"");
    EXPECT_EQ(parse_error("FROM scratch\nENV\n"), "Piecefile:2: ENV needs name=value");
}

TEST(Piecefile, EnvValueExpandsFromVariablesBeforeIt) {
    instruction env = only("ENV PATH=/opt/bin:$PATH HOME=${HOME:-/root}");
    EXPECT_EQ(parse_key_values(env, vars_t{{"PATH", "/bin"}}),
              (pairs{{"PATH", "/opt/bin:/bin"}, {"HOME", "/root"}}));
}

TEST(Piecefile, LabelTakesSeveralPairsOverLines) {
    instruction label = only(
        "LABEL org.opencontainers.image.title=\"My app\" \\\n"
        "      version=1.0 \\\n"
        "      \"quoted key\"=v");
    EXPECT_EQ(parse_key_values(label, vars_t{}),
              (pairs{{"org.opencontainers.image.title", "My app"}, {"version", "1.0"}, {"quoted key", "v"}}));
    EXPECT_EQ(parse_error("FROM scratch\nLABEL\n"), "Piecefile:2: LABEL needs key=value");
}

// ---- expand ----

TEST(Expand, SubstitutesPlainAndBracedVariables) {
    vars_t v{{"A", "x"}, {"B_2", "y"}, {"EMPTY", ""}};
    EXPECT_EQ(expand("$A/${B_2}/$A$B_2", v), "x/y/xy");
    EXPECT_EQ(expand("${A}bc $Abc", v), "xbc ");
    EXPECT_EQ(expand("no vars", v), "no vars");
}

TEST(Expand, UnsetIsEmpty) {
    EXPECT_EQ(expand("[$NOPE][${NOPE}]", {}), "[][]");
}

TEST(Expand, DefaultsAndAlternatives) {
    vars_t v{{"SET", "val"}, {"EMPTY", ""}};
    EXPECT_EQ(expand("${SET:-d}", v), "val");
    EXPECT_EQ(expand("${UNSET:-d}", v), "d");
    EXPECT_EQ(expand("${EMPTY:-d}", v), "d");
    EXPECT_EQ(expand("${EMPTY-d}", v), "");
    EXPECT_EQ(expand("${UNSET-d}", v), "d");
    EXPECT_EQ(expand("${SET:+alt}", v), "alt");
    EXPECT_EQ(expand("${UNSET:+alt}", v), "");
    EXPECT_EQ(expand("${EMPTY:+alt}", v), "");
    EXPECT_EQ(expand("${EMPTY+alt}", v), "alt");
    // The default is itself expanded, and may hold spaces and other substitutions.
    EXPECT_EQ(expand("${UNSET:-$SET and ${SET}}", v), "val and val");
    EXPECT_EQ(expand("${UNSET:-${ALSO:-deep}}", v), "deep");
}

TEST(Expand, RequiredVariable) {
    EXPECT_EQ(expand("${SET:?must}", vars_t{{"SET", "ok"}}), "ok");
    EXPECT_EQ(expand_error("${UNSET:?set it with --build-arg}"), "UNSET: set it with --build-arg");
    EXPECT_EQ(expand_error("${UNSET:?}"), "UNSET: is not set");
}

TEST(Expand, EscapesAndQuotes) {
    vars_t v{{"A", "x"}};
    EXPECT_EQ(expand("\\$A", v), "$A");
    EXPECT_EQ(expand("\\${A}", v), "${A}");
    EXPECT_EQ(expand("'$A'", v), "$A");
    EXPECT_EQ(expand("\"$A\"", v), "x");
    EXPECT_EQ(expand("\"\\$A \\\" \\\\ \\n\"", v), "$A \" \\ \\n");
    EXPECT_EQ(expand("a\\ b", v), "a b");
    EXPECT_EQ(expand("'a'\"b\"c", v), "abc");
    EXPECT_EQ(expand("cost: $", v), "cost: $");
    EXPECT_EQ(expand("$-x $/", v), "$-x $/");
    // With the ` escape (a "# escape=`" Piecefile), backslashes are ordinary.
    EXPECT_EQ(expand("C:\\dir\\`$A", v, '`'), "C:\\dir\\$A");
}

TEST(Expand, Errors) {
    EXPECT_EQ(expand_error("\"open"), "unterminated \" quote in \"\"open\"");
    EXPECT_EQ(expand_error("'open"), "unterminated ' quote in \"'open\"");
    EXPECT_EQ(expand_error("${A"), "bad substitution \"${A\"");
    EXPECT_EQ(expand_error("${}"), "bad substitution \"${}\"");
    EXPECT_TRUE(expand_error("${A%x}").starts_with("bad substitution \"${A%x}\": expected ${NAME}")) << expand_error("${A%x}");
    EXPECT_EQ(expand_error("${A:-x"), "missing } in \"${A:-x\"");
}

// ---- split_words ----

TEST(Expand, SplitWordsHonoursQuotesAndEscapes) {
    EXPECT_EQ(split_words("  a  b\tc "), (strings{"a", "b", "c"}));
    EXPECT_EQ(split_words(R"(a "b c" 'd e' f\ g "")"), (strings{"a", "\"b c\"", "'d e'", "f\\ g", "\"\""}));
    EXPECT_EQ(split_words(R"("a \" b" c)"), (strings{R"("a \" b")", "c"}));
    EXPECT_EQ(split_words(""), strings{});
    EXPECT_THROW(split_words("a \"b"), error);
    EXPECT_EQ(split_words("a` b c", '`'), (strings{"a` b", "c"}));
}

TEST(Expand, SplitThenExpandKeepsAVariableOneWord) {
    vars_t v{{"SRC", "my file.txt"}, {"DST", "/app"}};
    EXPECT_EQ(expand_words("$SRC \"${DST}/a b\" '$DST'", v), (strings{"my file.txt", "/app/a b", "$DST"}));
}

// ---- .piecesignore ----

TEST(Ignore, StarMatchesWithinOneSegment) {
    ignore_rules r = ignore_rules::parse("*.log\n");
    EXPECT_TRUE(r.excluded("a.log"));
    EXPECT_FALSE(r.excluded("a.txt"));
    EXPECT_FALSE(r.excluded("dir/a.log"));  // like .dockerignore: anchored at the context root
    ignore_rules q = ignore_rules::parse("file?.txt\n*/tmp\n");
    EXPECT_TRUE(q.excluded("file1.txt"));
    EXPECT_FALSE(q.excluded("file10.txt"));
    EXPECT_TRUE(q.excluded("x/tmp"));
    EXPECT_FALSE(q.excluded("x/y/tmp"));
}

TEST(Ignore, DoubleStarSpansDirectories) {
    ignore_rules r = ignore_rules::parse("**/*.o\nbuild/**\n");
    EXPECT_TRUE(r.excluded("a.o"));
    EXPECT_TRUE(r.excluded("src/x/y/a.o"));
    EXPECT_FALSE(r.excluded("src/a.c"));
    EXPECT_TRUE(r.excluded("build/x/y"));
    EXPECT_TRUE(ignore_rules::parse("a/**/z\n").excluded("a/z"));
    EXPECT_TRUE(ignore_rules::parse("a/**/z\n").excluded("a/b/c/z"));
    EXPECT_FALSE(ignore_rules::parse("a/**/z\n").excluded("b/a/z"));
}

TEST(Ignore, DirectoryExcludesItsContents) {
    ignore_rules r = ignore_rules::parse("node_modules\n/secret/\n./tmp\n");
    EXPECT_TRUE(r.excluded("node_modules"));
    EXPECT_TRUE(r.excluded("node_modules/x/index.js"));
    EXPECT_TRUE(r.excluded("secret/key"));
    EXPECT_TRUE(r.excluded("tmp/a"));
    EXPECT_TRUE(r.excluded("./tmp/a"));
    EXPECT_FALSE(r.excluded("src/node_modules_x"));
    EXPECT_FALSE(r.excluded("node_modules_x"));
    // "**/name" catches the directory at any depth, and so everything below it.
    EXPECT_TRUE(ignore_rules::parse("**/.git\n").excluded("sub/dir/.git/config"));
}

TEST(Ignore, ExceptionsAndLastMatchWins) {
    ignore_rules r = ignore_rules::parse("*.md\n!README.md\n");
    EXPECT_TRUE(r.excluded("CHANGES.md"));
    EXPECT_FALSE(r.excluded("README.md"));
    EXPECT_TRUE(r.has_exceptions());
    // Order matters: a later exclusion overrides the earlier exception.
    ignore_rules later = ignore_rules::parse("*.md\n!README*.md\nREADME-secret.md\n");
    EXPECT_FALSE(later.excluded("README.md"));
    EXPECT_TRUE(later.excluded("README-secret.md"));
    ignore_rules reversed = ignore_rules::parse("!README.md\n*.md\n");
    EXPECT_TRUE(reversed.excluded("README.md"));
    // An exception can bring back a file inside an excluded directory.
    ignore_rules dir = ignore_rules::parse("docs\n!docs/keep.txt\n");
    EXPECT_TRUE(dir.excluded("docs/other.txt"));
    EXPECT_FALSE(dir.excluded("docs/keep.txt"));
    EXPECT_FALSE(ignore_rules::parse("docs\n").has_exceptions());
}

TEST(Ignore, CommentsBlankLinesAndClasses) {
    ignore_rules r = ignore_rules::parse("# *.c\n\n   \n  data[0-9].bin  \nx[^a].y\n");
    EXPECT_FALSE(r.excluded("main.c"));
    EXPECT_TRUE(r.excluded("data7.bin"));
    EXPECT_FALSE(r.excluded("dataa.bin"));
    EXPECT_TRUE(r.excluded("xb.y"));
    EXPECT_FALSE(r.excluded("xa.y"));
    EXPECT_TRUE(ignore_rules::parse("\\#literal\n").excluded("#literal"));
    EXPECT_FALSE(ignore_rules::parse("").excluded("anything"));
}

TEST(Ignore, MalformedPatternIsAnErrorWithItsLine) {
    try {
        ignore_rules::parse("ok\n\nbad[\n");
        FAIL() << "no error";
    } catch (const error& e) {
        EXPECT_STREQ(e.what(), ".piecesignore:3: pattern \"bad[\" has an unterminated [");
    }
}

// ---- VOLUME, STOPSIGNAL, HEALTHCHECK, ONBUILD, MAINTAINER ----

TEST(Piecefile, VolumeTakesShellOrJsonForm) {
    instruction shell = only("volume /a \"/b c\" $DIR");
    EXPECT_EQ(shell.keyword, "VOLUME");
    EXPECT_FALSE(shell.exec_form);
    EXPECT_EQ(expand_words(shell.args.at(0), {{"DIR", "/d"}}), (strings{"/a", "/b c", "/d"}));
    instruction json = only("VOLUME [\"/a\", \"/b\"]");
    EXPECT_TRUE(json.exec_form);
    EXPECT_EQ(json.args, (strings{"/a", "/b"}));
}

TEST(Piecefile, VolumeErrors) {
    EXPECT_EQ(parse_error("FROM scratch\nVOLUME\n"), "Piecefile:2: VOLUME needs at least one path: VOLUME /path ...");
    EXPECT_EQ(parse_error("FROM scratch\nVOLUME []\n"), "Piecefile:2: VOLUME needs at least one path");
    EXPECT_EQ(parse_error("FROM scratch\nVOLUME [\"/a\", \" \"]\n"), "Piecefile:2: VOLUME: a path cannot be empty");
    EXPECT_EQ(parse_error("FROM scratch\nVOLUME /a \"\"\n"), "Piecefile:2: VOLUME: a path cannot be empty");
    EXPECT_EQ(parse_error("FROM scratch\nVOLUME [\"/a\", 1]\n"),
              "Piecefile:2: VOLUME: the JSON array must hold only strings, got 1");
}

TEST(Piecefile, StopSignalTakesANameOrANumber) {
    for (const char* sig : {"SIGQUIT", "QUIT", "sigquit", "3", "RTMIN+2", "$SIG"})
        EXPECT_EQ(only(std::string("STOPSIGNAL ") + sig).args, strings{sig});
    EXPECT_EQ(parse_error("FROM scratch\nSTOPSIGNAL SIGNOPE\n"), "Piecefile:2: STOPSIGNAL: unknown signal \"SIGNOPE\"");
    EXPECT_EQ(parse_error("FROM scratch\nSTOPSIGNAL 0\n"), "Piecefile:2: STOPSIGNAL: invalid signal 0");
    EXPECT_EQ(parse_error("FROM scratch\nSTOPSIGNAL 99\n"), "Piecefile:2: STOPSIGNAL: invalid signal 99");
    EXPECT_EQ(parse_error("FROM scratch\nSTOPSIGNAL TERM KILL\n"),
              "Piecefile:2: STOPSIGNAL takes one signal, a name (SIGTERM, TERM) or a number");
    EXPECT_EQ(parse_error("FROM scratch\nSTOPSIGNAL\n"), "Piecefile:2: STOPSIGNAL needs a signal: STOPSIGNAL SIGTERM");
    EXPECT_EQ(parse_error("FROM scratch\nSTOPSIGNAL --x=1 TERM\n"), "Piecefile:2: STOPSIGNAL takes no flags, got --x");
}

TEST(Piecefile, HealthcheckShellFormIsCmdShell) {
    instruction ins = only("healthcheck --interval=30s --timeout=1m30s --start-period=1.5s --start-interval=250ms "
                           "--retries=3 cmd wget -q -O- http://localhost/ || exit 1");
    EXPECT_EQ(ins.keyword, "HEALTHCHECK");
    EXPECT_EQ(ins.args, (strings{"CMD", "wget -q -O- http://localhost/ || exit 1"}));
    healthcheck h = parse_healthcheck(ins);
    EXPECT_EQ(h.test, (strings{"CMD-SHELL", "wget -q -O- http://localhost/ || exit 1"}));
    EXPECT_EQ(h.interval, 30'000'000'000);
    EXPECT_EQ(h.timeout, 90'000'000'000);
    EXPECT_EQ(h.start_period, 1'500'000'000);
    EXPECT_EQ(h.start_interval, 250'000'000);
    EXPECT_EQ(h.retries, 3);
}

TEST(Piecefile, HealthcheckExecFormAndNone) {
    healthcheck exec = parse_healthcheck(only("HEALTHCHECK CMD [\"/bin/check\", \"a b\"]"));
    EXPECT_EQ(exec.test, (strings{"CMD", "/bin/check", "a b"}));
    EXPECT_EQ(exec.interval, 0);
    EXPECT_EQ(exec.retries, 0);
    EXPECT_EQ(parse_healthcheck(only("HEALTHCHECK none")).test, strings{"NONE"});
    // Zero is allowed (the runtime's default); an empty value leaves the setting unset.
    healthcheck zero = parse_healthcheck(only("HEALTHCHECK --interval=0 --timeout= --retries=0 CMD true"));
    EXPECT_EQ(zero.interval, 0);
    EXPECT_EQ(zero.timeout, 0);
}

TEST(Piecefile, HealthcheckErrors) {
    auto err = [](const std::string& line) { return parse_error("FROM scratch\n" + line + "\n"); };
    EXPECT_EQ(err("HEALTHCHECK"), "Piecefile:2: HEALTHCHECK needs CMD and a command, or NONE");
    EXPECT_EQ(err("HEALTHCHECK CMD"), "Piecefile:2: HEALTHCHECK CMD needs a command");
    EXPECT_EQ(err("HEALTHCHECK CMD []"), "Piecefile:2: HEALTHCHECK CMD needs a command");
    EXPECT_EQ(err("HEALTHCHECK RUN true"), "Piecefile:2: HEALTHCHECK: unknown type \"RUN\" (expected CMD or NONE)");
    EXPECT_EQ(err("HEALTHCHECK NONE true"), "Piecefile:2: HEALTHCHECK NONE takes no flags and no arguments");
    EXPECT_EQ(err("HEALTHCHECK --retries=2 NONE"), "Piecefile:2: HEALTHCHECK NONE takes no flags and no arguments");
    EXPECT_EQ(err("HEALTHCHECK --intervall=5s CMD true"),
              "Piecefile:2: HEALTHCHECK has no flag --intervall (it takes --interval, --timeout, --start-period, "
              "--start-interval, --retries)");
    EXPECT_EQ(err("HEALTHCHECK --interval=5s --interval=6s CMD true"), "Piecefile:2: HEALTHCHECK --interval is given twice");
    EXPECT_EQ(err("HEALTHCHECK --interval=500us CMD true"),
              "Piecefile:2: HEALTHCHECK --interval=500us: the duration must be 0 or at least 1ms");
    EXPECT_EQ(err("HEALTHCHECK --timeout=-1s CMD true"),
              "Piecefile:2: HEALTHCHECK --timeout=-1s: the duration cannot be negative");
    EXPECT_EQ(err("HEALTHCHECK --start-period=10 CMD true"),
              "Piecefile:2: HEALTHCHECK --start-period=10: invalid duration \"10\": missing unit (ns, us, ms, s, m or h)");
    EXPECT_EQ(err("HEALTHCHECK --retries=-1 CMD true"), "Piecefile:2: HEALTHCHECK --retries=-1: --retries cannot be negative");
    EXPECT_EQ(err("HEALTHCHECK --retries=three CMD true"),
              "Piecefile:2: HEALTHCHECK --retries=three: --retries takes a whole number");
    EXPECT_EQ(err("HEALTHCHECK CMD [\"a\", ]").substr(0, 40), "Piecefile:2: HEALTHCHECK: invalid JSON a");
}

TEST(Piecefile, OnbuildKeepsTheTriggerAsWritten) {
    instruction ins = only("onbuild  RUN echo \"$X\" > /triggered");
    EXPECT_EQ(ins.keyword, "ONBUILD");
    EXPECT_EQ(ins.args, strings{"RUN echo \"$X\" > /triggered"});
    EXPECT_TRUE(ins.flags.empty());
    // The trigger's own flags stay with it.
    EXPECT_EQ(only("ONBUILD COPY --chown=1:1 a /b").args, strings{"COPY --chown=1:1 a /b"});
    instruction trigger = parse_trigger("COPY --chown=1:1 a /b");
    EXPECT_EQ(trigger.keyword, "COPY");
    EXPECT_EQ(trigger.flags, (pairs{{"chown", "1:1"}}));
}

TEST(Piecefile, OnbuildErrors) {
    EXPECT_EQ(parse_error("FROM scratch\nONBUILD\n"), "Piecefile:2: ONBUILD needs an instruction: ONBUILD RUN ...");
    EXPECT_EQ(parse_error("FROM scratch\nONBUILD ONBUILD RUN x\n"),
              "Piecefile:2: ONBUILD: ONBUILD ONBUILD is not allowed (triggers do not chain)");
    EXPECT_EQ(parse_error("FROM scratch\nONBUILD from alpine\n"), "Piecefile:2: ONBUILD: FROM is not allowed as an ONBUILD trigger");
    EXPECT_EQ(parse_error("FROM scratch\nONBUILD FROM_URL file:///x.tar\n"),
              "Piecefile:2: ONBUILD: FROM_URL is not allowed as an ONBUILD trigger");
    EXPECT_EQ(parse_error("FROM scratch\nONBUILD MAINTAINER me\n"),
              "Piecefile:2: ONBUILD: MAINTAINER is not allowed as an ONBUILD trigger");
    // The trigger's shape is checked when it is written, not only when it runs.
    EXPECT_EQ(parse_error("FROM scratch\nONBUILD COPY a\n"), "Piecefile:2: ONBUILD: COPY needs a source and a destination");
    EXPECT_TRUE(parse_error("FROM scratch\nONBUILD FLY x\n").starts_with("Piecefile:2: ONBUILD: unknown instruction \"FLY\""));
    EXPECT_EQ(parse_error("ONBUILD RUN x\nFROM scratch\n"),
              "Piecefile:1: expected FROM or FROM_URL before ONBUILD (only ARG may come first)");
    EXPECT_THROW(parse_trigger("ONBUILD RUN x"), error);
}

TEST(Piecefile, MaintainerTakesTheRestOfTheLine) {
    EXPECT_EQ(only("MAINTAINER  Jane Doe <jane@example.com>").args, strings{"Jane Doe <jane@example.com>"});
    EXPECT_EQ(parse_error("FROM scratch\nMAINTAINER\n"), "Piecefile:2: MAINTAINER needs a name");
}
