// Layer unpacking and packing: round trips, whiteouts (checked through a real overlay mount),
// compression, and hostile tarballs that must write nothing outside the layer directory.
// Runs as root (owners, devices, trusted.* xattrs, overlay mounts).
#include <archive.h>
#include <archive_entry.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <thread>

#include "core/base/error.h"
#include "core/base/fs.h"
#include "core/image/digest.h"
#include "core/image/layer.h"

using namespace pieces;
using namespace pieces::image;
namespace stdfs = std::filesystem;

namespace {

// ---- Making tarballs -------------------------------------------------------------------------

la_ssize_t append_to_string(archive*, void* client, const void* buf, size_t n) {
    static_cast<std::string*>(client)->append(static_cast<const char*>(buf), n);
    return static_cast<la_ssize_t>(n);
}

// A tar built entry by entry with libarchive's writer, names kept exactly as given.
class tar_builder {
public:
    struct entry {
        std::string name;
        mode_t mode = 0;  // type and permissions
        std::string data;
        std::string symlink, hardlink;
        dev_t rdev = 0;
        int64_t uid = 0, gid = 0;
        time_t mtime = 1700000000;
        std::vector<std::pair<std::string, std::string>> xattrs;
    };

    static entry make(std::string name, mode_t mode) {
        entry e;
        e.name = std::move(name);
        e.mode = mode;
        return e;
    }
    tar_builder& add(entry e) {
        entries_.push_back(std::move(e));
        return *this;
    }
    tar_builder& file(std::string name, std::string data, mode_t perm = 0644) {
        entry e = make(std::move(name), S_IFREG | perm);
        e.data = std::move(data);
        return add(std::move(e));
    }
    tar_builder& dir(std::string name, mode_t perm = 0755) { return add(make(std::move(name), S_IFDIR | perm)); }
    tar_builder& symlink(std::string name, std::string target) {
        entry e = make(std::move(name), S_IFLNK | 0777);
        e.symlink = std::move(target);
        return add(std::move(e));
    }
    tar_builder& hardlink(std::string name, std::string target) {
        entry e = make(std::move(name), S_IFREG | 0644);
        e.hardlink = std::move(target);
        return add(std::move(e));
    }
    tar_builder& node(std::string name, mode_t type, dev_t rdev) {
        entry e = make(std::move(name), type | 0600);
        e.rdev = rdev;
        return add(std::move(e));
    }

    /// The tar (pax format, padded to 10 KiB records as tar tools do).
    std::string bytes() const {
        std::string out;
        archive* a = archive_write_new();
        archive_write_set_format_pax_restricted(a);
        EXPECT_EQ(archive_write_open(a, &out, nullptr, append_to_string, nullptr), ARCHIVE_OK);
        for (const auto& e : entries_) {
            archive_entry* ae = archive_entry_new();
            archive_entry_copy_pathname(ae, e.name.c_str());
            archive_entry_set_mode(ae, e.mode);
            archive_entry_set_uid(ae, e.uid);
            archive_entry_set_gid(ae, e.gid);
            archive_entry_set_mtime(ae, e.mtime, 0);
            archive_entry_set_size(ae, static_cast<la_int64_t>(e.data.size()));
            if (!e.symlink.empty()) archive_entry_copy_symlink(ae, e.symlink.c_str());
            if (!e.hardlink.empty()) archive_entry_copy_hardlink(ae, e.hardlink.c_str());
            if (e.rdev) archive_entry_set_rdev(ae, e.rdev);
            for (const auto& [k, v] : e.xattrs) archive_entry_xattr_add_entry(ae, k.c_str(), v.data(), v.size());
            EXPECT_EQ(archive_write_header(a, ae), ARCHIVE_OK) << archive_error_string(a);
            if (!e.data.empty()) archive_write_data(a, e.data.data(), e.data.size());
            archive_entry_free(ae);
        }
        archive_write_close(a);
        archive_write_free(a);
        return out;
    }

private:
    std::vector<entry> entries_;
};

// `data` compressed with libarchive's filter `name` ("gzip", "zstd", "xz", "bzip2"). pieces
// loads libarchive itself and forwards only the calls it makes (core/image/lazy_libraries);
// the filters it never writes come from the library directly.
std::string compress(const std::string& data, const std::string& name) {
    static const auto add_filter_by_name = [] {
        void* lib = ::dlopen("libarchive.so.13", RTLD_NOW | RTLD_LOCAL);
        void* fn = lib ? ::dlsym(lib, "archive_write_add_filter_by_name") : nullptr;
        if (!fn) throw std::runtime_error("libarchive.so.13: archive_write_add_filter_by_name not found");
        return reinterpret_cast<decltype(&::archive_write_add_filter_by_name)>(fn);
    }();
    std::string out;
    archive* a = archive_write_new();
    archive_write_set_format_raw(a);
    EXPECT_EQ(add_filter_by_name(a, name.c_str()), ARCHIVE_OK);
    archive_write_set_bytes_in_last_block(a, 1);
    archive_write_open(a, &out, nullptr, append_to_string, nullptr);
    archive_entry* ae = archive_entry_new();
    archive_entry_set_filetype(ae, AE_IFREG);
    archive_entry_set_pathname(ae, "x");
    archive_write_header(a, ae);
    archive_write_data(a, data.data(), data.size());
    archive_entry_free(ae);
    archive_write_close(a);
    archive_write_free(a);
    return out;
}

// Names and xattr keys of the entries of a (compressed) tar in a file.
struct listed_entry {
    std::string name;
    mode_t type;
    std::vector<std::string> xattrs;
};
std::vector<listed_entry> list_tar(const std::string& path) {
    std::vector<listed_entry> out;
    archive* a = archive_read_new();
    archive_read_support_filter_gzip(a);
    archive_read_support_filter_zstd(a);
    archive_read_support_format_tar(a);
    unique_fd fd = open_path(path, O_RDONLY);
    EXPECT_EQ(archive_read_open_fd(a, fd.get(), 65536), ARCHIVE_OK);
    archive_entry* e = nullptr;
    while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
        listed_entry le{archive_entry_pathname(e), archive_entry_filetype(e), {}};
        archive_entry_xattr_reset(e);
        const char* k = nullptr;
        const void* v = nullptr;
        size_t n = 0;
        while (archive_entry_xattr_next(e, &k, &v, &n) == ARCHIVE_OK) le.xattrs.emplace_back(k);
        out.push_back(std::move(le));
    }
    archive_read_free(a);
    return out;
}

// ---- Looking at trees ------------------------------------------------------------------------

std::string xattr_of(const std::string& path, const char* name) {
    char buf[256];
    ssize_t n = ::lgetxattr(path.c_str(), name, buf, sizeof buf);
    return n < 0 ? std::string("<none>") : std::string(buf, static_cast<size_t>(n));
}

// One line per file below `root` (not `root` itself), everything a layer must keep: type,
// permissions, owner, mtime, content or link target, user.* xattrs, link count.
std::map<std::string, std::string> snapshot(const std::string& root, const std::string& skip = {}) {
    std::map<std::string, std::string> out;
    if (!stdfs::exists(root)) return out;
    for (auto it = stdfs::recursive_directory_iterator(root); it != stdfs::recursive_directory_iterator(); ++it) {
        std::string path = it->path().string();
        std::string rel = path.substr(root.size());
        if (!skip.empty() && rel == skip) {
            it.disable_recursion_pending();
            continue;
        }
        struct stat st {};
        ::lstat(path.c_str(), &st);
        std::string line = std::to_string(st.st_mode) + " " + std::to_string(st.st_uid) + ":" +
                           std::to_string(st.st_gid) + " n" + std::to_string(S_ISDIR(st.st_mode) ? 0 : st.st_nlink) +
                           " t" + std::to_string(st.st_mtim.tv_sec);
        if (S_ISREG(st.st_mode)) line += " " + sha256_of(read_file(path)).hex().substr(0, 16);
        if (S_ISLNK(st.st_mode)) line += " -> " + stdfs::read_symlink(path).string();
        if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode))
            line += " dev " + std::to_string(major(st.st_rdev)) + ":" + std::to_string(minor(st.st_rdev));
        if (!S_ISLNK(st.st_mode)) line += " x=" + xattr_of(path, "user.pieces");
        out[rel] = line;
    }
    return out;
}

// What an escape would touch on the real host: these files, and the names in "/".
std::string host_state() {
    std::string out;
    for (const char* p : {"/etc/passwd", "/etc/shadow"}) {
        struct stat st {};
        ::lstat(p, &st);
        out += std::string(p) + " " + std::to_string(st.st_ino) + " " + std::to_string(st.st_nlink) + " " +
               std::to_string(st.st_size) + " " + std::to_string(st.st_ctim.tv_sec) + "." +
               std::to_string(st.st_ctim.tv_nsec) + " " + sha256_of(read_file(p)).str() + "\n";
    }
    for (const auto& e : stdfs::directory_iterator("/")) out += e.path().string() + "\n";
    return out;
}

unique_fd write_temp(const std::string& dir, const std::string& data) {
    std::string path = dir + "/blob-XXXXXX";
    int fd = ::mkstemp(path.data());
    EXPECT_GE(fd, 0);
    ::unlink(path.c_str());
    unique_fd f(fd);
    write_all(f, data, "blob");
    ::lseek(f.get(), 0, SEEK_SET);
    return f;
}

// A scratch directory holding the layer directories and a "host" sibling with canaries; each
// test proves that the sibling and the real host are exactly as they were.
class LayerTest : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/pieces-layer-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        base_ = tmpl;
        stdfs::create_directories(base_ + "/host/etc");
        write_file(base_ + "/host/canary", "canary\n", O_CREAT);
        write_file(base_ + "/host/etc/passwd", "root:x:0:0::/root:/bin/sh\n", O_CREAT);
        host_before_ = host_state();
        base_before_ = snapshot(base_);
        base_state_ = own_state(base_);
    }
    void TearDown() override {
        use_openat2(true);
        ::umount2(merged().c_str(), MNT_DETACH);
        stdfs::remove_all(base_);
    }

    // A fresh, empty layer directory named `name` below the scratch directory.
    std::string layer_dir(const std::string& name = "layer") {
        std::string path = base_ + "/" + name;
        stdfs::create_directory(path);
        base_before_ = snapshot(base_);  // the new directory itself is expected
        return path;
    }
    std::string merged() const { return base_ + "/merged"; }

    layer_digests unpack(const std::string& blob, const std::string& dir, unpack_options opts = {}) {
        unique_fd b = write_temp(base_, blob);
        unique_fd d = open_path(dir, O_PATH | O_DIRECTORY);
        return unpack_layer(b, d, opts);
    }

    // Nothing changed outside `layer` (a name below the scratch directory), nor on the host.
    void expect_nothing_outside(const std::string& layer = "layer") {
        auto now = snapshot(base_, "/" + layer);
        auto before = base_before_;
        before.erase("/" + layer);
        now.erase("/" + layer);
        EXPECT_EQ(now, before) << "something outside the layer directory changed";
        EXPECT_EQ(host_state(), host_before_) << "the host changed";
        EXPECT_EQ(read_file(base_ + "/host/canary"), "canary\n");
        EXPECT_EQ(own_state(base_), base_state_) << "the scratch directory itself changed";
    }

    static std::string own_state(const std::string& path) {
        struct stat st {};
        ::lstat(path.c_str(), &st);
        return std::to_string(st.st_mode) + " " + std::to_string(st.st_uid) + ":" + std::to_string(st.st_gid);
    }

    std::string base_;
    std::string host_before_, base_state_;
    std::map<std::string, std::string> base_before_;
};

mode_t lmode(const std::string& path) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) < 0) return 0;
    return st.st_mode;
}

// ---- Round trip ------------------------------------------------------------------------------

void set_mtime(const std::string& path, time_t t) {
    timespec ts[2] = {{t, 0}, {t, 0}};
    ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), ts, AT_SYMLINK_NOFOLLOW), 0) << path;
}

void make_file(const std::string& path, const std::string& data, mode_t mode, uid_t uid, gid_t gid, time_t t) {
    write_file(path, data, O_CREAT | O_TRUNC, 0600);
    ASSERT_EQ(::chown(path.c_str(), uid, gid), 0);
    ASSERT_EQ(::chmod(path.c_str(), mode), 0);
    set_mtime(path, t);
}

// A tree with everything a layer carries.
void make_tree(const std::string& root) {
    for (const char* d : {"etc", "bin", "home/u", "empty", "run", "deep"}) stdfs::create_directories(root + "/" + d);
    make_file(root + "/etc/passwd", "root:x:0:0::/root:/bin/sh\n", 0644, 0, 0, 1600000001);
    ASSERT_EQ(::setxattr((root + "/etc/passwd").c_str(), "user.pieces", "file", 4, 0), 0);
    ASSERT_EQ(::setxattr((root + "/etc").c_str(), "user.pieces", "dir", 3, 0), 0);
    std::string big(3 << 20, '\0');
    std::mt19937 rng(7);
    for (auto& c : big) c = static_cast<char>(rng());
    make_file(root + "/bin/busybox", big, 0755, 0, 0, 1600000002);
    ASSERT_EQ(::link((root + "/bin/busybox").c_str(), (root + "/bin/ls").c_str()), 0);
    make_file(root + "/bin/su", "su", 04755, 0, 0, 1600000003);
    make_file(root + "/bin/wall", "wall", 02755, 0, 5, 1600000004);
    make_file(root + "/home/u/notes", "mine", 0600, 1000, 1000, 1600000005);
    make_file(root + "/home/u/big-uid", "far", 0640, 3000000, 3000001, 1600000006);
    make_file(root + "/ünïcode.txt", "utf-8", 0644, 0, 0, 1600000007);
    std::string longdir = root + "/deep/" + std::string(120, 'd');
    stdfs::create_directories(longdir);
    make_file(longdir + "/" + std::string(90, 'f'), "long", 0644, 0, 0, 1600000008);
    ASSERT_EQ(::symlink("busybox", (root + "/bin/sh").c_str()), 0);
    ASSERT_EQ(::symlink("/etc/passwd", (root + "/abs").c_str()), 0);
    ASSERT_EQ(::symlink("nowhere", (root + "/dangling").c_str()), 0);
    ASSERT_EQ(::lchown((root + "/dangling").c_str(), 7, 8), 0);
    ASSERT_EQ(::mkfifo((root + "/run/fifo").c_str(), 0620), 0);
    for (const char* l : {"/bin/sh", "/abs", "/dangling", "/run/fifo"}) set_mtime(root + l, 1600000009);
    ASSERT_EQ(::chown((root + "/home/u").c_str(), 1000, 1000), 0);
    ASSERT_EQ(::chmod((root + "/home/u").c_str(), 0700), 0);
    ASSERT_EQ(::chmod((root + "/empty").c_str(), 0711), 0);
    for (const char* d : {"/etc", "/bin", "/home/u", "/home", "/empty", "/run", "/deep"})
        set_mtime(root + d, 1500000000);
    set_mtime(longdir, 1500000001);
}

std::string read_fd(borrowed_fd fd) {
    ::lseek(fd.get(), 0, SEEK_SET);
    return read_all(fd);
}

TEST_F(LayerTest, PackThenUnpackGivesTheSameTree) {
    std::string src = layer_dir("src");
    make_tree(src);
    unique_fd blob = write_temp(base_, "");
    layer_digests packed = pack_layer(open_path(src, O_PATH | O_DIRECTORY), blob);
    std::string bytes = read_fd(blob);

    // Digests: the blob's is the file's, the DiffID is that of the gunzipped bytes.
    EXPECT_EQ(packed.blob, sha256_of(bytes));
    EXPECT_EQ(packed.blob_size, bytes.size());
    ::lseek(blob.get(), 0, SEEK_SET);
    EXPECT_EQ(diff_id_of(blob), packed.diff_id);
    std::string blob_path = base_ + "/blob.tar.gz";
    write_file(blob_path, bytes, O_CREAT);
    FILE* gz = ::popen(("gzip -dc " + blob_path).c_str(), "r");
    ASSERT_NE(gz, nullptr);
    EXPECT_EQ(sha256_of(::fileno(gz)), packed.diff_id);
    EXPECT_EQ(::pclose(gz), 0);
    // A gzip header with neither a time (bytes 4-7) nor a file name (flag 0x08).
    ASSERT_GT(bytes.size(), 10u);
    EXPECT_EQ(bytes.substr(4, 4), std::string(4, '\0'));
    EXPECT_EQ(bytes[3] & 0x08, 0);

    std::string dst = layer_dir("dst");
    layer_digests unpacked = unpack(bytes, dst);
    EXPECT_EQ(unpacked.diff_id, packed.diff_id);
    EXPECT_EQ(unpacked.blob, packed.blob);
    EXPECT_EQ(unpacked.blob_size, packed.blob_size);

    auto want = snapshot(src), got = snapshot(dst);
    EXPECT_EQ(got, want);
    EXPECT_EQ(got.count("/bin/su"), 1u);
    EXPECT_EQ(lmode(dst + "/bin/su") & 07777, 04755u);
    EXPECT_EQ(stdfs::hard_link_count(dst + "/bin/ls"), 2u);
    EXPECT_TRUE(stdfs::equivalent(dst + "/bin/ls", dst + "/bin/busybox"));
    EXPECT_TRUE(stdfs::is_empty(dst + "/empty"));
}

TEST_F(LayerTest, PackIsDeterministicAcrossProcesses) {
    std::string src = layer_dir("src");
    make_tree(src);
    unique_fd one = write_temp(base_, ""), two = write_temp(base_, "");
    pack_layer(open_path(src, O_PATH | O_DIRECTORY), one);
    // Reading the files in between changes their atimes, which must not matter.
    read_file(src + "/bin/busybox");
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        try {
            pack_layer(open_path(src, O_PATH | O_DIRECTORY), two);
            ::_exit(0);
        } catch (...) {
            ::_exit(1);
        }
    }
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_EQ(status, 0);
    std::string a = read_fd(one), b = read_fd(two);
    EXPECT_GT(a.size(), 1000u);
    EXPECT_TRUE(a == b) << "two packs of the same tree differ";
}

TEST_F(LayerTest, EntriesAreSortedAndNumeric) {
    std::string src = layer_dir("src");
    for (const char* f : {"b", "a", "c/z", "c/a", "a-b"}) {
        stdfs::create_directories(stdfs::path(src + "/" + f).parent_path());
        write_file(src + "/" + f, "x", O_CREAT);
    }
    unique_fd blob = write_temp(base_, "");
    pack_layer(open_path(src, O_PATH | O_DIRECTORY), blob);
    write_file(base_ + "/l.tgz", read_fd(blob), O_CREAT);
    std::vector<std::string> names;
    for (const auto& e : list_tar(base_ + "/l.tgz")) names.push_back(e.name);
    EXPECT_EQ(names, (std::vector<std::string>{"a", "a-b", "b", "c/", "c/a", "c/z"}));
}

// ---- Whiteouts -------------------------------------------------------------------------------

TEST_F(LayerTest, WhiteoutsBecomeOverlayWhiteoutsAndAMountHonoursThem) {
    std::string l1 = layer_dir("l1"), l2 = layer_dir("l2");
    unpack(tar_builder().dir("a").file("a/x", "x").file("a/y", "y").dir("b").file("b/z", "z").bytes(), l1);
    unpack(tar_builder()
               .file("c", "made here, then deleted")
               .file("a/.wh.x", "")
               .file("b/.wh..wh..opq", "")
               .file(".wh.c", "")
               .bytes(),
           l2);
    EXPECT_TRUE(S_ISCHR(lmode(l2 + "/a/x")));
    EXPECT_EQ(stdfs::status(l2 + "/a/x").type(), stdfs::file_type::character);
    struct stat st {};
    ASSERT_EQ(::lstat((l2 + "/a/x").c_str(), &st), 0);
    EXPECT_EQ(st.st_rdev, makedev(0, 0));
    EXPECT_TRUE(S_ISCHR(lmode(l2 + "/c"))) << "a whiteout replaces what the same layer made";
    EXPECT_EQ(xattr_of(l2 + "/b", "trusted.overlay.opaque"), "y");
    EXPECT_EQ(lmode(l2 + "/a/.wh.x"), 0u);

    stdfs::create_directory(merged());
    std::string opts = "lowerdir=" + l2 + ":" + l1;
    ASSERT_EQ(::mount("overlay", merged().c_str(), "overlay", MS_RDONLY, opts.c_str()), 0) << std::strerror(errno);
    EXPECT_FALSE(stdfs::exists(merged() + "/a/x"));
    EXPECT_EQ(read_file(merged() + "/a/y"), "y");
    EXPECT_TRUE(stdfs::is_directory(merged() + "/b"));
    EXPECT_TRUE(stdfs::is_empty(merged() + "/b"));
    EXPECT_FALSE(stdfs::exists(merged() + "/c"));
    ASSERT_EQ(::umount2(merged().c_str(), 0), 0);
}

TEST_F(LayerTest, PackOfAnOverlayUpperWritesWhiteoutsAndOpaqueMarkers) {
    std::string lower = layer_dir("lower"), upper = layer_dir("upper"), work = layer_dir("work");
    unpack(tar_builder().dir("a").file("a/x", "x").file("a/y", "y").dir("b").file("b/z", "z").bytes(), lower);
    stdfs::create_directory(merged());
    std::string opts = "lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + work;
    ASSERT_EQ(::mount("overlay", merged().c_str(), "overlay", 0, opts.c_str()), 0) << std::strerror(errno);
    stdfs::remove(merged() + "/a/x");
    stdfs::remove_all(merged() + "/b");
    stdfs::create_directory(merged() + "/b");  // overlayfs marks it opaque
    write_file(merged() + "/b/new", "new", O_CREAT);
    ASSERT_EQ(::umount2(merged().c_str(), 0), 0);
    ASSERT_TRUE(S_ISCHR(lmode(upper + "/a/x")));
    ASSERT_EQ(xattr_of(upper + "/b", "trusted.overlay.opaque"), "y");

    unique_fd blob = write_temp(base_, "");
    pack_layer(open_path(upper, O_PATH | O_DIRECTORY), blob);
    std::string bytes = read_fd(blob);
    write_file(base_ + "/upper.tgz", bytes, O_CREAT);
    std::vector<std::string> names;
    for (const auto& e : list_tar(base_ + "/upper.tgz")) {
        names.push_back(e.name);
        for (const auto& k : e.xattrs) EXPECT_NE(k.rfind("trusted.overlay.", 0), 0u) << e.name << " carries " << k;
    }
    EXPECT_EQ(names, (std::vector<std::string>{"a/", "a/.wh.x", "b/", "b/.wh..wh..opq", "b/new"}));

    // And back: the unpacked layer is the same upper, as overlayfs spells it.
    std::string again = layer_dir("again");
    unpack(bytes, again);
    EXPECT_TRUE(S_ISCHR(lmode(again + "/a/x")));
    EXPECT_EQ(xattr_of(again + "/b", "trusted.overlay.opaque"), "y");
    EXPECT_EQ(read_file(again + "/b/new"), "new");
}

// ---- Compression -----------------------------------------------------------------------------

TEST_F(LayerTest, GzipZstdXzAndPlainGiveTheSameDiffId) {
    std::string plain = tar_builder()
                            .dir("d", 0750)
                            .file("d/f", std::string(200000, 'q'), 0640)
                            .symlink("d/l", "f")
                            .hardlink("d/h", "d/f")
                            .bytes();
    digest want = sha256_of(plain);
    std::map<std::string, std::string> first;
    for (const char* method : {"none", "gzip", "zstd", "xz"}) {
        SCOPED_TRACE(method);
        std::string blob = std::string(method) == "none" ? plain : compress(plain, method);
        std::string dir = layer_dir(std::string("c-") + method);
        layer_digests d = unpack(blob, dir);
        EXPECT_EQ(d.diff_id, want);
        EXPECT_EQ(d.blob, sha256_of(blob));
        EXPECT_EQ(d.blob_size, blob.size());
        unique_fd b = write_temp(base_, blob);
        EXPECT_EQ(diff_id_of(b), want);
        auto tree = snapshot(dir);
        EXPECT_EQ(tree.size(), 4u);
        if (first.empty()) first = tree;
        EXPECT_EQ(tree, first);
    }
}

TEST_F(LayerTest, UnpacksFromAPipe) {
    std::string blob = compress(tar_builder().file("f", std::string(1 << 20, 'p')).bytes(), "gzip");
    int p[2];
    ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
    unique_fd r(p[0]), w(p[1]);
    std::thread writer([&] {
        write_all(w, blob, "pipe");
        w.reset();
    });
    std::string dir = layer_dir();
    layer_digests d = unpack_layer(r, open_path(dir, O_PATH | O_DIRECTORY));
    writer.join();
    EXPECT_EQ(d.blob, sha256_of(blob));
    EXPECT_EQ(stdfs::file_size(dir + "/f"), 1u << 20);
}

TEST_F(LayerTest, OtherCompressionAndGarbageAreRefusedInOneLine) {
    std::string dir = layer_dir();
    std::string plain = tar_builder().file("f", "f").bytes();
    try {
        unpack(compress(plain, "bzip2"), dir);
        ADD_FAILURE() << "bzip2 accepted";
    } catch (const error& e) {
        EXPECT_NE(std::string(e.what()).find("read layer"), std::string::npos) << e.what();
    }
    EXPECT_THROW(unpack(std::string(4096, 'g'), dir), error);
    EXPECT_THROW(unpack(compress(plain, "gzip").substr(0, 30), dir), error);
}

TEST_F(LayerTest, AnErrorNamesTheEntry) {
    std::string dir = layer_dir();
    try {
        unpack(tar_builder().file("ok", "ok").hardlink("etc/h", "missing").bytes(), dir);
        ADD_FAILURE() << "a hardlink to nothing unpacked";
    } catch (const error& e) {
        EXPECT_EQ(std::string(e.what()).rfind("layer entry \"etc/h\": hardlink target \"missing\"", 0), 0u) << e.what();
    }
    EXPECT_EQ(read_file(dir + "/ok"), "ok") << "the half-unpacked directory stays for the caller";
}

// ---- Devices ---------------------------------------------------------------------------------

TEST_F(LayerTest, DevicesOnlyWhenAllowed) {
    std::string tar = tar_builder()
                          .node("mem", S_IFCHR, makedev(1, 1))
                          .node("sda", S_IFBLK, makedev(8, 0))
                          .node("wh", S_IFCHR, makedev(0, 0))
                          .node("fifo", S_IFIFO, 0)
                          .file("after", "still unpacked")
                          .bytes();
    std::string denied = layer_dir("denied");
    unpack(tar, denied);
    EXPECT_EQ(lmode(denied + "/mem"), 0u);
    EXPECT_EQ(lmode(denied + "/sda"), 0u);
    EXPECT_TRUE(S_ISCHR(lmode(denied + "/wh"))) << "a 0:0 whiteout is not a device to refuse";
    EXPECT_TRUE(S_ISFIFO(lmode(denied + "/fifo")));
    EXPECT_EQ(read_file(denied + "/after"), "still unpacked");

    std::string allowed = layer_dir("allowed");
    unpack(tar, allowed, {.allow_devices = true});
    EXPECT_TRUE(S_ISCHR(lmode(allowed + "/mem")));
    EXPECT_TRUE(S_ISBLK(lmode(allowed + "/sda")));
}

// ---- Hostile tarballs, with openat2 and with the walk used where it is missing --------------

tar_builder::entry owned_dir(std::string name, mode_t perm, int64_t owner) {
    tar_builder::entry e = tar_builder::make(std::move(name), S_IFDIR | perm);
    e.uid = e.gid = owner;
    return e;
}

class LayerHostile : public LayerTest, public ::testing::WithParamInterface<bool> {
protected:
    void SetUp() override {
        LayerTest::SetUp();
        use_openat2(GetParam());
        dir_ = layer_dir();
    }
    // Unpacks, tolerating a refusal (which must still have written nothing outside).
    bool unpack_maybe(const std::string& tar, unpack_options opts = {}) {
        try {
            unpack(tar, dir_, opts);
            return true;
        } catch (const error& e) {
            last_error_ = e.what();
            return false;
        }
    }
    std::string host() const { return base_ + "/host"; }
    std::string dir_, last_error_;
};

TEST_P(LayerHostile, DotDotNamesStayInside) {
    EXPECT_TRUE(unpack_maybe(
        tar_builder().file("../../host/evil", "evil").file("a/../../../host/evil2", "evil").file("./../canary", "x").bytes()))
        << last_error_;
    expect_nothing_outside();
    EXPECT_EQ(read_file(dir_ + "/host/evil"), "evil");
    EXPECT_EQ(read_file(dir_ + "/host/evil2"), "evil");
    EXPECT_EQ(read_file(dir_ + "/canary"), "x");
}

TEST_P(LayerHostile, DotDotAsTheLastComponentIsTheRootAtMost) {
    // "../" names the layer root itself (its metadata may change; the scratch dir's must not).
    EXPECT_TRUE(unpack_maybe(tar_builder().file("keep", "k").add(owned_dir("../", 0777, 4242)).bytes())) << last_error_;
    expect_nothing_outside();
    EXPECT_EQ(lmode(dir_) & 07777, 0777u);
    for (const char* name : {"..", "a/..", "a/../.."}) {
        SCOPED_TRACE(name);
        EXPECT_FALSE(unpack_maybe(tar_builder().dir("a").file(name, "evil").bytes()));
        expect_nothing_outside();
        EXPECT_EQ(read_file(dir_ + "/keep"), "k");
    }
}

TEST_P(LayerHostile, AbsoluteNamesLandInside) {
    EXPECT_TRUE(unpack_maybe(tar_builder().file("/abs/evil", "evil").file(host() + "/evil", "evil").bytes())) << last_error_;
    expect_nothing_outside();
    EXPECT_EQ(read_file(dir_ + "/abs/evil"), "evil");
    EXPECT_EQ(read_file(dir_ + host() + "/evil"), "evil");
    EXPECT_FALSE(stdfs::exists("/abs"));
}

TEST_P(LayerHostile, ASymlinkThenAFileThroughIt) {
    EXPECT_TRUE(unpack_maybe(tar_builder()
                                 .symlink("rel", "../host")
                                 .file("rel/evil", "evil")
                                 .symlink("abs", host())
                                 .file("abs/evil2", "evil")
                                 .symlink("root", "/")
                                 .file("root/evil3", "evil")
                                 .symlink("up", "../../../..")
                                 .file("up/tmp/evil4", "evil")
                                 .bytes()))
        << last_error_;
    expect_nothing_outside();
    EXPECT_EQ(read_file(dir_ + "/host/evil"), "evil");  // "../host" read inside the layer
    EXPECT_EQ(read_file(dir_ + host() + "/evil2"), "evil");
    EXPECT_EQ(read_file(dir_ + "/evil3"), "evil");
    EXPECT_EQ(read_file(dir_ + "/tmp/evil4"), "evil");
    EXPECT_TRUE(S_ISLNK(lmode(dir_ + "/rel")));
}

TEST_P(LayerHostile, ASymlinkToEtcThenPasswd) {
    EXPECT_TRUE(unpack_maybe(tar_builder()
                                 .symlink("link", "/etc")
                                 .file("link/passwd", "evil::0:0::/:/bin/sh\n")
                                 .symlink("hostetc", host() + "/etc")
                                 .file("hostetc/passwd", "evil::0:0::/:/bin/sh\n")
                                 .bytes()))
        << last_error_;
    expect_nothing_outside();
    EXPECT_EQ(read_file(dir_ + "/etc/passwd"), "evil::0:0::/:/bin/sh\n");
    EXPECT_EQ(read_file(dir_ + host() + "/etc/passwd"), "evil::0:0::/:/bin/sh\n");
}

TEST_P(LayerHostile, HardlinksNeverReachOutside) {
    for (const auto& tar : {
             tar_builder().hardlink("shadow", "/etc/shadow").bytes(),
             tar_builder().hardlink("canary", "../host/canary").bytes(),
             tar_builder().hardlink("canary", host() + "/canary").bytes(),
             tar_builder().symlink("up", "../host").hardlink("canary", "up/canary").bytes(),
             tar_builder().symlink("abs", host()).hardlink("canary", "abs/canary").bytes(),
         }) {
        EXPECT_FALSE(unpack_maybe(tar)) << "a hardlink to a file that is not in the layer was made";
        EXPECT_NE(last_error_.find("hardlink target"), std::string::npos) << last_error_;
        expect_nothing_outside();
        EXPECT_EQ(stdfs::hard_link_count(host() + "/canary"), 1u);
    }
    // A hardlink to a symlink that points out links the symlink, not what it points to.
    EXPECT_TRUE(unpack_maybe(tar_builder().symlink("s", host() + "/canary").hardlink("h", "s").bytes())) << last_error_;
    expect_nothing_outside();
    EXPECT_TRUE(S_ISLNK(lmode(dir_ + "/h")));
    EXPECT_EQ(stdfs::hard_link_count(host() + "/canary"), 1u);
}

TEST_P(LayerHostile, WhiteoutsDeleteNothingOutside) {
    EXPECT_TRUE(unpack_maybe(tar_builder()
                                 .symlink("link", "../host")
                                 .file("link/.wh.canary", "")
                                 .symlink("abs", host())
                                 .file("abs/.wh.canary", "")
                                 .file("../.wh.host", "")
                                 .file("../../.wh.canary", "")
                                 .bytes()))
        << last_error_;
    expect_nothing_outside();
    EXPECT_TRUE(S_ISCHR(lmode(dir_ + "/host")));
    EXPECT_TRUE(S_ISCHR(lmode(dir_ + "/canary")));
    EXPECT_TRUE(S_ISCHR(lmode(dir_ + host() + "/canary")));
    for (const char* name : {".wh...", "a/.wh...", ".wh..", ".wh.../x", "a/.wh.../x", ".wh.x/y"}) {
        SCOPED_TRACE(name);
        EXPECT_FALSE(unpack_maybe(tar_builder().dir("a").file(name, "").bytes()));
        expect_nothing_outside();
        EXPECT_TRUE(stdfs::exists(dir_ + "/a")) << "a whiteout of \"..\" removed its own directory";
    }
}

TEST_P(LayerHostile, AnEntryReplacesASymlinkInsteadOfFollowingIt) {
    EXPECT_TRUE(unpack_maybe(tar_builder()
                                 .symlink("f", "../host/canary")
                                 .file("f", "pwned")
                                 .symlink("g", host() + "/canary")
                                 .file("g", "pwned")
                                 .symlink("d", host())
                                 .add(owned_dir("d", 0777, 4242))
                                 .symlink("n", host() + "/canary")
                                 .node("n", S_IFIFO, 0)
                                 .symlink("s", host() + "/canary")
                                 .symlink("s", "elsewhere")
                                 .file("target", "t")
                                 .symlink("h", host() + "/canary")
                                 .hardlink("h", "target")
                                 .bytes()))
        << last_error_;
    expect_nothing_outside();
    EXPECT_EQ(read_file(dir_ + "/f"), "pwned");
    EXPECT_TRUE(S_ISREG(lmode(dir_ + "/g")));
    EXPECT_TRUE(S_ISDIR(lmode(dir_ + "/d")));
    EXPECT_EQ(lmode(dir_ + "/d") & 07777, 0777u);
    EXPECT_EQ(stdfs::status(dir_ + "/d").permissions(), stdfs::perms::all);
    EXPECT_TRUE(S_ISFIFO(lmode(dir_ + "/n")));
    EXPECT_EQ(stdfs::read_symlink(dir_ + "/s"), "elsewhere");
    EXPECT_EQ(read_file(dir_ + "/h"), "t");
}

TEST_P(LayerHostile, ADeviceIsSkippedWhenNotAllowed) {
    EXPECT_TRUE(unpack_maybe(tar_builder()
                                 .node("../host/mem", S_IFCHR, makedev(1, 1))
                                 .node("kmsg", S_IFCHR, makedev(1, 11))
                                 .node("sda", S_IFBLK, makedev(8, 0))
                                 .bytes()))
        << last_error_;
    expect_nothing_outside();
    EXPECT_EQ(lmode(dir_ + "/host/mem"), 0u);
    EXPECT_EQ(lmode(dir_ + "/kmsg"), 0u);
    EXPECT_EQ(lmode(dir_ + "/sda"), 0u);
}

INSTANTIATE_TEST_SUITE_P(Layer, LayerHostile, ::testing::Values(true, false),
                         [](const auto& p) { return p.param ? "openat2" : "walk"; });

}  // namespace
