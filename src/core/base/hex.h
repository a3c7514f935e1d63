// Bytes as lower-case hexadecimal text.
#pragma once

#include <cstddef>
#include <string>

namespace pieces {

/// "0a1b..." for the `size` bytes at `bytes`.
inline std::string hex_of(const void* bytes, size_t size) {
    static constexpr char digits[] = "0123456789abcdef";
    const auto* p = static_cast<const unsigned char*>(bytes);
    std::string out;
    out.reserve(2 * size);
    for (size_t i = 0; i < size; ++i) {
        out += digits[p[i] >> 4];
        out += digits[p[i] & 15];
    }
    return out;
}

}  // namespace pieces
