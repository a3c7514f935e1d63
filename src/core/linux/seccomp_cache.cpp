#include "core/linux/seccomp_cache.h"

#include <dirent.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <seccomp.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <string_view>
#include <vector>

#include "core/base/error.h"
#include "core/base/fs.h"
#include "core/base/hex.h"
#include "core/base/log.h"

namespace pieces::linux_ {
namespace {

using json = nlohmann::json;

constexpr std::string_view magic = "pieces seccomp cache 1\n";
constexpr uint64_t max_insns = 4096;  // BPF_MAXINSNS: the kernel loads no longer filter

// The build id note of the main program, found among its loaded program headers.
int find_build_id(dl_phdr_info* info, size_t, void* out) {
    auto* id = static_cast<std::string*>(out);
    for (int i = 0; i < info->dlpi_phnum; ++i) {
        const ElfW(Phdr)& ph = info->dlpi_phdr[i];
        if (ph.p_type != PT_NOTE) continue;
        const char* p = reinterpret_cast<const char*>(info->dlpi_addr + ph.p_vaddr);
        const char* end = p + ph.p_memsz;
        while (p + sizeof(ElfW(Nhdr)) <= end) {
            ElfW(Nhdr) n;
            std::memcpy(&n, p, sizeof n);
            const char* name = p + sizeof n;
            const char* desc = name + ((n.n_namesz + 3) & ~3U);
            const char* next = desc + ((n.n_descsz + 3) & ~3U);
            if (next > end) break;
            if (n.n_type == NT_GNU_BUILD_ID && n.n_namesz == 4 && std::memcmp(name, "GNU", 4) == 0) {
                *id = hex_of(desc, n.n_descsz);
                return 1;
            }
            p = next;
        }
    }
    return 1;  // the first object is the program itself: stop there either way
}

// Everything the compiled filter depends on: the profile, the code that compiled it (our build
// id, libseccomp's version) and the kernel it compiled for. libseccomp's API level follows from
// the kernel, but asking libseccomp for it probes the kernel anew in every process (0.1 ms on
// each create); uname names the kernel in one call.
std::string cache_key(const json& sc) {
    const scmp_version* v = seccomp_version();
    struct utsname u {};
    ::uname(&u);
    std::string key = "build-id " + self_build_id() + "\nlibseccomp " + std::to_string(v->major) + "." +
                      std::to_string(v->minor) + "." + std::to_string(v->micro) + " arch " +
                      std::to_string(seccomp_arch_native()) + "\nkernel " + u.release + " " + u.version + "\n";
    key += sc.dump();
    return key;
}

// FNV-1a: spreads the keys over file names; the entry itself holds the whole key.
std::string entry_name(std::string_view key) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (char c : key) {
        h ^= static_cast<unsigned char>(c);
        h *= 0x100000001b3ULL;
    }
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
    return buf;
}

// A file or directory the cache may trust: ours, and writable by nobody else.
bool trusted(const struct stat& st, bool dir) {
    return (dir ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode)) && st.st_uid == ::geteuid() && (st.st_mode & 022) == 0;
}

template <typename T>
void put(std::string& out, T v) {
    out.append(reinterpret_cast<const char*>(&v), sizeof v);
}

template <typename T>
bool take(std::string_view& in, T& v) {
    if (in.size() < sizeof v) return false;
    std::memcpy(&v, in.data(), sizeof v);
    in.remove_prefix(sizeof v);
    return true;
}

std::string encode(const std::string& key, const seccomp_program& prog) {
    std::string out(magic);
    put<uint64_t>(out, key.size());
    out += key;
    put<uint32_t>(out, prog.flags);
    put<uint32_t>(out, prog.notify ? 1 : 0);
    put<uint64_t>(out, prog.bpf.size());
    out.append(reinterpret_cast<const char*>(prog.bpf.data()), prog.bpf.size() * sizeof(sock_filter));
    return out;
}

// The program an entry holds, when it is whole and was compiled from exactly `key`.
bool decode(std::string_view in, const std::string& key, seccomp_program& prog) {
    if (in.substr(0, magic.size()) != magic) return false;
    in.remove_prefix(magic.size());
    uint64_t key_size = 0, insns = 0;
    uint32_t flags = 0, notify = 0;
    if (!take(in, key_size) || key_size != key.size() || in.substr(0, key_size) != key) return false;
    in.remove_prefix(key_size);
    if (!take(in, flags) || !take(in, notify) || notify > 1 || !take(in, insns)) return false;
    if (insns == 0 || insns > max_insns || in.size() != insns * sizeof(sock_filter)) return false;
    prog.flags = flags;
    prog.notify = notify == 1;
    prog.bpf.resize(insns);
    std::memcpy(prog.bpf.data(), in.data(), in.size());
    return true;
}

// Opens (making it when missing) the cache directory; -1 when it is not one we can trust.
unique_fd open_cache_dir(const std::string& dir) {
    std::string parent = parent_of(dir);
    for (const std::string& d : {parent, dir})
        if (::mkdir(d.c_str(), 0700) < 0 && errno != EEXIST) return unique_fd();
    unique_fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    struct stat st {};
    if (!fd || ::fstat(fd.get(), &st) < 0 || !trusted(st, true)) return unique_fd();
    return fd;
}

bool lookup(borrowed_fd dir, const std::string& name, const std::string& key, seccomp_program& prog) {
    unique_fd fd(::openat(dir.get(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    struct stat st {};
    if (!fd || ::fstat(fd.get(), &st) < 0 || !trusted(st, false)) return false;
    if (static_cast<uint64_t>(st.st_size) > magic.size() + key.size() + 32 + max_insns * sizeof(sock_filter)) return false;
    if (!decode(read_all(fd), key, prog)) return false;
    ::futimens(fd.get(), nullptr);  // used now: the last to be evicted
    return true;
}

// Drops the least recently used entries beyond `max_entries`, and temporary files a writer
// that died left behind.
void evict(borrowed_fd dir, size_t max_entries) {
    unique_fd copy(::fcntl(dir.get(), F_DUPFD_CLOEXEC, 0));
    DIR* d = copy ? ::fdopendir(copy.get()) : nullptr;
    if (!d) return;
    copy.release();
    std::vector<std::pair<timespec, std::string>> entries;
    time_t now = ::time(nullptr);
    while (dirent* e = ::readdir(d)) {
        std::string name = e->d_name;
        if (name == "." || name == "..") continue;
        struct stat st {};
        if (::fstatat(dir.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) continue;
        if (name[0] == '.') {
            if (st.st_mtime < now - 600) ::unlinkat(dir.get(), name.c_str(), 0);
            continue;
        }
        entries.emplace_back(st.st_mtim, name);
    }
    ::closedir(d);
    if (entries.size() <= max_entries) return;
    std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
        return a.first.tv_sec != b.first.tv_sec ? a.first.tv_sec < b.first.tv_sec : a.first.tv_nsec < b.first.tv_nsec;
    });
    for (size_t i = 0; i + max_entries < entries.size(); ++i) ::unlinkat(dir.get(), entries[i].second.c_str(), 0);
}

// Writes an entry whole under a temporary name, then renames it into place.
void store(borrowed_fd dir, const std::string& dir_path, const std::string& name, const std::string& data) {
    std::string tmp = dir_path + "/." + name + ".XXXXXX";
    unique_fd fd(::mkostemp(tmp.data(), O_CLOEXEC));
    if (!fd) return;
    std::string tmp_name = base_of(tmp);
    try {
        write_all(fd, data, "seccomp cache entry");
    } catch (const error&) {
        ::unlinkat(dir.get(), tmp_name.c_str(), 0);
        return;
    }
    if (::renameat(dir.get(), tmp_name.c_str(), dir.get(), name.c_str()) < 0) ::unlinkat(dir.get(), tmp_name.c_str(), 0);
}

}  // namespace

std::string seccomp_cache_dir(const std::string& root) { return root + "/@cache/seccomp"; }

const std::string& self_build_id() {
    static const std::string id = [] {
        std::string s;
        ::dl_iterate_phdr(find_build_id, &s);
        return s;
    }();
    return id;
}

seccomp_program compile_seccomp_cached(const json& sc, const std::string& cache_dir, size_t max_entries) {
    if (self_build_id().empty()) return compile_seccomp(sc);
    std::string key = cache_key(sc);
    std::string name = entry_name(key);
    unique_fd dir = open_cache_dir(cache_dir);
    seccomp_program prog;
    if (dir && lookup(dir, name, key, prog)) {
        if (prog.notify) {
            prog.listener_path = sc.value("listenerPath", "");
            prog.listener_metadata = sc.value("listenerMetadata", "");
        }
        return prog;
    }
    prog = compile_seccomp(sc);
    if (dir) {
        store(dir, cache_dir, name, encode(key, prog));
        evict(dir, max_entries);
    } else {
        log::debug("seccomp cache " + quote(cache_dir) + " is not usable: the filter was compiled but not kept");
    }
    return prog;
}

}  // namespace pieces::linux_
