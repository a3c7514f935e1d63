// Content digests ("sha256:<hex>") and streaming SHA-256, for the content-addressed store.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "core/base/unique_fd.h"

namespace pieces::image {

/// A content digest in the OCI form "sha256:<64 lower-case hex digits>".
class digest {
public:
    digest() = default;
    /// Parses "sha256:<hex>"; throws naming the text when it is not one.
    static digest parse(std::string_view text);
    const std::string& str() const { return text_; }
    /// The hex part (what blobs/sha256/ names files by).
    std::string hex() const { return text_.substr(7); }
    bool empty() const { return text_.empty(); }
    bool operator==(const digest&) const = default;
    auto operator<=>(const digest&) const = default;

private:
    explicit digest(std::string text) : text_(std::move(text)) {}
    friend class sha256;
    std::string text_;
};

/// Incremental SHA-256.
class sha256 {
public:
    sha256();
    ~sha256();
    sha256(const sha256&) = delete;
    sha256& operator=(const sha256&) = delete;
    void update(const void* data, size_t size);
    void update(std::string_view data) { update(data.data(), data.size()); }
    /// The digest of everything fed so far; the object is spent afterwards.
    digest finish();

private:
    struct state;
    std::unique_ptr<state> state_;
};

/// SHA-256 of a string.
digest sha256_of(std::string_view data);
/// SHA-256 of what remains to be read from `fd`.
digest sha256_of(borrowed_fd fd);

}  // namespace pieces::image
