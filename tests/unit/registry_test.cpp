// The pure parts of the registry client: challenges, platform choice, media-type checks, the
// conversion of Docker manifests, and the settings and credential files.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "core/base/error.h"
#include "core/image/image.h"
#include "core/image/login.h"
#include "core/image/pull.h"
#include "core/image/push.h"
#include "core/image/digest.h"
#include "core/image/registry.h"
#include "core/image/registry_files.h"

namespace img = pieces::image;
using nlohmann::json;

namespace {

TEST(Challenge, BearerParameters) {
    auto c = img::challenge::parse(R"(Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull")");
    EXPECT_EQ(c.scheme, "Bearer");
    EXPECT_EQ(c.params["realm"], "https://auth.example.com/token");
    EXPECT_EQ(c.params["service"], "registry.example.com");
    EXPECT_EQ(c.params["scope"], "repository:a/b:pull");
    auto b = img::challenge::parse(R"(Basic realm="Registry Realm")");
    EXPECT_EQ(b.scheme, "Basic");
    EXPECT_EQ(b.params["realm"], "Registry Realm");
}

json entry(const std::string& os, const std::string& arch, const std::string& variant, const std::string& digit) {
    json p = {{"os", os}, {"architecture", arch}};
    if (!variant.empty()) p["variant"] = variant;
    return {{"mediaType", "application/vnd.oci.image.manifest.v1+json"}, {"digest", "sha256:" + std::string(64, digit[0])},
            {"size", 1}, {"platform", p}};
}

TEST(Platform, ChoosesThisMachineSkippingAttestations) {
    json index = {{"manifests", json::array({entry("unknown", "unknown", "", "1"), entry("linux", "arm64", "v8", "2"),
                                             entry("linux", "amd64", "", "3"), entry("linux", "arm", "v6", "4"),
                                             entry("linux", "arm", "v7", "5")})}};
    EXPECT_EQ(img::choose_platform(index, img::platform::parse("linux/amd64"))["digest"], "sha256:" + std::string(64, '3'));
    EXPECT_EQ(img::choose_platform(index, img::platform::parse("linux/arm64"))["digest"], "sha256:" + std::string(64, '2'));
    EXPECT_EQ(img::choose_platform(index, img::platform::parse("linux/arm/v7"))["digest"], "sha256:" + std::string(64, '5'));
    try {
        img::choose_platform(index, img::platform::parse("linux/s390x"));
        FAIL() << "chose something for s390x";
    } catch (const pieces::error& e) {
        std::string msg = e.what();
        EXPECT_NE(msg.find("no image for linux/s390x"), std::string::npos) << msg;
        EXPECT_NE(msg.find("linux/arm64/v8"), std::string::npos) << msg;
        EXPECT_EQ(msg.find("unknown"), std::string::npos) << msg;
    }
    // An attestation marked only by its annotation is skipped too.
    json marked = {{"manifests", json::array({entry("linux", "amd64", "", "6")})}};
    marked["manifests"][0]["annotations"] = {{"vnd.docker.reference.type", "attestation-manifest"}};
    EXPECT_THROW(img::choose_platform(marked, img::platform::parse("linux/amd64")), pieces::error);
    EXPECT_THROW(img::platform::parse("amd64"), pieces::error);
    EXPECT_EQ(img::platform::host().str(), "linux/" + img::oci_architecture());
}

TEST(ManifestType, ContentTypeMustAgree) {
    json oci = {{"schemaVersion", 2}, {"mediaType", "application/vnd.oci.image.manifest.v1+json"}, {"config", json::object()}};
    EXPECT_EQ(img::check_manifest_type(oci, "application/vnd.oci.image.manifest.v1+json"), "application/vnd.oci.image.manifest.v1+json");
    EXPECT_THROW(img::check_manifest_type(oci, "application/vnd.docker.distribution.manifest.v2+json"), pieces::error);
    // Some registries serve a generic type: the body's own mediaType decides.
    EXPECT_EQ(img::check_manifest_type(oci, "application/json"), "application/vnd.oci.image.manifest.v1+json");
    json bare = {{"schemaVersion", 2}, {"manifests", json::array()}};
    EXPECT_EQ(img::check_manifest_type(bare, "application/vnd.oci.image.index.v1+json; charset=utf-8"), img::media_oci_index);
    EXPECT_THROW(img::check_manifest_type(bare, "application/vnd.oci.image.manifest.v1+json"), pieces::error);
    EXPECT_THROW(img::check_manifest_type(json{{"schemaVersion", 1}}, "application/json"), pieces::error);
    EXPECT_THROW(img::check_manifest_type(json::array(), "application/vnd.oci.image.manifest.v1+json"), pieces::error);
}

TEST(Manifest, DockerSchema2BecomesOci) {
    json docker = {{"schemaVersion", 2},
                   {"mediaType", img::media_docker_manifest},
                   {"config", {{"mediaType", img::media_docker_config}, {"digest", "sha256:" + std::string(64, 'a')}, {"size", 2}}},
                   {"layers", json::array({{{"mediaType", img::media_docker_layer_gzip}, {"digest", "sha256:" + std::string(64, 'b')}, {"size", 3}}})}};
    json oci = img::oci_manifest_of(docker);
    EXPECT_EQ(oci["mediaType"], img::media_manifest);
    EXPECT_EQ(oci["config"]["mediaType"], img::media_config);
    EXPECT_EQ(oci["layers"][0]["mediaType"], img::media_layer_gzip);
    EXPECT_EQ(oci["layers"][0]["digest"], docker["layers"][0]["digest"]);
    json foreign = docker;
    foreign["layers"][0]["mediaType"] = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
    EXPECT_THROW(img::oci_manifest_of(foreign), pieces::error);
}

class ConfigFiles : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/registry-test-XXXXXX";
        dir_ = ::mkdtemp(tmpl);
        ::setenv("PIECES_REGISTRIES_CONFIG", (dir_ + "/registries.json").c_str(), 1);
        ::setenv("PIECES_AUTH_FILE", (dir_ + "/auth.json").c_str(), 1);
    }
    void TearDown() override {
        ::unsetenv("PIECES_REGISTRIES_CONFIG");
        ::unsetenv("PIECES_AUTH_FILE");
        std::remove((dir_ + "/registries.json").c_str());
        std::remove((dir_ + "/auth.json").c_str());
        ::rmdir(dir_.c_str());
    }
    void write(const std::string& name, const std::string& text) { std::ofstream(dir_ + "/" + name) << text; }
    std::string dir_;
};

TEST_F(ConfigFiles, LoopbackIsInsecureByDefaultAndMirrorsAreRead) {
    EXPECT_TRUE(img::settings_for("127.0.0.1:5000").insecure);
    EXPECT_TRUE(img::settings_for("localhost:5000").insecure);
    EXPECT_FALSE(img::settings_for("registry.example.com").insecure);
    write("registries.json", R"({"registries": {"docker.io": {"mirrors": ["http://127.0.0.1:5001/"]},
        "registry.lan:5000": {"insecure": true, "ca_file": "/ca.pem"}, "localhost:5000": {"insecure": false}}})");
    EXPECT_EQ(img::settings_for("docker.io").mirrors, std::vector<std::string>{"http://127.0.0.1:5001"});
    EXPECT_TRUE(img::settings_for("registry.lan:5000").insecure);
    EXPECT_EQ(img::settings_for("registry.lan:5000").ca_file, "/ca.pem");
    EXPECT_FALSE(img::settings_for("localhost:5000").insecure);
    write("registries.json", "{broken");
    EXPECT_THROW(img::settings_for("docker.io"), pieces::error);
}

TEST(Base64, Rfc4648Vectors) {
    const std::pair<const char*, const char*> vectors[] = {{"", ""},          {"f", "Zg=="},         {"fo", "Zm8="},
                                                           {"foo", "Zm9v"},   {"foob", "Zm9vYg=="},  {"fooba", "Zm9vYmE="},
                                                           {"foobar", "Zm9vYmFy"}};
    for (const auto& [plain, coded] : vectors) EXPECT_EQ(img::base64(plain), coded) << plain;
}

TEST(Sha256, KnownDigests) {
    EXPECT_EQ(img::sha256_of(std::string_view()).str(), "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    EXPECT_EQ(img::sha256_of(std::string_view("abc")).str(), "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    img::sha256 h;  // fed in pieces, as layers are streamed
    std::string million(1000000, 'a');
    for (size_t i = 0; i < million.size(); i += 4096) h.update(million.data() + i, std::min<size_t>(4096, million.size() - i));
    EXPECT_EQ(h.finish().str(), "sha256:cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_F(ConfigFiles, AuthValuesDecodeWithAndWithoutPadding) {
    write("auth.json", R"({"auths": {"a.example": {"auth": "dTpw"}, "b.example": {"auth": "dTpwdw=="},
        "c.example": {"auth": "dTpwd3g="}, "d.example": {"auth": "dTp w"}, "e.example": {"auth": "dTpwdw="}}})");
    EXPECT_EQ(img::credentials_for("a.example"), "u:p");
    EXPECT_EQ(img::credentials_for("b.example"), "u:pw");
    EXPECT_EQ(img::credentials_for("c.example"), "u:pwx");
    EXPECT_THROW(img::credentials_for("d.example"), pieces::error);
    EXPECT_THROW(img::credentials_for("e.example"), pieces::error);
}

TEST_F(ConfigFiles, CredentialsFromDockerStyleAuths) {
    EXPECT_EQ(img::credentials_for("docker.io"), std::nullopt);
    // "dXNlcjpwYXNz" is base64 of "user:pass".
    write("auth.json", R"({"auths": {"https://index.docker.io/v1/": {"auth": "dXNlcjpwYXNz"},
        "registry.lan:5000": {"username": "u", "password": "p:w"}, "bad.example": {"auth": "!!!!"}}})");
    EXPECT_EQ(img::credentials_for("docker.io"), "user:pass");
    EXPECT_EQ(img::credentials_for("registry.lan:5000"), "u:p:w");
    EXPECT_EQ(img::credentials_for("other.example"), std::nullopt);
    EXPECT_THROW(img::credentials_for("bad.example"), pieces::error);
    // `docker login` against an OAuth2 token server keeps a refresh token beside an empty password;
    // the token is what counts.
    write("auth.json", R"({"auths": {"acr.example": {"auth": "dXNlcjo=", "identitytoken": "refresh-1"}}})");
    EXPECT_EQ(img::credentials_for("acr.example"), "<token>:refresh-1");
}

TEST_F(ConfigFiles, SavedCredentialsReplaceTheirRegistrysEntriesAndKeepTheRest) {
    write("auth.json", R"({"currentContext": "kept", "auths": {"other.example": {"auth": "b3RoZXI6cA=="},
        "http://registry.lan:5000/": {"auth": "b2xkOm9sZA=="}}})");
    img::save_credentials("registry.lan:5000", "new:pass");
    EXPECT_EQ(img::credentials_for("registry.lan:5000"), "new:pass");
    EXPECT_EQ(img::credentials_for("other.example"), "other:p");
    json file = json::parse(std::ifstream(dir_ + "/auth.json"));
    EXPECT_EQ(file["currentContext"], "kept");
    EXPECT_EQ(file["auths"].size(), 2u);  // the old spelling of the same registry is gone
    EXPECT_TRUE(file["auths"].contains("registry.lan:5000"));
    struct stat st{};
    ASSERT_EQ(::stat((dir_ + "/auth.json").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0600u);

    EXPECT_TRUE(img::remove_credentials("registry.lan:5000"));
    EXPECT_EQ(img::credentials_for("registry.lan:5000"), std::nullopt);
    EXPECT_EQ(img::credentials_for("other.example"), "other:p");
    EXPECT_FALSE(img::remove_credentials("registry.lan:5000"));
}

TEST_F(ConfigFiles, DockerHubIsStoredUnderDockersKeyAndFoundByPull) {
    for (const char* written : {"", "docker.io", "index.docker.io", "registry-1.docker.io", "https://index.docker.io/v1/"})
        EXPECT_EQ(img::login_registry(written), "docker.io") << written;
    EXPECT_EQ(img::login_registry("http://Registry.LAN:5000/"), "registry.lan:5000");
    EXPECT_THROW(img::login_registry("justaname"), pieces::error);
    EXPECT_EQ(img::auth_key_for("docker.io"), "https://index.docker.io/v1/");
    EXPECT_EQ(img::auth_key_for("localhost:5000"), "localhost:5000");
    write("auth.json", R"({"auths": {"docker.io": {"auth": "b2xkOm9sZA=="}}})");
    img::save_credentials("docker.io", "hub:pw");
    json file = json::parse(std::ifstream(dir_ + "/auth.json"));
    EXPECT_EQ(file["auths"].size(), 1u);
    EXPECT_TRUE(file["auths"].contains("https://index.docker.io/v1/"));
    EXPECT_EQ(img::credentials_for("docker.io"), "hub:pw");
    EXPECT_THROW(img::logout("registry.lan:5000"), pieces::error);
    img::logout("docker.io");
    EXPECT_EQ(img::credentials_for("docker.io"), std::nullopt);
}

TEST(Registry, LocationsResolveAgainstTheRequest) {
    std::string url = "http://127.0.0.1:5000/v2/bb/blobs/uploads/";
    EXPECT_EQ(img::resolve_location(url, "/v2/bb/blobs/uploads/abc?_state=x"), "http://127.0.0.1:5000/v2/bb/blobs/uploads/abc?_state=x");
    EXPECT_EQ(img::resolve_location(url, "https://storage.example/up/1"), "https://storage.example/up/1");
    EXPECT_EQ(img::resolve_location(url, "//storage.example/up/1"), "http://storage.example/up/1");
    EXPECT_EQ(img::resolve_location(url, "abc"), "http://127.0.0.1:5000/v2/bb/blobs/uploads/abc");
    EXPECT_EQ(img::resolve_location("http://h:1", "abc"), "http://h:1/abc");
    EXPECT_EQ(img::with_query("http://h/u/1?_state=x", "digest=sha256%3Aab"), "http://h/u/1?_state=x&digest=sha256%3Aab");
    EXPECT_EQ(img::with_query("http://h/u/1", "digest=d"), "http://h/u/1?digest=d");
}

TEST(Registry, TokensLiveAtLeastAMinute) {
    EXPECT_EQ(img::token_lifetime(json{{"token", "t"}}), std::chrono::seconds(55));
    EXPECT_EQ(img::token_lifetime(json{{"token", "t"}, {"expires_in", 5}}), std::chrono::seconds(55));
    EXPECT_EQ(img::token_lifetime(json{{"token", "t"}, {"expires_in", 300}}), std::chrono::seconds(295));
}

TEST(Push, DestinationIsTheImagesOwnNameOnlyWhenItNamesARegistry) {
    EXPECT_EQ(img::push_destination("127.0.0.1:5000/bb:1", "").str(), "127.0.0.1:5000/bb:1");
    EXPECT_EQ(img::push_destination("ubuntu-22.04", "localhost:5000/u").str(), "localhost:5000/u:latest");
    try {
        img::push_destination("ubuntu-22.04", "");
        FAIL() << "pushed a local name somewhere";
    } catch (const pieces::error& e) {
        EXPECT_NE(std::string(e.what()).find("names no registry"), std::string::npos) << e.what();
    }
    EXPECT_THROW(img::push_destination("x", "localhost:5000/x@sha256:" + std::string(64, 'a')), pieces::error);
}

}  // namespace
