// libarchive, loaded on first use. Linked in, it costs every pieces command at start-up: it
// brings libxml2, ICU, a dynamic libstdc++ and five compression libraries with it (3.7 ms to
// load on these machines, measured with an empty program, of the 9.9 ms `pieces --version`
// took); `pieces ps`, `images`, `logs`, `stop` and `rm` never need it, nor does `pieces run`
// once the image is unpacked.
//
// The functions pieces calls are defined here under their own names, each forwarding to the
// library's symbol on first call; the compiler checks every signature against the library's
// header. They are not exported (pieces is not linked with --export-dynamic), so libarchive
// keeps calling its own functions.
#include <archive.h>
#include <archive_entry.h>

#include <cstdarg>
#include <cstdio>

#include "core/base/dynamic_library.h"

namespace pieces::image {
namespace {

void* libarchive() {
    static void* lib = open_library("libarchive.so.13", "libarchive is needed to read and write layers and archives");
    return lib;
}

template <typename Fn>
Fn symbol(void* lib, const char* name) {
    Fn fn = nullptr;
    resolve_symbol(lib, fn, name, "libarchive");
    return fn;
}

}  // namespace
}  // namespace pieces::image

// One forwarding definition: the return type, the name, the parameter list and the arguments.
#define PIECES_ARCHIVE(ret, name, params, args)                                                                   \
    extern "C" ret name params {                                                                                 \
        static const auto fn = ::pieces::image::symbol<decltype(&::name)>(::pieces::image::libarchive(), #name); \
        return fn args;                                                                                           \
    }

using entry = struct archive_entry;

// Reading
PIECES_ARCHIVE(struct archive*, archive_read_new, (void), ())
PIECES_ARCHIVE(int, archive_read_free, (struct archive* a), (a))
PIECES_ARCHIVE(int, archive_read_support_filter_gzip, (struct archive* a), (a))
PIECES_ARCHIVE(int, archive_read_support_filter_xz, (struct archive* a), (a))
PIECES_ARCHIVE(int, archive_read_support_filter_zstd, (struct archive* a), (a))
PIECES_ARCHIVE(int, archive_read_support_format_raw, (struct archive* a), (a))
PIECES_ARCHIVE(int, archive_read_support_format_tar, (struct archive* a), (a))
PIECES_ARCHIVE(int, archive_read_open,
               (struct archive* a, void* data, archive_open_callback* o, archive_read_callback* r, archive_close_callback* c),
               (a, data, o, r, c))
PIECES_ARCHIVE(int, archive_read_open_fd, (struct archive* a, int fd, size_t block), (a, fd, block))
PIECES_ARCHIVE(int, archive_read_next_header, (struct archive* a, entry** e), (a, e))
PIECES_ARCHIVE(la_ssize_t, archive_read_data, (struct archive* a, void* buf, size_t n), (a, buf, n))
PIECES_ARCHIVE(int, archive_read_data_block, (struct archive* a, const void** buf, size_t* n, la_int64_t* offset),
               (a, buf, n, offset))

// Writing
PIECES_ARCHIVE(struct archive*, archive_write_new, (void), ())
PIECES_ARCHIVE(int, archive_write_free, (struct archive* a), (a))
PIECES_ARCHIVE(int, archive_write_close, (struct archive* a), (a))
PIECES_ARCHIVE(int, archive_write_add_filter_gzip, (struct archive* a), (a))
PIECES_ARCHIVE(int, archive_write_set_filter_option, (struct archive* a, const char* m, const char* o, const char* v),
               (a, m, o, v))
PIECES_ARCHIVE(int, archive_write_set_format_pax_restricted, (struct archive* a), (a))
PIECES_ARCHIVE(int, archive_write_set_format_raw, (struct archive* a), (a))
PIECES_ARCHIVE(int, archive_write_set_bytes_in_last_block, (struct archive* a, int n), (a, n))
PIECES_ARCHIVE(int, archive_write_open,
               (struct archive* a, void* data, archive_open_callback* o, archive_write_callback* w, archive_close_callback* c),
               (a, data, o, w, c))
PIECES_ARCHIVE(int, archive_write_open_fd, (struct archive* a, int fd), (a, fd))
PIECES_ARCHIVE(int, archive_write_header, (struct archive* a, entry* e), (a, e))
PIECES_ARCHIVE(la_ssize_t, archive_write_data, (struct archive* a, const void* buf, size_t n), (a, buf, n))

// Errors
PIECES_ARCHIVE(int, archive_errno, (struct archive* a), (a))
PIECES_ARCHIVE(const char*, archive_error_string, (struct archive* a), (a))

// archive_set_error is variadic: the message is formatted here and passed on whole.
extern "C" void archive_set_error(struct archive* a, int err, const char* fmt, ...) {
    static const auto fn = pieces::image::symbol<decltype(&::archive_set_error)>(pieces::image::libarchive(),
                                                                                 "archive_set_error");
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fn(a, err, "%s", msg);
}

// Entries
PIECES_ARCHIVE(entry*, archive_entry_new, (void), ())
PIECES_ARCHIVE(void, archive_entry_free, (entry* e), (e))
PIECES_ARCHIVE(__LA_MODE_T, archive_entry_filetype, (entry* e), (e))
PIECES_ARCHIVE(__LA_MODE_T, archive_entry_perm, (entry* e), (e))
PIECES_ARCHIVE(la_int64_t, archive_entry_uid, (entry* e), (e))
PIECES_ARCHIVE(la_int64_t, archive_entry_gid, (entry* e), (e))
PIECES_ARCHIVE(dev_t, archive_entry_rdev, (entry* e), (e))
PIECES_ARCHIVE(la_int64_t, archive_entry_size, (entry* e), (e))
PIECES_ARCHIVE(int, archive_entry_size_is_set, (entry* e), (e))
PIECES_ARCHIVE(time_t, archive_entry_atime, (entry* e), (e))
PIECES_ARCHIVE(long, archive_entry_atime_nsec, (entry* e), (e))
PIECES_ARCHIVE(int, archive_entry_atime_is_set, (entry* e), (e))
PIECES_ARCHIVE(time_t, archive_entry_mtime, (entry* e), (e))
PIECES_ARCHIVE(long, archive_entry_mtime_nsec, (entry* e), (e))
PIECES_ARCHIVE(int, archive_entry_mtime_is_set, (entry* e), (e))
PIECES_ARCHIVE(const char*, archive_entry_pathname, (entry* e), (e))
PIECES_ARCHIVE(const char*, archive_entry_pathname_utf8, (entry* e), (e))
PIECES_ARCHIVE(const char*, archive_entry_hardlink, (entry* e), (e))
PIECES_ARCHIVE(const char*, archive_entry_hardlink_utf8, (entry* e), (e))
PIECES_ARCHIVE(const char*, archive_entry_symlink, (entry* e), (e))
PIECES_ARCHIVE(const char*, archive_entry_symlink_utf8, (entry* e), (e))
PIECES_ARCHIVE(void, archive_entry_set_filetype, (entry* e, unsigned int t), (e, t))
PIECES_ARCHIVE(void, archive_entry_set_mode, (entry* e, __LA_MODE_T m), (e, m))
PIECES_ARCHIVE(void, archive_entry_set_perm, (entry* e, __LA_MODE_T m), (e, m))
PIECES_ARCHIVE(void, archive_entry_set_uid, (entry* e, la_int64_t id), (e, id))
PIECES_ARCHIVE(void, archive_entry_set_gid, (entry* e, la_int64_t id), (e, id))
PIECES_ARCHIVE(void, archive_entry_set_rdev, (entry* e, dev_t d), (e, d))
PIECES_ARCHIVE(void, archive_entry_set_size, (entry* e, la_int64_t n), (e, n))
PIECES_ARCHIVE(void, archive_entry_set_mtime, (entry* e, time_t s, long ns), (e, s, ns))
PIECES_ARCHIVE(void, archive_entry_set_pathname, (entry* e, const char* p), (e, p))
PIECES_ARCHIVE(void, archive_entry_copy_pathname, (entry* e, const char* p), (e, p))
PIECES_ARCHIVE(void, archive_entry_copy_hardlink, (entry* e, const char* p), (e, p))
PIECES_ARCHIVE(void, archive_entry_copy_symlink, (entry* e, const char* p), (e, p))
PIECES_ARCHIVE(void, archive_entry_xattr_add_entry, (entry* e, const char* name, const void* value, size_t n),
               (e, name, value, n))
PIECES_ARCHIVE(int, archive_entry_xattr_reset, (entry* e), (e))
PIECES_ARCHIVE(int, archive_entry_xattr_next, (entry* e, const char** name, const void** value, size_t* n),
               (e, name, value, n))
