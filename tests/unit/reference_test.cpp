// Image references normalised as Docker does, and the one-line errors for bad ones.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/base/error.h"
#include "core/image/reference.h"

using pieces::image::reference;

namespace {

const std::string hex64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

TEST(Reference, OfficialImageGetsLibraryAndLatest) {
    reference r = reference::parse("alpine");
    EXPECT_EQ(r.registry, "docker.io");
    EXPECT_EQ(r.repository, "library/alpine");
    EXPECT_EQ(r.tag, "latest");
    EXPECT_EQ(r.str(), "docker.io/library/alpine:latest");
    EXPECT_EQ(r.store_name(), "alpine:latest");
    EXPECT_EQ(r.api_host(), "registry-1.docker.io");
    EXPECT_EQ(reference::parse("alpine:3.18").str(), "docker.io/library/alpine:3.18");
    EXPECT_EQ(reference::parse("docker.io/alpine:3.18").str(), "docker.io/library/alpine:3.18");
    EXPECT_EQ(reference::parse("index.docker.io/library/alpine").str(), "docker.io/library/alpine:latest");
}

TEST(Reference, UserRepositoryOnDockerHub) {
    reference r = reference::parse("user/x");
    EXPECT_EQ(r.str(), "docker.io/user/x:latest");
    EXPECT_EQ(r.store_name(), "user/x:latest");
    EXPECT_EQ(reference::parse("docker.io/user/x:2").store_name(), "user/x:2");
}

TEST(Reference, HostsWithPortsDotsAndLocalhost) {
    reference r = reference::parse("localhost:5000/x:1");
    EXPECT_EQ(r.registry, "localhost:5000");
    EXPECT_EQ(r.repository, "x");
    EXPECT_EQ(r.tag, "1");
    EXPECT_EQ(r.api_host(), "localhost:5000");
    EXPECT_TRUE(r.is_loopback());
    EXPECT_EQ(r.store_name(), "localhost:5000/x:1");

    reference ip = reference::parse("127.0.0.1:5000/x");
    EXPECT_EQ(ip.registry, "127.0.0.1:5000");
    EXPECT_EQ(ip.str(), "127.0.0.1:5000/x:latest");
    EXPECT_TRUE(ip.is_loopback());

    reference tld = reference::parse("host.tld/a/b:tag");
    EXPECT_EQ(tld.registry, "host.tld");
    EXPECT_EQ(tld.repository, "a/b");
    EXPECT_EQ(tld.tag, "tag");
    EXPECT_FALSE(tld.is_loopback());
    EXPECT_EQ(reference::parse("localhost/x").registry, "localhost");
    EXPECT_EQ(reference::parse("Registry.Example.COM:443/x").store_name(), "registry.example.com:443/x:latest");
    // A first component without a dot, port or "localhost" is a path on Docker Hub.
    EXPECT_EQ(reference::parse("myhost/x").str(), "docker.io/myhost/x:latest");
}

TEST(Reference, DigestReferences) {
    reference r = reference::parse("name@sha256:" + hex64);
    EXPECT_EQ(r.str(), "docker.io/library/name@sha256:" + hex64);
    EXPECT_EQ(r.tag, "");
    EXPECT_EQ(r.manifest_ref(), "sha256:" + hex64);
    EXPECT_EQ(r.store_name(), "");
    reference both = reference::parse("127.0.0.1:5000/a/b:1@sha256:" + hex64);
    EXPECT_EQ(both.tag, "1");
    EXPECT_EQ(both.manifest_ref(), "sha256:" + hex64);
    EXPECT_EQ(both.store_name(), "127.0.0.1:5000/a/b:1");
}

TEST(Reference, SeparatorsInsidePathComponents) {
    EXPECT_EQ(reference::parse("a_b/c__d/e.f/g-h/i---j").repository, "a_b/c__d/e.f/g-h/i---j");
    EXPECT_EQ(reference::parse("x:v1.2-rc_3").tag, "v1.2-rc_3");
    EXPECT_EQ(reference::parse("x:V1").tag, "V1");
}

TEST(Reference, InvalidReferencesAreOneLineErrors) {
    for (const std::string& bad : std::vector<std::string>{"", "Alpine", "alpine:", ":tag", "a//b", "/a", "a/", "a..b", "a_-b", "-a", "a:-tag",
                                  "a:t@g", "a@sha256:abc", "a@md5:" + hex64, "host:port/x", "a:" + std::string(129, 't'),
                                  "localhost:5000/", "x@sha256:" + std::string(64, 'A')}) {
        try {
            reference::parse(bad);
            ADD_FAILURE() << "accepted " << bad;
        } catch (const pieces::error& e) {
            std::string msg = e.what();
            EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
            EXPECT_NE(msg.find("invalid image reference"), std::string::npos) << msg;
        }
    }
}

TEST(Reference, NamesRegistryOnlyWhenAHostComesFirst) {
    EXPECT_TRUE(reference::names_registry("127.0.0.1:5000/bb:1"));
    EXPECT_TRUE(reference::names_registry("localhost/x"));
    EXPECT_TRUE(reference::names_registry("docker.io/library/alpine"));
    EXPECT_TRUE(reference::names_registry("[::1]:5000/x"));
    EXPECT_FALSE(reference::names_registry("ubuntu-22.04"));
    EXPECT_FALSE(reference::names_registry("user/app:1"));
    EXPECT_FALSE(reference::names_registry("alpine:3.18"));
}

}  // namespace
