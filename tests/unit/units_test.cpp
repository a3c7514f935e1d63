// Sizes and durations as command lines and Piecefiles give them.
#include "core/base/units.h"

#include <gtest/gtest.h>

#include "core/base/error.h"

using pieces::parse_byte_size;
using pieces::parse_duration;

TEST(Units, ByteSizesWithPowerOf1024Units) {
    EXPECT_EQ(parse_byte_size("0"), 0);
    EXPECT_EQ(parse_byte_size("1024"), 1024);
    EXPECT_EQ(parse_byte_size("100b"), 100);
    EXPECT_EQ(parse_byte_size("512k"), 512 << 10);
    EXPECT_EQ(parse_byte_size("64m"), 64 << 20);
    EXPECT_EQ(parse_byte_size("64M"), 64 << 20);
    EXPECT_EQ(parse_byte_size("2GiB"), int64_t{2} << 30);
    EXPECT_EQ(parse_byte_size("2gb"), int64_t{2} << 30);
    EXPECT_EQ(parse_byte_size("1.5g"), int64_t{3} << 29);
    EXPECT_EQ(parse_byte_size(".5k"), 512);
    EXPECT_EQ(parse_byte_size("1t"), int64_t{1} << 40);
    EXPECT_EQ(parse_byte_size("8191p"), int64_t{8191} << 50);
    for (const char* bad : {"", "m", "-1", "+5", "12x", "1.2.3m", "1.m", "5 m", "1e3", "inf", "64mm", "8192p", "1kib2"})
        EXPECT_EQ(parse_byte_size(bad), std::nullopt) << bad;
}

TEST(Units, DurationsAreGoDurations) {
    EXPECT_EQ(parse_duration("0"), 0);
    EXPECT_EQ(parse_duration("1ns"), 1);
    EXPECT_EQ(parse_duration("1.5us"), 1'500);
    EXPECT_EQ(parse_duration("2\u00b5s"), 2'000);
    EXPECT_EQ(parse_duration("1h2m3s4ms"), 3'723'004'000'000);
    EXPECT_EQ(parse_duration(".5s"), 500'000'000);
    EXPECT_EQ(parse_duration("-1m"), -60'000'000'000);
    EXPECT_EQ(parse_duration("2562047h"), 2562047LL * 3'600'000'000'000LL);
    for (const char* bad : {"", "s", "5", "5x", "1..5s", ".s", "3000000h", "1s2"})
        EXPECT_THROW(parse_duration(bad), pieces::error) << bad;
}
