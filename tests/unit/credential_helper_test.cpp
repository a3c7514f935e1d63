// Credential helpers and the order of credential sources: which helper a file names for a
// registry, which files are read, what a helper's answer means, and credentials_for through a
// small helper script (a shell script standing in for docker-credential-NAME).
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "core/base/error.h"
#include "core/image/credential_helper.h"
#include "core/image/registry_files.h"

namespace img = pieces::image;
using nlohmann::json;

namespace {

TEST(HelperFor, CredHelpersBeatCredsStoreUnderAnySpelling) {
    json file = json::parse(R"({"credsStore": "pass", "credHelpers": {"http://Registry.Lan:5000/": "secretservice",
        "https://index.docker.io/v1/": "hub"}, "auths": {"registry.lan:5000": {}}})");
    EXPECT_EQ(img::helper_for(file, "registry.lan:5000"), (img::helper_choice{"secretservice", "credHelpers"}));
    EXPECT_EQ(img::helper_for(file, "docker.io"), (img::helper_choice{"hub", "credHelpers"}));
    EXPECT_EQ(img::helper_for(file, "other.example"), (img::helper_choice{"pass", "credsStore"}));
}

TEST(HelperFor, NoneWhenUnnamedOrEmpty) {
    EXPECT_EQ(img::helper_for(json::object(), "docker.io"), std::nullopt);
    EXPECT_EQ(img::helper_for(json::parse(R"({"credsStore": "", "credHelpers": {"a.example": ""}})"), "a.example"), std::nullopt);
    EXPECT_EQ(img::helper_for(json::parse(R"({"credHelpers": {"a.example": "x"}})"), "b.example"), std::nullopt);
}

TEST(HelperAnswer, ParsedOrRefused) {
    EXPECT_EQ(img::parse_helper_credentials(R"({"ServerURL":"127.0.0.1:5000","Username":"tester","Secret":"s3:cret"})"),
              "tester:s3:cret");
    EXPECT_EQ(img::parse_helper_credentials(R"({"ServerURL":"nope:1","Username":"","Secret":""})"), std::nullopt);
    // An identity token keeps the helper's user name, which identity_token() recognises.
    auto token = img::parse_helper_credentials(R"({"ServerURL":"x","Username":"<token>","Secret":"refresh:1"})");
    EXPECT_EQ(token, "<token>:refresh:1");
    EXPECT_EQ(img::identity_token(*token), "refresh:1");
    EXPECT_EQ(img::identity_token("tester:<token>"), std::nullopt);
    EXPECT_EQ(img::identity_token("<token>x:y"), std::nullopt);
    EXPECT_THROW(img::parse_helper_credentials("credentials not found in native keychain\n"), pieces::error);
    EXPECT_THROW(img::parse_helper_credentials(R"({"Username":"tester"})"), pieces::error);
    EXPECT_TRUE(img::helper_says_not_found(1, "credentials not found in native keychain\n"));
    EXPECT_FALSE(img::helper_says_not_found(0, "credentials not found in native keychain\n"));
    EXPECT_FALSE(img::helper_says_not_found(1, "exit status 2: gpg: decryption failed: No secret key\n"));
}

// A scratch HOME, XDG_CONFIG_HOME, DOCKER_CONFIG and PATH entry for a fake helper; all restored after.
class Sources : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/credential-helper-test-XXXXXX";
        dir_ = ::mkdtemp(tmpl);
        for (const char* v : {"PIECES_AUTH_FILE", "HOME", "XDG_CONFIG_HOME", "DOCKER_CONFIG", "PATH"})
            if (const char* old = std::getenv(v)) saved_.emplace_back(v, old);
        ::unsetenv("PIECES_AUTH_FILE");
        ::unsetenv("XDG_CONFIG_HOME");
        ::unsetenv("DOCKER_CONFIG");
        ::setenv("HOME", dir_.c_str(), 1);
        ::setenv("PATH", (dir_ + "/bin:/usr/bin:/bin").c_str(), 1);
        std::filesystem::create_directories(dir_ + "/bin");
        // Knows a.example and both.example; tok.example has an identity token; broken.example fails.
        write("bin/docker-credential-fake", R"(#!/bin/sh
read url
case "$1 $url" in
"get a.example"|"get both.example") echo '{"ServerURL":"'$url'","Username":"from-helper","Secret":"pw"}' ;;
"get tok.example") echo '{"ServerURL":"tok.example","Username":"<token>","Secret":"t"}' ;;
"get broken.example") echo 'the keychain is locked'; exit 3 ;;
*) echo 'credentials not found in native keychain'; exit 1 ;;
esac
)");
        ::chmod((dir_ + "/bin/docker-credential-fake").c_str(), 0755);
    }
    void TearDown() override {
        for (const char* v : {"PIECES_AUTH_FILE", "HOME", "XDG_CONFIG_HOME", "DOCKER_CONFIG", "PATH"}) ::unsetenv(v);
        for (const auto& [k, v] : saved_) ::setenv(k.c_str(), v.c_str(), 1);
        std::filesystem::remove_all(dir_);
    }
    void write(const std::string& name, const std::string& text) {
        std::filesystem::create_directories(std::filesystem::path(dir_ + "/" + name).parent_path());
        std::ofstream(dir_ + "/" + name) << text;
    }
    std::string dir_;
    std::vector<std::pair<std::string, std::string>> saved_;
};

TEST_F(Sources, PiecesFileThenDockersConfigOrOnlyPiecesAuthFile) {
    EXPECT_EQ(img::credential_files(), (std::vector<std::string>{dir_ + "/.config/pieces/auth.json", dir_ + "/.docker/config.json"}));
    ::setenv("DOCKER_CONFIG", (dir_ + "/dc").c_str(), 1);
    ::setenv("XDG_CONFIG_HOME", (dir_ + "/xdg").c_str(), 1);
    EXPECT_EQ(img::credential_files(), (std::vector<std::string>{dir_ + "/xdg/pieces/auth.json", dir_ + "/dc/config.json"}));
    ::setenv("PIECES_AUTH_FILE", (dir_ + "/only.json").c_str(), 1);
    EXPECT_EQ(img::credential_files(), std::vector<std::string>{dir_ + "/only.json"});
}

TEST_F(Sources, HelperFirstThenInlineThenTheNextFile) {
    std::string inline_b = img::base64("inline:pw");
    write(".config/pieces/auth.json", R"({"credsStore": "fake", "auths": {"a.example": {}, "b.example": {"auth": ")" + inline_b + R"("}}})");
    write(".docker/config.json", R"({"auths": {"b.example": {"auth": ")" + img::base64("docker:pw") + R"("},
        "c.example": {"username": "docker", "password": "c"}}})");
    EXPECT_EQ(img::credentials_for("a.example"), "from-helper:pw");
    // The helper is asked even though pieces' file has an inline entry; it has none, so Docker's file answers.
    EXPECT_EQ(img::credentials_for("b.example"), "docker:pw");
    EXPECT_EQ(img::credentials_for("c.example"), "docker:c");
    EXPECT_EQ(img::credentials_for("d.example"), std::nullopt);
    // Without a helper in pieces' file, its inline entry comes before Docker's.
    write(".config/pieces/auth.json", R"({"auths": {"b.example": {"auth": ")" + inline_b + R"("}}})");
    EXPECT_EQ(img::credentials_for("b.example"), "inline:pw");
}

TEST_F(Sources, HelperErrorsNameTheHelperAndTheFile) {
    std::string file = dir_ + "/.docker/config.json";
    write(".docker/config.json", R"({"credsStore": "nosuch", "credHelpers": {"broken.example": "fake", "tok.example": "fake"}})");
    auto message = [](const std::string& registry) {
        try {
            img::credentials_for(registry);
        } catch (const pieces::error& e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    EXPECT_EQ(message("a.example"), "credentials for a.example: docker-credential-nosuch (credsStore in " + file +
                                        "): not installed (no docker-credential-nosuch in PATH)");
    EXPECT_EQ(message("broken.example"), "credentials for broken.example: docker-credential-fake (credHelpers in " + file +
                                             "): exited with status 3: the keychain is locked");
    // An identity token is no error: it comes through for the token server's refresh grant.
    EXPECT_EQ(message("tok.example"), "no error");
    EXPECT_EQ(img::credentials_for("tok.example"), "<token>:t");
}

TEST_F(Sources, LoginStoresThroughTheHelperAndLeavesAMarker) {
    // A helper that logs what it is asked: the secret reaches it, and the file keeps only the marker.
    write("bin/docker-credential-log", "#!/bin/sh\necho \"$1 $(cat)\" >> \"$HOME/log\"\n");
    ::chmod((dir_ + "/bin/docker-credential-log").c_str(), 0755);
    ::setenv("PIECES_AUTH_FILE", (dir_ + "/auth.json").c_str(), 1);
    write("auth.json", R"({"credHelpers": {"docker.io": "log"}, "auths": {"index.docker.io": {"auth": "eDp5"}}})");
    img::save_credentials("docker.io", "me:pw:1");
    json written = json::parse(std::ifstream(dir_ + "/auth.json"));
    EXPECT_EQ(written["auths"], json::parse(R"({"https://index.docker.io/v1/": {}})"));
    EXPECT_TRUE(img::remove_credentials("docker.io"));
    EXPECT_EQ(json::parse(std::ifstream(dir_ + "/auth.json"))["auths"], json::object());
    // Nothing stored in the file now: not logged in, and the helper is not asked.
    EXPECT_FALSE(img::remove_credentials("docker.io"));
    std::ifstream log(dir_ + "/log");
    std::string store, erase, more;
    std::getline(log, store);
    std::getline(log, erase);
    EXPECT_EQ(json::parse(store.substr(6)), json::parse(R"({"ServerURL":"https://index.docker.io/v1/","Username":"me","Secret":"pw:1"})"));
    EXPECT_EQ(erase, "erase https://index.docker.io/v1/");
    EXPECT_FALSE(std::getline(log, more)) << more;
}

}  // namespace
