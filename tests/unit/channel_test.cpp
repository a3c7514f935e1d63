#include "core/proc/channel.h"

#include <gtest/gtest.h>

#include "core/base/error.h"

using namespace pieces;
using namespace pieces::proc;

TEST(Channel, EncodeDecodeRoundTrip) {
    message m{msg::go, 0, R"({"id":"x"})"};
    message back = decode(encode(m));
    EXPECT_EQ(back.type, msg::go);
    EXPECT_EQ(back.err, 0);
    EXPECT_EQ(back.payload, m.payload);
}

TEST(Channel, DecodeRejectsShortAndInconsistentFrames) {
    EXPECT_THROW(decode("abc"), error);
    std::string bytes = encode(message{msg::ready, 0, "hello"});
    bytes.pop_back();
    EXPECT_THROW(decode(bytes), error);
}

TEST(Channel, SendReceiveOverSocketPair) {
    auto [a, b] = channel::make_pair();
    a.send(msg::init_pid, "1234");
    message m = b.receive();
    EXPECT_EQ(m.type, msg::init_pid);
    EXPECT_EQ(m.payload, "1234");
}

TEST(Channel, ExpectRethrowsChildErrorWithErrno) {
    auto [a, b] = channel::make_pair();
    a.send(msg::error, "mount \"/proc\": Operation not permitted", 1);
    try {
        b.expect(msg::ready);
        FAIL() << "expected an error";
    } catch (const error& e) {
        EXPECT_STREQ(e.what(), "mount \"/proc\": Operation not permitted");
        EXPECT_EQ(e.code(), 1);
    }
}

TEST(Channel, ExpectNamesBothMessagesOnMismatch) {
    auto [a, b] = channel::make_pair();
    a.send(msg::go);
    try {
        b.expect(msg::ready);
        FAIL() << "expected an error";
    } catch (const error& e) {
        EXPECT_STREQ(e.what(), "channel: expected ready, got go");
    }
}

TEST(Channel, ReceiveFailsWhenPeerIsGone) {
    auto [a, b] = channel::make_pair();
    a.close();
    EXPECT_THROW(b.receive(), error);
}
