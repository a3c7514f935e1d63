#include "core/linux/sealed_exe.h"

#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/base/error.h"
#include "core/base/fs.h"

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif
#ifndef F_SEAL_EXEC
#define F_SEAL_EXEC 0x0020
#endif

extern char** environ;

namespace pieces::linux_ {
namespace {

constexpr int required_seals = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;
// Set in the copy's environment by the re-exec and removed at once: a copy that still does not
// pass running_sealed() must fail rather than re-execute forever.
constexpr const char* reexec_marker = "_PUNCKER_SEALED_REEXEC";

// The bytes the kernel and the dynamic loader read: up to the end of the last segment in the
// file. What follows (debug information, section headers) is not needed to run, and in a
// build with debug information it is most of the file. Zero when the header is not one we know.
off_t loaded_extent(int fd) {
    ElfW(Ehdr) eh{};
    if (::pread(fd, &eh, sizeof eh, 0) != static_cast<ssize_t>(sizeof eh)) return 0;
    if (std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_phentsize != sizeof(ElfW(Phdr))) return 0;
    std::vector<ElfW(Phdr)> ph(eh.e_phnum);
    auto size = static_cast<ssize_t>(ph.size() * sizeof(ElfW(Phdr)));
    if (::pread(fd, ph.data(), static_cast<size_t>(size), static_cast<off_t>(eh.e_phoff)) != size) return 0;
    auto end = static_cast<off_t>(eh.e_phoff) + size;
    for (const auto& p : ph)
        if (p.p_type != PT_NULL) end = std::max(end, static_cast<off_t>(p.p_offset + p.p_filesz));
    return end;
}

// The copy ends before the section headers: say it has none, so tools reading it are not misled.
void drop_section_headers(int fd) {
    ElfW(Ehdr) eh{};
    if (::pread(fd, &eh, sizeof eh, 0) != static_cast<ssize_t>(sizeof eh)) throw_errno("read sealed copy header");
    eh.e_shoff = 0;
    eh.e_shnum = 0;
    eh.e_shstrndx = SHN_UNDEF;
    if (::pwrite(fd, &eh, sizeof eh, 0) != static_cast<ssize_t>(sizeof eh)) throw_errno("write sealed copy header");
}

unique_fd sealed_copy() {
    unique_fd self = open_path("/proc/self/exe", O_RDONLY);
    struct stat st {};
    if (::fstat(self.get(), &st) < 0) throw_errno("stat", "\"/proc/self/exe\"");
    off_t extent = loaded_extent(self.get());
    bool trimmed = extent > 0 && extent < st.st_size;
    if (!trimmed) extent = st.st_size;

    // MFD_EXEC: where the kernel defaults memfds to non-executable, ask for an executable one.
    unique_fd copy(::memfd_create("puncker", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC));
    if (!copy && errno == EINVAL) copy = unique_fd(::memfd_create("puncker", MFD_CLOEXEC | MFD_ALLOW_SEALING));
    if (!copy) throw_errno("memfd_create");
    off_t offset = 0;
    while (offset < extent) {
        ssize_t n = ::sendfile(copy.get(), self.get(), &offset, static_cast<size_t>(extent - offset));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw_errno("copy the runtime binary");
        if (n == 0) throw error("copy the runtime binary: it shrank while being copied");
    }
    if (trimmed) drop_section_headers(copy.get());
    if (::fchmod(copy.get(), 0555) < 0) throw_errno("chmod sealed copy");
    // F_SEAL_EXEC (newer kernels) also freezes the mode; older ones refuse it, and do without.
    if (::fcntl(copy.get(), F_ADD_SEALS, required_seals | F_SEAL_EXEC) < 0 &&
        (errno != EINVAL || ::fcntl(copy.get(), F_ADD_SEALS, required_seals) < 0))
        throw_errno("seal the copy of the runtime binary");
    return copy;
}

std::vector<std::string> own_arguments() {
    std::string cmdline = read_file("/proc/self/cmdline");
    std::vector<std::string> args;
    size_t start = 0;
    while (start < cmdline.size()) {
        size_t end = cmdline.find('\0', start);
        if (end == std::string::npos) end = cmdline.size();
        args.emplace_back(cmdline, start, end - start);
        start = end + 1;
    }
    return args;
}

}  // namespace

bool running_sealed() {
    unique_fd self(::open("/proc/self/exe", O_RDONLY | O_CLOEXEC));
    if (!self) return false;
    int seals = ::fcntl(self.get(), F_GET_SEALS);
    return seals >= 0 && (seals & required_seals) == required_seals;
}

void ensure_running_sealed() {
    with_context("run from a sealed copy of the runtime binary", [] {
        if (std::getenv(reexec_marker)) {
            ::unsetenv(reexec_marker);
            if (!running_sealed()) throw error("re-executed, but /proc/self/exe is not a sealed copy");
            return;
        }
        if (running_sealed()) return;
        unique_fd copy = sealed_copy();
        std::vector<std::string> args = own_arguments();
        if (args.empty()) throw error("/proc/self/cmdline is empty");
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        if (::setenv(reexec_marker, "1", 1) < 0) throw_errno("setenv");
        ::syscall(SYS_execveat, copy.get(), "", argv.data(), environ, AT_EMPTY_PATH);
        int saved = errno;
        ::unsetenv(reexec_marker);
        throw_errno_code(saved, "execveat");
    });
}

}  // namespace pieces::linux_
