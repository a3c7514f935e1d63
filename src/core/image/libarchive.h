// Owning handles for libarchive objects, shared by the layer and archive code.
#pragma once

#include <archive.h>
#include <archive_entry.h>

#include <memory>
#include <string>

namespace pieces::image {

struct read_archive_free {
    void operator()(archive* a) const { archive_read_free(a); }
};
struct write_archive_free {
    void operator()(archive* a) const { archive_write_free(a); }
};
struct entry_free {
    void operator()(archive_entry* e) const { archive_entry_free(e); }
};
using read_archive = std::unique_ptr<archive, read_archive_free>;
using write_archive = std::unique_ptr<archive, write_archive_free>;
using entry_ptr = std::unique_ptr<archive_entry, entry_free>;

/// libarchive's last error on `a`, never empty.
inline std::string archive_message(archive* a) {
    const char* s = archive_error_string(a);
    return s ? s : "unknown libarchive error";
}

}  // namespace pieces::image
