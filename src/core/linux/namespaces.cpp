#include "core/linux/namespaces.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/nsfs.h>

#include <algorithm>
#include <cerrno>

#include "core/base/error.h"
#include "core/base/fs.h"
#include "core/base/procfs.h"

namespace pieces::linux_ {
namespace {

std::string mapping_text(const std::vector<spec::id_mapping>& maps) {
    std::string out;
    for (const auto& m : maps)
        out += std::to_string(m.container_id) + " " + std::to_string(m.host_id) + " " + std::to_string(m.size) + "\n";
    return out;
}

}  // namespace

void write_id_mappings(pid_t pid, const spec::linux_config& l) {
    procfs::handle proc = procfs::handle::open();
    proc.write(std::to_string(pid) + "/uid_map", mapping_text(l.uid_mappings));
    proc.write(std::to_string(pid) + "/gid_map", mapping_text(l.gid_mappings));
}

void write_time_offsets(const std::map<std::string, spec::time_offset>& offsets) {
    std::string text;
    for (const auto& [clock, off] : offsets)
        text += clock + " " + std::to_string(off.secs) + " " + std::to_string(off.nanosecs) + "\n";
    if (!text.empty()) procfs::handle::open().write("self/timens_offsets", text);
}

std::vector<ns_handle> open_joined_namespaces(const spec::linux_config& l) {
    std::vector<ns_handle> out;
    for (const auto& n : l.namespaces) {
        if (n.path.empty()) continue;
        unique_fd fd = open_path(n.path, O_RDONLY);
        // Joining the wrong kind of namespace would silently leave one unshared: check its type.
        int kind = ::ioctl(fd.get(), NS_GET_NSTYPE);
        if (kind < 0) throw_errno(std::string("check ") + spec::ns_type_name(n.type) + " namespace", quote(n.path));
        if (kind != spec::ns_clone_flag(n.type))
            throw error(quote(n.path) + " is not a " + spec::ns_type_name(n.type) + " namespace");
        out.push_back({n.type, std::move(fd)});
    }
    // The user namespace first: it grants the rights to join the others.
    std::stable_partition(out.begin(), out.end(), [](const ns_handle& h) { return h.type == spec::ns_type::user; });
    return out;
}

void join_namespaces(const std::vector<ns_handle>& handles) {
    for (const auto& h : handles) {
        if (::setns(h.fd.get(), spec::ns_clone_flag(h.type)) < 0)
            throw_errno(std::string("join ") + spec::ns_type_name(h.type) + " namespace", fd_path(h.fd));
    }
}

void set_host_and_domain(const spec::config& cfg) {
    if (!cfg.hostname.empty() && ::sethostname(cfg.hostname.data(), cfg.hostname.size()) < 0)
        throw_errno("sethostname", quote(cfg.hostname));
    if (!cfg.domainname.empty() && ::setdomainname(cfg.domainname.data(), cfg.domainname.size()) < 0)
        throw_errno("setdomainname", quote(cfg.domainname));
}

void apply_sysctls(const std::map<std::string, std::string>& sysctl) {
    if (sysctl.empty()) return;
    procfs::handle proc = procfs::handle::open();
    for (const auto& [key, value] : sysctl) {
        if (key.find("..") != std::string::npos || key.find('/') == 0)
            throw error("sysctl " + quote(key) + ": not a sysctl name");
        std::string path = "sys/" + key;
        std::replace(path.begin() + 4, path.end(), '.', '/');
        with_context("sysctl " + key, [&] { proc.write(path, value); });
    }
}

}  // namespace pieces::linux_
