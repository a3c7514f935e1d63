// Sizes and durations as users type them on command lines and in Piecefiles.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace pieces {

/// "1024", "512k", "64m", "1.5g", "2GiB", "100b": a number of bytes, with an optional unit
/// k/m/g/t/p (powers of 1024, any case, optionally followed by "i" and/or "b"). Nothing when the
/// text is not that, is negative, or does not fit in an int64_t.
std::optional<int64_t> parse_byte_size(std::string_view text);

/// A duration in Go's notation, as Docker takes it ("30s", "1m30s", "1.5h", "250ms", "-1m",
/// "0"): in nanoseconds. Throws "invalid duration ..." naming what is wrong.
int64_t parse_duration(std::string_view text);

}  // namespace pieces
