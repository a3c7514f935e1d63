#include "core/linux/mount_options.h"

#include <sys/mount.h>

#include <algorithm>
#include <map>
#include <string_view>

namespace pieces::linux_ {
namespace {

struct flag_effect {
    bool clear;          // true: the option turns the flag off
    unsigned long flag;
};

const std::map<std::string_view, flag_effect>& flag_table() {
    static const std::map<std::string_view, flag_effect> table = {
        {"async", {true, MS_SYNCHRONOUS}},   {"sync", {false, MS_SYNCHRONOUS}},
        {"atime", {true, MS_NOATIME}},       {"noatime", {false, MS_NOATIME}},
        {"dev", {true, MS_NODEV}},           {"nodev", {false, MS_NODEV}},
        {"diratime", {true, MS_NODIRATIME}}, {"nodiratime", {false, MS_NODIRATIME}},
        {"dirsync", {false, MS_DIRSYNC}},    {"exec", {true, MS_NOEXEC}},
        {"noexec", {false, MS_NOEXEC}},      {"mand", {false, MS_MANDLOCK}},
        {"nomand", {true, MS_MANDLOCK}},     {"relatime", {false, MS_RELATIME}},
        {"norelatime", {true, MS_RELATIME}}, {"strictatime", {false, MS_STRICTATIME}},
        {"nostrictatime", {true, MS_STRICTATIME}}, {"ro", {false, MS_RDONLY}},
        {"rw", {true, MS_RDONLY}},           {"suid", {true, MS_NOSUID}},
        {"nosuid", {false, MS_NOSUID}},      {"lazytime", {false, MS_LAZYTIME}},
        {"nolazytime", {true, MS_LAZYTIME}}, {"silent", {false, MS_SILENT}},
        {"loud", {true, MS_SILENT}},         {"remount", {false, MS_REMOUNT}},
    };
    return table;
}

const std::map<std::string_view, unsigned long>& propagation_table() {
    static const std::map<std::string_view, unsigned long> table = {
        {"private", MS_PRIVATE},          {"rprivate", MS_PRIVATE | MS_REC},
        {"shared", MS_SHARED},            {"rshared", MS_SHARED | MS_REC},
        {"slave", MS_SLAVE},              {"rslave", MS_SLAVE | MS_REC},
        {"unbindable", MS_UNBINDABLE},    {"runbindable", MS_UNBINDABLE | MS_REC},
    };
    return table;
}

}  // namespace

std::vector<std::string> known_mount_options() {
    std::vector<std::string> out;
    for (const auto& [name, _] : flag_table()) out.emplace_back(name);
    for (const auto& [name, _] : propagation_table()) out.emplace_back(name);
    for (const char* name : {"bind", "rbind", "rro", "tmpcopyup", "defaults"}) out.emplace_back(name);
    std::sort(out.begin(), out.end());
    return out;
}

mount_options parse_mount_options(const std::vector<std::string>& options) {
    mount_options out;
    for (const std::string& opt : options) {
        if (auto f = flag_table().find(opt); f != flag_table().end()) {
            if (f->second.clear) {
                out.flags &= ~f->second.flag;
                out.clear |= f->second.flag;
            } else {
                out.flags |= f->second.flag;
                out.clear &= ~f->second.flag;
            }
        } else if (auto p = propagation_table().find(opt); p != propagation_table().end()) {
            out.propagation.push_back(p->second);
        } else if (opt == "bind") {
            out.bind = true;
            out.flags |= MS_BIND;
        } else if (opt == "rbind") {
            out.bind = true;
            out.flags |= MS_BIND | MS_REC;
        } else if (opt == "rro") {
            out.recursive_readonly = true;
        } else if (opt == "tmpcopyup") {
            out.tmpcopyup = true;
        } else if (opt == "defaults") {
            // Means "no options": nothing to set.
        } else {
            if (!out.data.empty()) out.data += ',';
            out.data += opt;
        }
    }
    return out;
}

}  // namespace pieces::linux_
