#include "core/spec/config.h"

#include <sched.h>
#include <sys/resource.h>

#include <array>
#include <set>

#include "core/base/error.h"
#include "core/base/fs.h"

namespace pieces::spec {
namespace {

using json = nlohmann::json;

[[noreturn]] void fail(const std::string& where, const std::string& what) { throw error(where + ": " + what); }

const char* type_word(const json& j) {
    switch (j.type()) {
        case json::value_t::null: return "null";
        case json::value_t::object: return "an object";
        case json::value_t::array: return "an array";
        case json::value_t::string: return "a string";
        case json::value_t::boolean: return "a boolean";
        default: return "a number";
    }
}

// Readers for one JSON value; each names the field when the type is wrong.
std::string as_string(const json& j, const std::string& where) {
    if (!j.is_string()) fail(where, std::string("expected a string, got ") + type_word(j));
    return j.get<std::string>();
}

bool as_bool(const json& j, const std::string& where) {
    if (!j.is_boolean()) fail(where, std::string("expected a boolean, got ") + type_word(j));
    return j.get<bool>();
}

template <typename Int>
Int as_int(const json& j, const std::string& where) {
    if (!j.is_number_integer()) fail(where, std::string("expected an integer, got ") + type_word(j));
    if (j.is_number_unsigned()) {
        auto v = j.get<uint64_t>();
        if (v > static_cast<uint64_t>(std::numeric_limits<Int>::max())) fail(where, "number out of range");
        return static_cast<Int>(v);
    }
    auto v = j.get<int64_t>();
    if (v < static_cast<int64_t>(std::numeric_limits<Int>::min()) ||
        (v > 0 && static_cast<uint64_t>(v) > static_cast<uint64_t>(std::numeric_limits<Int>::max())))
        fail(where, "number out of range");
    return static_cast<Int>(v);
}

const json& expect_object(const json& j, const std::string& where) {
    if (!j.is_object()) fail(where, std::string("expected an object, got ") + type_word(j));
    return j;
}

const json& expect_array(const json& j, const std::string& where) {
    if (!j.is_array()) fail(where, std::string("expected an array, got ") + type_word(j));
    return j;
}

std::vector<std::string> string_list(const json& j, const std::string& where) {
    std::vector<std::string> out;
    size_t i = 0;
    for (const json& v : expect_array(j, where)) out.push_back(as_string(v, where + "[" + std::to_string(i++) + "]"));
    return out;
}

// Calls fn(value, where) when `key` is present and not null.
template <typename Fn>
void if_present(const json& obj, const char* key, const std::string& where, Fn&& fn) {
    auto it = obj.find(key);
    if (it != obj.end() && !it->is_null()) fn(*it, where.empty() ? std::string(key) : where + "." + key);
}

std::string at(const std::string& where, size_t i) { return where + "[" + std::to_string(i) + "]"; }

// Parses an array of objects, calling parse_one(object, "where[i]") for each.
template <typename Fn>
auto object_list(const json& j, const std::string& where, Fn&& parse_one) {
    std::vector<decltype(parse_one(j, where))> out;
    size_t i = 0;
    for (const json& item : expect_array(j, where)) {
        std::string w = at(where, i++);
        out.push_back(parse_one(expect_object(item, w), w));
    }
    return out;
}

std::vector<id_mapping> parse_mappings(const json& j, const std::string& where) {
    return object_list(j, where, [](const json& m, const std::string& w) {
        id_mapping map;
        if_present(m, "containerID", w, [&](const json& v, const std::string& f) { map.container_id = as_int<uint32_t>(v, f); });
        if_present(m, "hostID", w, [&](const json& v, const std::string& f) { map.host_id = as_int<uint32_t>(v, f); });
        if_present(m, "size", w, [&](const json& v, const std::string& f) { map.size = as_int<uint32_t>(v, f); });
        if (map.size == 0) fail(w + ".size", "must be greater than zero");
        return map;
    });
}

std::vector<int> parse_cap_set(const json& j, const std::string& where) {
    std::vector<int> out;
    size_t i = 0;
    for (const std::string& name : string_list(j, where)) {
        int cap = capability_from_name(name);
        if (cap < 0) fail(at(where, i), "unknown capability " + quote(name));
        out.push_back(cap);
        ++i;
    }
    return out;
}

user parse_user(const json& j, const std::string& where) {
    user u;
    expect_object(j, where);
    if_present(j, "uid", where, [&](const json& v, const std::string& f) { u.uid = as_int<uid_t>(v, f); });
    if_present(j, "gid", where, [&](const json& v, const std::string& f) { u.gid = as_int<gid_t>(v, f); });
    if_present(j, "umask", where, [&](const json& v, const std::string& f) { u.umask = as_int<mode_t>(v, f); });
    if_present(j, "additionalGids", where, [&](const json& v, const std::string& f) {
        size_t i = 0;
        for (const json& g : expect_array(v, f)) u.additional_gids.push_back(as_int<gid_t>(g, at(f, i++)));
    });
    return u;
}

process parse_process(const json& j, const std::string& where) {
    process p;
    expect_object(j, where);
    if_present(j, "terminal", where, [&](const json& v, const std::string& f) { p.terminal = as_bool(v, f); });
    if_present(j, "consoleSize", where, [&](const json& v, const std::string& f) {
        expect_object(v, f);
        unsigned h = 0, w = 0;
        if_present(v, "height", f, [&](const json& x, const std::string& g) { h = as_int<unsigned>(x, g); });
        if_present(v, "width", f, [&](const json& x, const std::string& g) { w = as_int<unsigned>(x, g); });
        p.console_size = std::make_pair(h, w);
    });
    if_present(j, "user", where, [&](const json& v, const std::string& f) { p.user = parse_user(v, f); });
    if_present(j, "args", where, [&](const json& v, const std::string& f) { p.args = string_list(v, f); });
    if_present(j, "env", where, [&](const json& v, const std::string& f) { p.env = string_list(v, f); });
    if_present(j, "cwd", where, [&](const json& v, const std::string& f) { p.cwd = as_string(v, f); });
    if_present(j, "capabilities", where, [&](const json& v, const std::string& f) {
        expect_object(v, f);
        capabilities c;
        if_present(v, "bounding", f, [&](const json& x, const std::string& g) { c.bounding = parse_cap_set(x, g); });
        if_present(v, "effective", f, [&](const json& x, const std::string& g) { c.effective = parse_cap_set(x, g); });
        if_present(v, "permitted", f, [&](const json& x, const std::string& g) { c.permitted = parse_cap_set(x, g); });
        if_present(v, "inheritable", f, [&](const json& x, const std::string& g) { c.inheritable = parse_cap_set(x, g); });
        if_present(v, "ambient", f, [&](const json& x, const std::string& g) { c.ambient = parse_cap_set(x, g); });
        p.capabilities = c;
    });
    if_present(j, "rlimits", where, [&](const json& v, const std::string& f) {
        std::set<int> seen;
        p.rlimits = object_list(v, f, [&](const json& r, const std::string& w) {
            rlimit rl;
            if_present(r, "type", w, [&](const json& x, const std::string& g) { rl.name = as_string(x, g); });
            rl.resource = rlimit_from_name(rl.name);
            if (rl.resource < 0) fail(w + ".type", "unknown rlimit " + quote(rl.name));
            if (!seen.insert(rl.resource).second) fail(w + ".type", "duplicate rlimit " + quote(rl.name));
            if_present(r, "soft", w, [&](const json& x, const std::string& g) { rl.soft = as_int<uint64_t>(x, g); });
            if_present(r, "hard", w, [&](const json& x, const std::string& g) { rl.hard = as_int<uint64_t>(x, g); });
            return rl;
        });
    });
    if_present(j, "noNewPrivileges", where, [&](const json& v, const std::string& f) { p.no_new_privileges = as_bool(v, f); });
    if_present(j, "oomScoreAdj", where, [&](const json& v, const std::string& f) {
        int adj = as_int<int>(v, f);
        if (adj < -1000 || adj > 1000) fail(f, "must be between -1000 and 1000");
        p.oom_score_adj = adj;
    });
    if_present(j, "apparmorProfile", where, [&](const json& v, const std::string& f) { p.apparmor_profile = as_string(v, f); });
    if_present(j, "selinuxLabel", where, [&](const json& v, const std::string& f) { p.selinux_label = as_string(v, f); });
    return p;
}

std::vector<hook> parse_hook_list(const json& j, const std::string& where) {
    return object_list(j, where, [](const json& h, const std::string& w) {
        hook hk;
        if_present(h, "path", w, [&](const json& v, const std::string& f) { hk.path = as_string(v, f); });
        if (hk.path.empty() || hk.path[0] != '/') fail(w + ".path", "must be an absolute path");
        if_present(h, "args", w, [&](const json& v, const std::string& f) { hk.args = string_list(v, f); });
        if_present(h, "env", w, [&](const json& v, const std::string& f) { hk.env = string_list(v, f); });
        if_present(h, "timeout", w, [&](const json& v, const std::string& f) {
            hk.timeout = as_int<int>(v, f);
            if (*hk.timeout <= 0) fail(f, "must be greater than zero");
        });
        return hk;
    });
}

ns_type parse_ns_type(const std::string& name, const std::string& where) {
    for (ns_type t : {ns_type::pid, ns_type::network, ns_type::mount, ns_type::ipc, ns_type::uts, ns_type::user,
                      ns_type::cgroup, ns_type::time})
        if (name == ns_type_name(t)) return t;
    fail(where, "unknown namespace type " + quote(name));
}

linux_config parse_linux(const json& j, const std::string& where) {
    linux_config l;
    expect_object(j, where);
    if_present(j, "namespaces", where, [&](const json& v, const std::string& f) {
        l.namespaces = object_list(v, f, [&](const json& n, const std::string& w) {
            std::string type;
            if_present(n, "type", w, [&](const json& x, const std::string& g) { type = as_string(x, g); });
            namespace_entry e{parse_ns_type(type, w + ".type"), {}};
            if_present(n, "path", w, [&](const json& x, const std::string& g) { e.path = as_string(x, g); });
            if (!e.path.empty() && e.path[0] != '/') fail(w + ".path", "must be an absolute path");
            for (const auto& prev : l.namespaces)
                if (prev.type == e.type) fail(w + ".type", "duplicate namespace " + quote(type));
            l.namespaces.push_back(e);  // seen by the duplicate check of the entries after it
            return e;
        });
    });
    if_present(j, "uidMappings", where, [&](const json& v, const std::string& f) { l.uid_mappings = parse_mappings(v, f); });
    if_present(j, "gidMappings", where, [&](const json& v, const std::string& f) { l.gid_mappings = parse_mappings(v, f); });
    if_present(j, "timeOffsets", where, [&](const json& v, const std::string& f) {
        for (const auto& [clock, off] : expect_object(v, f).items()) {
            std::string w = f + "." + clock;
            if (clock != "monotonic" && clock != "boottime") fail(w, "unknown clock (expected monotonic or boottime)");
            expect_object(off, w);
            time_offset t;
            if_present(off, "secs", w, [&](const json& x, const std::string& g) { t.secs = as_int<int64_t>(x, g); });
            if_present(off, "nanosecs", w, [&](const json& x, const std::string& g) { t.nanosecs = as_int<uint32_t>(x, g); });
            l.time_offsets[clock] = t;
        }
    });
    if_present(j, "devices", where, [&](const json& v, const std::string& f) {
        l.devices = object_list(v, f, [](const json& d, const std::string& w) {
            device dev;
            std::string type;
            if_present(d, "type", w, [&](const json& x, const std::string& g) { type = as_string(x, g); });
            if (type != "c" && type != "b" && type != "u" && type != "p") fail(w + ".type", "unknown device type " + quote(type));
            dev.type = type[0];
            if_present(d, "path", w, [&](const json& x, const std::string& g) { dev.path = as_string(x, g); });
            if (dev.path.empty() || dev.path[0] != '/') fail(w + ".path", "must be an absolute path");
            if_present(d, "major", w, [&](const json& x, const std::string& g) { dev.major = as_int<int64_t>(x, g); });
            if_present(d, "minor", w, [&](const json& x, const std::string& g) { dev.minor = as_int<int64_t>(x, g); });
            if_present(d, "fileMode", w, [&](const json& x, const std::string& g) { dev.file_mode = as_int<mode_t>(x, g); });
            if_present(d, "uid", w, [&](const json& x, const std::string& g) { dev.uid = as_int<uid_t>(x, g); });
            if_present(d, "gid", w, [&](const json& x, const std::string& g) { dev.gid = as_int<gid_t>(x, g); });
            return dev;
        });
    });
    if_present(j, "cgroupsPath", where, [&](const json& v, const std::string& f) { l.cgroups_path = as_string(v, f); });
    if_present(j, "resources", where, [&](const json& v, const std::string& f) { l.resources = expect_object(v, f); });
    if_present(j, "seccomp", where, [&](const json& v, const std::string& f) { l.seccomp = expect_object(v, f); });
    if_present(j, "rootfsPropagation", where, [&](const json& v, const std::string& f) {
        l.rootfs_propagation = as_string(v, f);
        static const std::set<std::string> ok = {"private", "rprivate", "slave", "rslave", "shared", "rshared", "unbindable", "runbindable"};
        if (!ok.count(l.rootfs_propagation)) fail(f, "unknown propagation " + quote(l.rootfs_propagation));
    });
    if_present(j, "maskedPaths", where, [&](const json& v, const std::string& f) { l.masked_paths = string_list(v, f); });
    if_present(j, "readonlyPaths", where, [&](const json& v, const std::string& f) { l.readonly_paths = string_list(v, f); });
    if_present(j, "sysctl", where, [&](const json& v, const std::string& f) {
        for (const auto& [k, val] : expect_object(v, f).items()) l.sysctl[k] = as_string(val, f + "." + k);
    });
    if_present(j, "mountLabel", where, [&](const json& v, const std::string& f) { l.mount_label = as_string(v, f); });
    return l;
}

void validate(const config& c) {
    if (c.root_path.empty()) fail("root.path", "is required");
    if (c.process) {
        if (c.process->args.empty()) fail("process.args", "must name a program");
        if (c.process->cwd.empty() || c.process->cwd[0] != '/') fail("process.cwd", "must be an absolute path");
    }
    const namespace_entry* userns = c.linux.find(ns_type::user);
    bool new_userns = userns && userns->path.empty();
    if (new_userns && (c.linux.uid_mappings.empty() || c.linux.gid_mappings.empty()))
        fail("linux.uidMappings", "a new user namespace needs uid and gid mappings");
    if (!new_userns && (!c.linux.uid_mappings.empty() || !c.linux.gid_mappings.empty()))
        fail("linux.uidMappings", "mappings are given but no new user namespace is asked for");
    const namespace_entry* timens = c.linux.find(ns_type::time);
    if (!c.linux.time_offsets.empty() && !(timens && timens->path.empty()))
        fail("linux.timeOffsets", "offsets are given but no new time namespace is asked for");
    if (!c.hostname.empty()) {
        const namespace_entry* uts = c.linux.find(ns_type::uts);
        if (!uts) fail("hostname", "setting the hostname needs a uts namespace");
    }
    for (size_t i = 0; i < c.mounts.size(); ++i)
        if (c.mounts[i].destination.empty()) fail(at("mounts", i) + ".destination", "is required");
}

}  // namespace

std::vector<hook> parse_hooks(const json& j, const std::string& where) { return parse_hook_list(j, where); }

process parse_process_json(const json& j, const std::string& where) {
    process p = parse_process(j, where);
    if (p.args.empty()) fail(where + ".args", "must name a program");
    if (p.cwd.empty() || p.cwd[0] != '/') fail(where + ".cwd", "must be an absolute path");
    return p;
}

json hooks_to_json(const std::vector<hook>& hooks) {
    json out = json::array();
    for (const auto& h : hooks) {
        json o = {{"path", h.path}};
        if (!h.args.empty()) o["args"] = h.args;
        if (!h.env.empty()) o["env"] = h.env;
        if (h.timeout) o["timeout"] = *h.timeout;
        out.push_back(o);
    }
    return out;
}

const namespace_entry* linux_config::find(ns_type t) const {
    for (const auto& n : namespaces)
        if (n.type == t) return &n;
    return nullptr;
}

config parse_config(const json& doc) {
    config c;
    expect_object(doc, "config");
    if_present(doc, "ociVersion", "", [&](const json& v, const std::string& f) { c.oci_version = as_string(v, f); });
    if (c.oci_version.empty()) fail("ociVersion", "is required");
    if_present(doc, "process", "", [&](const json& v, const std::string& f) { c.process = parse_process(v, f); });
    if_present(doc, "root", "", [&](const json& v, const std::string& f) {
        expect_object(v, f);
        if_present(v, "path", f, [&](const json& x, const std::string& g) { c.root_path = as_string(x, g); });
        if_present(v, "readonly", f, [&](const json& x, const std::string& g) { c.root_readonly = as_bool(x, g); });
    });
    if_present(doc, "hostname", "", [&](const json& v, const std::string& f) { c.hostname = as_string(v, f); });
    if_present(doc, "domainname", "", [&](const json& v, const std::string& f) { c.domainname = as_string(v, f); });
    if_present(doc, "mounts", "", [&](const json& v, const std::string& f) {
        c.mounts = object_list(v, f, [](const json& m, const std::string& w) {
            mount mt;
            if_present(m, "destination", w, [&](const json& x, const std::string& g) { mt.destination = as_string(x, g); });
            if_present(m, "type", w, [&](const json& x, const std::string& g) { mt.type = as_string(x, g); });
            if_present(m, "source", w, [&](const json& x, const std::string& g) { mt.source = as_string(x, g); });
            if_present(m, "options", w, [&](const json& x, const std::string& g) { mt.options = string_list(x, g); });
            return mt;
        });
    });
    if_present(doc, "hooks", "", [&](const json& v, const std::string& f) {
        expect_object(v, f);
        if_present(v, "prestart", f, [&](const json& x, const std::string& g) { c.hooks.prestart = parse_hook_list(x, g); });
        if_present(v, "createRuntime", f, [&](const json& x, const std::string& g) { c.hooks.create_runtime = parse_hook_list(x, g); });
        if_present(v, "createContainer", f, [&](const json& x, const std::string& g) { c.hooks.create_container = parse_hook_list(x, g); });
        if_present(v, "startContainer", f, [&](const json& x, const std::string& g) { c.hooks.start_container = parse_hook_list(x, g); });
        if_present(v, "poststart", f, [&](const json& x, const std::string& g) { c.hooks.poststart = parse_hook_list(x, g); });
        if_present(v, "poststop", f, [&](const json& x, const std::string& g) { c.hooks.poststop = parse_hook_list(x, g); });
    });
    if_present(doc, "annotations", "", [&](const json& v, const std::string& f) {
        for (const auto& [k, val] : expect_object(v, f).items()) c.annotations[k] = as_string(val, f + "." + k);
    });
    if_present(doc, "linux", "", [&](const json& v, const std::string& f) { c.linux = parse_linux(v, f); });
    validate(c);
    c.raw = doc;
    return c;
}

config load_config(const std::string& bundle) {
    std::string path = bundle + "/config.json";
    std::string text = read_file(path);
    json doc = json::parse(text, nullptr, false);
    if (doc.is_discarded()) {
        // Parse again with exceptions on, only for the position in the message.
        try {
            json again = json::parse(text);
            (void)again;
        } catch (const json::parse_error& e) {
            throw error(quote(path) + ": invalid JSON at byte " + std::to_string(e.byte));
        }
    }
    return with_context(quote(path), [&] { return parse_config(doc); });
}

namespace {

struct ns_info {
    ns_type type;
    const char* name;       // as config.json spells it
    const char* proc_name;  // the /proc/PID/ns entry
    int clone_flag;
};

constexpr ns_info ns_table[] = {
    {ns_type::pid, "pid", "pid", CLONE_NEWPID},       {ns_type::network, "network", "net", CLONE_NEWNET},
    {ns_type::mount, "mount", "mnt", CLONE_NEWNS},    {ns_type::ipc, "ipc", "ipc", CLONE_NEWIPC},
    {ns_type::uts, "uts", "uts", CLONE_NEWUTS},       {ns_type::user, "user", "user", CLONE_NEWUSER},
    {ns_type::cgroup, "cgroup", "cgroup", CLONE_NEWCGROUP}, {ns_type::time, "time", "time", CLONE_NEWTIME},
};

const ns_info& info(ns_type t) {
    for (const auto& i : ns_table)
        if (i.type == t) return i;
    throw error("unknown namespace type");
}

}  // namespace

const char* ns_type_name(ns_type t) { return info(t).name; }
const char* ns_proc_name(ns_type t) { return info(t).proc_name; }
int ns_clone_flag(ns_type t) { return info(t).clone_flag; }

namespace {
constexpr std::array<const char*, 41> cap_names = {
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
    "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
};

constexpr std::array<std::pair<const char*, int>, 16> rlimit_names = {{
    {"RLIMIT_CPU", RLIMIT_CPU},         {"RLIMIT_FSIZE", RLIMIT_FSIZE},
    {"RLIMIT_DATA", RLIMIT_DATA},       {"RLIMIT_STACK", RLIMIT_STACK},
    {"RLIMIT_CORE", RLIMIT_CORE},       {"RLIMIT_RSS", RLIMIT_RSS},
    {"RLIMIT_NPROC", RLIMIT_NPROC},     {"RLIMIT_NOFILE", RLIMIT_NOFILE},
    {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK}, {"RLIMIT_AS", RLIMIT_AS},
    {"RLIMIT_LOCKS", RLIMIT_LOCKS},     {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
    {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE}, {"RLIMIT_NICE", RLIMIT_NICE},
    {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},   {"RLIMIT_RTTIME", RLIMIT_RTTIME},
}};
}  // namespace

int capability_from_name(std::string_view name) {
    for (size_t i = 0; i < cap_names.size(); ++i)
        if (name == cap_names[i]) return static_cast<int>(i);
    return -1;
}

std::string capability_name(int cap) {
    if (cap >= 0 && static_cast<size_t>(cap) < cap_names.size()) return cap_names[static_cast<size_t>(cap)];
    return "CAP_" + std::to_string(cap);
}

int last_known_capability() { return static_cast<int>(cap_names.size()) - 1; }

int rlimit_from_name(std::string_view name) {
    for (const auto& [n, r] : rlimit_names)
        if (name == n) return r;
    return -1;
}

}  // namespace pieces::spec
