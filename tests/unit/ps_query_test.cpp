#include "core/image/ps_query.h"

#include <gtest/gtest.h>

#include "core/image/container_inspect.h"
#include "error_message.h"

using namespace pieces::image;
using pieces::test_support::message_of;

namespace {

container_info sample(const std::string& id, const std::string& name, const std::string& state,
                      std::map<std::string, std::string> labels = {}) {
    container_info c;
    c.id = id;
    c.name = name;
    c.state = state;
    c.status = state == "exited" ? "exited (3)" : state;
    c.image = "busy:1";
    c.image_id = "sha256:aaaa";
    c.command = "sleep 1000";
    c.labels = std::move(labels);
    return c;
}

const std::string id_a = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const std::string id_b = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";

}  // namespace

TEST(PsFilter, KeysCombineAsDockers) {
    auto a = sample(id_a, "web-1", "running", {{"tier", "front"}, {"env", "prod"}});
    auto b = sample(id_b, "db-1", "exited", {{"tier", "back"}});
    auto f = ps_filter::parse({"status=running", "status=exited"});  // one key: either value
    EXPECT_TRUE(f.matches(a, {}));
    EXPECT_TRUE(f.matches(b, {}));
    f = ps_filter::parse({"status=running", "name=db"});  // two keys: both
    EXPECT_FALSE(f.matches(a, {}));
    EXPECT_FALSE(f.matches(b, {}));
    f = ps_filter::parse({"label=tier", "label=env=prod"});  // every label filter
    EXPECT_TRUE(f.matches(a, {}));
    EXPECT_FALSE(f.matches(b, {}));
    f = ps_filter::parse({"label=tier=back"});
    EXPECT_FALSE(f.matches(a, {}));
    EXPECT_TRUE(f.matches(b, {}));
}

TEST(PsFilter, IdNameAndAncestor) {
    auto a = sample(id_a, "web-1", "running");
    EXPECT_TRUE(ps_filter::parse({"id=0123"}).matches(a, {}));
    EXPECT_FALSE(ps_filter::parse({"id=fedc"}).matches(a, {}));
    EXPECT_TRUE(ps_filter::parse({"name=^web"}).matches(a, {}));
    EXPECT_FALSE(ps_filter::parse({"name=^eb"}).matches(a, {}));
    auto anc = ps_filter::parse({"ancestor=other:2"});
    EXPECT_EQ(anc.ancestors(), std::vector<std::string>{"other:2"});
    EXPECT_FALSE(anc.matches(a, {"sha256:bbbb"}));
    EXPECT_TRUE(anc.matches(a, {"sha256:aaaa"}));  // other:2 resolved to the container's image
    EXPECT_TRUE(ps_filter::parse({"ancestor=busy:1"}).matches(a, {}));
    EXPECT_TRUE(ps_filter::parse({}).matches(a, {}));
}

TEST(PsFilter, BadFiltersAreNamed) {
    EXPECT_EQ(message_of([] { ps_filter::parse({"colour=red"}); }),
              "--filter \"colour=red\": unknown key \"colour\" (keys: id, name, label, status, ancestor)");
    EXPECT_EQ(message_of([] { ps_filter::parse({"status=sleeping"}); }),
              "--filter \"status=sleeping\": unknown status (created, running, paused, exited)");
    EXPECT_NE(message_of([] { ps_filter::parse({"name"}); }).find("expected KEY=VALUE"), std::string::npos);
    EXPECT_NE(message_of([] { ps_filter::parse({"label="}); }).find("expected label=KEY"), std::string::npos);
    EXPECT_NE(message_of([] { ps_filter::parse({"name=(("}); }).find("not a valid pattern"), std::string::npos);
}

TEST(PsFormat, RendersThePlaceholders) {
    auto a = sample(id_a, "web-1", "running", {{"tier", "front"}, {"env", "prod"}});
    EXPECT_EQ(ps_format::parse("{{.ID}} {{.Names}} {{.Image}}").render(a, false), "0123456789ab web-1 busy:1");
    EXPECT_EQ(ps_format::parse("{{ .ID }}").render(a, true), id_a);
    EXPECT_EQ(ps_format::parse("{{.Status}}|{{.Command}}").render(a, false), "running|\"sleep 1000\"");
    EXPECT_EQ(ps_format::parse("{{.Labels}}").render(a, false), "env=prod,tier=front");
    EXPECT_EQ(ps_format::parse("{{.Label \"tier\"}}/{{.Label \"none\"}}").render(a, false), "front/");
    EXPECT_EQ(ps_format::parse("{{.Names}}\\t{{.ID}}").render(a, false), "web-1\t0123456789ab");
}

TEST(PsFormat, UnknownPlaceholdersAreOneError) {
    EXPECT_EQ(message_of([] { ps_format::parse("{{.Ports}}"); }),
              "--format \"{{.Ports}}\": pieces knows {{.ID}} {{.Names}} {{.Image}} {{.Command}} {{.Status}} {{.Labels}} "
              "{{.Label \"key\"}}");
    for (const char* bad : {"{{json .}}", "{{.Label}}", "{{.Label tier}}", "{{.ID \"x\"}}", "{{.}}"})
        EXPECT_NE(message_of([&] { ps_format::parse(bad); }).find("pieces knows"), std::string::npos) << bad;
    EXPECT_EQ(message_of([] { ps_format::parse("{{.ID"); }), "--format \"{{.ID\": a \"{{\" is not closed");
}

TEST(PsFormat, CommandsAreCutUnlessAskedNot) {
    EXPECT_EQ(display_command("sh -c 'echo a long command line'", false), "\"sh -c 'echo a long \u2026\"");
    EXPECT_EQ(display_command("sh -c 'echo a long command line'", true), "\"sh -c 'echo a long command line'\"");
    EXPECT_EQ(display_command("echo \"hi\"", false), "\"echo \\\"hi\\\"\"");
    EXPECT_EQ(display_command("12345678901234567890", false), "\"12345678901234567890\"");
}

TEST(ContainerInspect, StateAndCommandFromTheRecord) {
    nlohmann::json record = {{"Config", {{"Entrypoint", {"/bin/sh", "-c"}}, {"Cmd", {"exit 3"}}}},
                             {"HostConfig", {{"Memory", 64}}},
                             {"started", "2026-01-01T00:00:00Z"},
                             {"finished", "2026-01-01T00:00:01Z"}};
    auto c = sample(id_b, "db-1", "exited");
    c.exit_code = 3;
    nlohmann::json doc = inspect_document(record, c, "");
    EXPECT_EQ(doc["Name"], "/db-1");
    EXPECT_EQ(doc["Path"], "/bin/sh");
    EXPECT_EQ(doc["Args"], nlohmann::json({"-c", "exit 3"}));
    EXPECT_EQ(doc["State"]["Status"], "exited");
    EXPECT_EQ(doc["State"]["Running"], false);
    EXPECT_EQ(doc["State"]["ExitCode"], 3);
    EXPECT_EQ(doc["State"]["FinishedAt"], "2026-01-01T00:00:01Z");
    EXPECT_EQ(doc["HostConfig"]["Memory"], 64);
    auto running = sample(id_a, "web-1", "running");
    running.pid = 42;
    doc = inspect_document(nlohmann::json::object(), running, "2026-02-02T00:00:00Z");
    EXPECT_EQ(doc["State"]["Running"], true);
    EXPECT_EQ(doc["State"]["Pid"], 42);
    EXPECT_EQ(doc["State"]["StartedAt"], "2026-02-02T00:00:00Z");
    EXPECT_FALSE(doc["State"].contains("FinishedAt"));
}
