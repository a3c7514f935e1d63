#include "core/image/containers.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <thread>

#include "core/base/error.h"
#include "core/base/fs.h"
#include "core/container/lifecycle.h"
#include "core/image/container_inspect.h"
#include "core/image/rootfs.h"
#include "core/linux/caps.h"
#include "core/spec/default_spec.h"

namespace pieces::image {
namespace {

using json = nlohmann::json;

// The capabilities a container gets by default, as Docker gives them.
const std::vector<std::string> default_caps = {
    "CAP_CHOWN",  "CAP_DAC_OVERRIDE", "CAP_FSETID",  "CAP_FOWNER",     "CAP_MKNOD",  "CAP_NET_RAW",  "CAP_SETGID",
    "CAP_SETUID", "CAP_SETFCAP",      "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"};



// The lines of a file in the rootfs, resolved inside it; empty when missing.
std::vector<std::vector<std::string>> colon_records(const std::string& rootfs, const char* path) {
    std::vector<std::vector<std::string>> out;
    unique_fd root = open_path(rootfs, O_PATH | O_DIRECTORY);
    int fd = try_open_in_root(root, path, O_RDONLY);
    if (fd < 0) return out;
    unique_fd file(fd);
    std::string text = read_file(fd_path(file));
    std::istringstream lines(text);
    std::string line;
    while (std::getline(lines, line)) {
        if (line.empty() || line[0] == '#') continue;
        std::vector<std::string> fields;
        std::istringstream parts(line);
        std::string f;
        while (std::getline(parts, f, ':')) fields.push_back(f);
        out.push_back(fields);
    }
    return out;
}

// Every capability this code and the kernel know and our bounding set holds, for --cap-add
// ALL: as Docker does, a host that lacks one still runs the container.
std::vector<std::string> known_capabilities() {
    std::vector<std::string> out;
    int last = std::min(linux_::kernel_last_cap(), spec::last_known_capability());
    for (int c = 0; c <= last; ++c)
        if (::prctl(PR_CAPBSET_READ, c, 0, 0, 0) == 1) out.push_back(spec::capability_name(c));
    return out;
}

// The host's device nodes as OCI linux.devices, as Docker gives a privileged container: every
// char and block device under /dev but the console and what pts, shm, mqueue and fd hold.
json host_devices() {
    json out = json::array();
    std::error_code ec;
    auto it = std::filesystem::recursive_directory_iterator("/dev", std::filesystem::directory_options::skip_permission_denied, ec);
    for (; !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
        const auto& path = it->path();
        std::string name = path.filename();
        if (it->is_directory(ec) && !it->is_symlink(ec)) {
            if (name == "pts" || name == "shm" || name == "mqueue" || name == "fd" || name == ".lxc" || name == ".udev")
                it.disable_recursion_pending();
            continue;
        }
        struct stat st {};
        if (::lstat(path.c_str(), &st) < 0 || path == "/dev/console") continue;
        if (!S_ISCHR(st.st_mode) && !S_ISBLK(st.st_mode)) continue;
        out.push_back({{"path", path.string()}, {"type", S_ISCHR(st.st_mode) ? "c" : "b"}, {"major", major(st.st_rdev)},
                       {"minor", minor(st.st_rdev)}, {"fileMode", st.st_mode & 07777}, {"uid", st.st_uid}, {"gid", st.st_gid}});
    }
    return out;
}

// What --privileged changes in a config beyond the capabilities: the host's devices, all of
// them allowed; /sys and the cgroup mount writable; no masked or read-only /proc paths.
void make_privileged(json& cfg) {
    cfg["linux"]["devices"] = host_devices();
    cfg["linux"]["resources"]["devices"] = json::array({{{"allow", true}, {"access", "rwm"}}});
    cfg["linux"].erase("maskedPaths");
    cfg["linux"].erase("readonlyPaths");
    for (json& m : cfg["mounts"]) {
        std::string dest = m.value("destination", "");
        if ((dest == "/sys" || dest == "/sys/fs/cgroup") && m.contains("options")) {
            json kept = json::array();
            for (const auto& o : m["options"])
                if (o != "ro") kept.push_back(o);
            m["options"] = kept;
        }
    }
}

// "/data/" and "/data//x/." as "/data" and "/data/x", so destinations compare.
std::string clean_path(const std::string& path) {
    std::string out;
    for (const auto& c : split_components(path)) out += "/" + c;
    return out.empty() ? "/" : out;
}

bool all_digits(const std::string& s) { return !s.empty() && s.find_first_not_of("0123456789") == std::string::npos; }

// "user[:group]" by name or number, as the image's /etc/passwd and /etc/group say.
}  // namespace

json resolve_user(const std::string& spec_text, const std::string& rootfs) {
    if (spec_text.empty()) return {{"uid", 0}, {"gid", 0}};
    std::string user = spec_text.substr(0, spec_text.find(':'));
    std::string group = spec_text.find(':') == std::string::npos ? "" : spec_text.substr(spec_text.find(':') + 1);
    auto passwd = colon_records(rootfs, "/etc/passwd");
    auto groups = colon_records(rootfs, "/etc/group");
    unsigned long uid = 0, gid = 0;
    std::string name;
    bool found = false;
    for (const auto& p : passwd) {
        if (p.size() < 4 || !all_digits(p[2]) || !all_digits(p[3])) continue;
        if (p[0] == user || (all_digits(user) && p[2] == user)) {
            name = p[0];
            uid = std::stoul(p[2]);
            gid = std::stoul(p[3]);
            found = true;
            break;
        }
    }
    if (!found) {
        if (!all_digits(user)) throw error("user " + quote(user) + ": not in the image's /etc/passwd");
        uid = std::stoul(user);
    }
    if (!group.empty()) {
        bool group_found = false;
        for (const auto& g : groups) {
            if (g.size() >= 3 && all_digits(g[2]) && (g[0] == group || g[2] == group)) {
                gid = std::stoul(g[2]);
                group_found = true;
                break;
            }
        }
        if (!group_found) {
            if (!all_digits(group)) throw error("group " + quote(group) + ": not in the image's /etc/group");
            gid = std::stoul(group);
        }
    }
    // The primary group is a supplementary one too, as Docker's containers have it.
    json extra = json::array({gid});
    if (!name.empty()) {
        for (const auto& g : groups) {
            if (g.size() < 4 || !all_digits(g[2])) continue;
            std::istringstream members(g[3]);
            std::string m;
            while (std::getline(members, m, ','))
                if (m == name && std::stoul(g[2]) != gid) extra.push_back(std::stoul(g[2]));
        }
    }
    return {{"uid", uid}, {"gid", gid}, {"additionalGids", extra}};
}

namespace {

std::string random_id() {
    unsigned char bytes[32];
    if (::getrandom(bytes, sizeof bytes, 0) != static_cast<ssize_t>(sizeof bytes)) throw_errno("getrandom");
    return sha256_of(std::string_view(reinterpret_cast<const char*>(bytes), sizeof bytes)).hex();
}

std::string record_path(const std::string& store_root, const std::string& id) {
    return containers_dir(store_root) + "/" + id + "/record.json";
}

json read_record(const std::string& store_root, const std::string& id) {
    json j = json::parse(read_file(record_path(store_root, id)), nullptr, false);
    if (j.is_discarded()) throw error("container " + id + ": record.json is not JSON");
    return j;
}

void write_record(const std::string& store_root, const json& record) {
    write_file_atomic(record_path(store_root, record.at("id").get<std::string>()), record.dump(), 0644);
}

// Every container's record; containers being made or removed have none, and are passed over.
std::vector<json> records(const std::string& store_root) {
    std::vector<json> out;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(containers_dir(store_root), ec)) {
        try {
            out.push_back(read_record(store_root, entry.path().filename()));
        } catch (const error&) {
        }
    }
    return out;
}

// The runtime's status, or "exited" when it no longer knows the container.
std::string runtime_status(const std::string& store_root, const std::string& id, pid_t* pid) {
    try {
        json st = container::state(state_root(store_root), id);
        if (pid) *pid = st.value("pid", 0);
        return st.value("status", "unknown");
    } catch (const error&) {
        return "exited";
    }
}

// After the container's end: the record gets the exit status, the rootfs is unmounted, and
// with --rm everything goes once no pieces wait is still reading the status.
void finish(const std::string& store_root, const std::string& id, int code, bool remove, const std::string& started) {
    std::string dir = containers_dir(store_root) + "/" + id;
    try {
        json record = read_record(store_root, id);
        record["exitCode"] = code;
        record["started"] = started;
        record["finished"] = now_rfc3339();
        write_record(store_root, record);
    } catch (const error&) {
    }
    if (remove) {
        // A pieces wait holds a shared lock on the directory until it has read the exit status.
        unique_fd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (d) ::flock(d.get(), LOCK_EX);
        unmount_image(dir);
        remove_all(dir);
        return;
    }
    unmount_image(dir);
}

// Each image volume's directory, made with the owner and mode of the image's directory at that
// path and a copy of what it holds (an empty one where the image has nothing there).
void seed_image_volumes(const std::string& rootfs, const std::vector<std::pair<std::string, std::string>>& volumes) {
    if (volumes.empty()) return;
    unique_fd root = open_path(rootfs, O_PATH | O_DIRECTORY);
    for (const auto& [destination, source] : volumes) {
        with_context("image volume " + quote(destination), [&] {
            std::filesystem::create_directories(parent_of(source));
            if (::mkdir(source.c_str(), 0755) < 0) throw_errno("mkdir", quote(source));
            int fd = try_open_in_root(root, destination, O_RDONLY | O_DIRECTORY);
            if (fd == -ENOTDIR) throw error("the image has a file there, not a directory");
            if (fd == -ENOENT) return;
            if (fd < 0) throw error("open " + quote(destination) + " in the image: " + std::strerror(-fd));
            unique_fd from(fd);
            unique_fd to = open_path(source, O_RDONLY | O_DIRECTORY);
            struct stat st {};
            if (::fstat(from.get(), &st) < 0) throw_errno("fstat", quote(destination));
            if (::fchown(to.get(), st.st_uid, st.st_gid) < 0) throw_errno("fchown", quote(source));
            if (::fchmod(to.get(), st.st_mode & 07777) < 0) throw_errno("fchmod", quote(source));
            copy_tree(from, to, destination);
        });
    }
}

// The signal pieces stop sends: --stop-signal, else the image's StopSignal, else SIGTERM.
int stop_signal(const image& img, const run_request& r) {
    if (r.stop_signal) return *r.stop_signal;
    std::string from_image = img.runtime().value("StopSignal", std::string());
    if (from_image.empty()) return SIGTERM;
    return parse_stop_signal(from_image, "image " + quote(r.image) + " StopSignal");
}

std::string shell_join(const std::vector<std::string>& args) {
    std::string out;
    for (const auto& a : args) out += (out.empty() ? "" : " ") + a;
    return out;
}

}  // namespace

volume volume::parse(const std::string& text) {
    volume v;
    std::vector<std::string> parts;
    std::istringstream ss(text);
    std::string p;
    while (std::getline(ss, p, ':')) parts.push_back(p);
    if (parts.size() < 2 || parts.size() > 3 || parts[0].empty() || parts[1].empty())
        throw error("-v " + quote(text) + ": expected SRC:DST[:ro]");
    if (parts[0][0] != '/') throw error("-v " + quote(text) + ": the source must be an absolute host path");
    if (parts[1][0] != '/') throw error("-v " + quote(text) + ": the destination must be an absolute path");
    if (parts.size() == 3 && parts[2] != "ro" && parts[2] != "rw") throw error("-v " + quote(text) + ": the mode is ro or rw");
    struct stat st {};
    if (::stat(parts[0].c_str(), &st) < 0) throw_errno("-v", quote(parts[0]));
    v.source = parts[0];
    v.destination = parts[1];
    v.read_only = parts.size() == 3 && parts[2] == "ro";
    return v;
}

std::map<std::string, std::string> container_labels(const json& runtime, const run_request& r) {
    std::map<std::string, std::string> out;
    if (runtime.contains("Labels") && runtime["Labels"].is_object())
        for (const auto& [k, v] : runtime["Labels"].items())
            if (v.is_string()) out[k] = v.get<std::string>();
    for (const auto& [k, v] : r.labels) out[k] = v;
    return out;
}

std::string containers_dir(const std::string& store_root) { return store_root + "/containers"; }
std::string state_root(const std::string& store_root) { return store_root + "/state"; }

std::vector<std::string> command_line(const json& runtime, const run_request& r) {
    std::vector<std::string> args = r.entrypoint ? *r.entrypoint : string_list(runtime.value("Entrypoint", json()));
    std::vector<std::string> cmd = !r.cmd.empty() ? r.cmd : (r.entrypoint ? std::vector<std::string>{} : string_list(runtime.value("Cmd", json())));
    args.insert(args.end(), cmd.begin(), cmd.end());
    return args;
}

std::vector<std::pair<std::string, std::string>> image_volumes(const json& runtime, const run_request& r, const std::string& volumes_dir) {
    std::vector<std::pair<std::string, std::string>> out;
    if (volumes_dir.empty() || !runtime.contains("Volumes") || !runtime["Volumes"].is_object()) return out;
    std::vector<std::string> taken;
    for (const auto& v : r.volumes) taken.push_back(clean_path(v.destination));
    for (const auto& t : r.tmpfs) taken.push_back(clean_path(t.destination));
    for (const auto& [path, ignored] : runtime["Volumes"].items()) {
        if (path.empty() || path[0] != '/') throw error("image " + quote(r.image) + ": volume " + quote(path) + " is not an absolute path");
        std::string destination = clean_path(path);
        if (destination == "/") throw error("image " + quote(r.image) + ": a volume at / is not possible");
        if (std::find(taken.begin(), taken.end(), destination) != taken.end()) continue;  // -v or --tmpfs there wins
        out.emplace_back(destination, volumes_dir + "/" + std::to_string(out.size()));
    }
    return out;
}

json bundle_config(const image& img, const run_request& r, const std::string& rootfs, const std::string& id, const std::string& volumes_dir) {
    json runtime = img.runtime();
    json cfg = spec::default_config(false);
    json& p = cfg["process"];
    std::vector<std::string> args = command_line(runtime, r);
    if (args.empty()) throw error("no command: the image has neither Entrypoint nor Cmd; give one after the image name");
    p["args"] = args;
    p["terminal"] = r.tty;
    std::vector<std::string> env = string_list(runtime.value("Env", json()));
    auto set_env = [&](const std::string& kv) {
        std::string key = kv.substr(0, kv.find('='));
        std::erase_if(env, [&](const std::string& e) { return e.substr(0, e.find('=')) == key; });
        env.push_back(kv);
    };
    if (std::none_of(env.begin(), env.end(), [](const std::string& e) { return e.rfind("PATH=", 0) == 0; }))
        env.insert(env.begin(), "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    std::string hostname = r.hostname.empty() ? id.substr(0, 12) : r.hostname;
    set_env("HOSTNAME=" + hostname);
    if (r.tty) set_env("TERM=xterm");
    for (const std::string& e : r.env) {
        if (e.find('=') != std::string::npos) set_env(e);
        else if (const char* v = std::getenv(e.c_str())) set_env(e + "=" + v);
    }
    p["env"] = env;
    std::string cwd = !r.workdir.empty() ? r.workdir : runtime.value("WorkingDir", std::string());
    p["cwd"] = cwd.empty() ? "/" : cwd;
    p["user"] = resolve_user(!r.user.empty() ? r.user : runtime.value("User", std::string()), rootfs);
    // Privileged: every capability, and --cap-add/--cap-drop have nothing to change (as Docker).
    std::vector<std::string> caps = r.privileged ? known_capabilities()
                                                 : effective_capabilities(default_caps, known_capabilities(), r.cap_add, r.cap_drop);
    p["capabilities"] = {{"bounding", caps}, {"effective", caps}, {"permitted", caps}};
    p["noNewPrivileges"] = r.no_new_privileges;
    cfg["root"] = {{"path", rootfs}, {"readonly", r.read_only}};
    cfg["hostname"] = hostname;
    // Image volumes first: a -v or --tmpfs below one of them is mounted on top of it.
    for (const auto& [destination, source] : image_volumes(runtime, r, volumes_dir))
        cfg["mounts"].push_back({{"destination", destination}, {"type", "bind"}, {"source", source}, {"options", {"rbind", "rprivate"}}});
    for (const auto& t : r.tmpfs)
        cfg["mounts"].push_back({{"destination", t.destination}, {"type", "tmpfs"}, {"source", "tmpfs"}, {"options", t.options}});
    for (const auto& v : r.volumes) {
        json opts = {"rbind", "rprivate"};
        if (v.read_only) opts.push_back("ro");
        cfg["mounts"].push_back({{"destination", v.destination}, {"type", "bind"}, {"source", v.source}, {"options", opts}});
    }
    json& ns = cfg["linux"]["namespaces"];
    if (r.host_network) {
        json kept = json::array();
        for (const auto& n : ns)
            if (n.value("type", "") != "network") kept.push_back(n);
        ns = kept;
    }
    cfg["linux"]["cgroupsPath"] = "/pieces/" + id;
    if (r.privileged) make_privileged(cfg);
    if (auto seccomp = container_seccomp(r.seccomp, caps, r.privileged)) cfg["linux"]["seccomp"] = *seccomp;
    r.resources.apply(cfg["linux"]["resources"]);
    json annotations = container_labels(runtime, r);
    annotations["org.pieces.image"] = r.image;
    cfg["annotations"] = annotations;
    return cfg;
}

int run_container(const std::string& store_root, const run_request& r, std::string* id_out) {
    std::string id = random_id();
    std::string dir = containers_dir(store_root) + "/" + id;
    json record;
    {
        store s = store::open(store_root, true);
        std::optional<digest> manifest = s.resolve(r.image);
        if (!manifest) throw error("image " + quote(r.image) + " is not in the store (pieces images lists what is)");
        image img = load(s, *manifest);
        ensure_unpacked(s, img);
        std::string name = r.name.empty() ? "pieces-" + id.substr(0, 8) : r.name;
        for (const json& rec : records(store_root))
            if (rec.value("name", "") == name)
                throw error("the name " + quote(name) + " is taken by container " + rec.value("id", "").substr(0, 12));
        std::filesystem::create_directories(containers_dir(store_root));
        if (::mkdir(dir.c_str(), 0700) < 0) throw_errno("mkdir", quote(dir));
        try {
            std::string rootfs = mount_image(s, img, dir, r.remove ? upper_kind::throwaway : upper_kind::kept);
            json cfg = bundle_config(img, r, rootfs, id, dir + "/volumes");
            auto volumes = image_volumes(img.runtime(), r, dir + "/volumes");
            seed_image_volumes(rootfs, volumes);
            write_file_atomic(dir + "/config.json", cfg.dump(2), 0600);
            auto labels = container_labels(img.runtime(), r);
            int signal = stop_signal(img, r);
            record = {{"id", id}, {"name", name}, {"image", r.image}, {"imageId", manifest->str()},
                      {"command", shell_join(cfg["process"]["args"].get<std::vector<std::string>>())},
                      {"created", now_rfc3339()}, {"detached", r.detach}, {"remove", r.remove},
                      {"stopSignal", signal}, {"labels", labels},
                      {"Config", docker_config(img.runtime(), r, cfg, labels, signal)},
                      {"HostConfig", docker_host_config(r)},
                      {"Mounts", docker_mounts(r, volumes)}};
            if (r.stop_timeout) record["stopTimeout"] = *r.stop_timeout;
            write_record(store_root, record);
        } catch (...) {
            unmount_image(dir);
            remove_all(dir);
            throw;
        }
    }
    if (id_out) *id_out = id;
    container::create_options copts;
    copts.root = state_root(store_root);
    copts.id = id;
    copts.bundle = dir;
    container::run_options ropts;
    if (!r.detach) {
        int code = 0;
        std::string started = now_rfc3339();
        try {
            code = container::run(copts, ropts);
        } catch (...) {
            finish(store_root, id, 127, true, started);
            throw;
        }
        finish(store_root, id, code, r.remove, started);
        return code;
    }
    // Detached: a monitor process of its own session runs the container with its output going
    // to the log, waits for it, and records how it ended. We return once it runs.
    int report[2];
    if (::pipe2(report, O_CLOEXEC) < 0) throw_errno("pipe");
    unique_fd report_read(report[0]), report_write(report[1]);
    pid_t monitor = ::fork();
    if (monitor < 0) throw_errno("fork");
    if (monitor == 0) {
        report_read.reset();
        int code = 127;
        std::string started = now_rfc3339();
        try {
            ::setsid();
            unique_fd in = open_path("/dev/null", O_RDONLY);
            unique_fd log = open_path(dir + "/log", O_WRONLY | O_CREAT | O_APPEND, 0640);
            ::dup2(in.get(), 0);
            ::dup2(log.get(), 1);
            ::dup2(log.get(), 2);
            code = container::run(copts, ropts);
        } catch (const std::exception& e) {
            std::string what = e.what();
            ssize_t n = ::write(report_write.get(), what.data(), what.size());
            (void)n;
            finish(store_root, id, 127, true, started);
            ::_exit(127);
        }
        finish(store_root, id, code, r.remove, started);
        ::_exit(0);
    }
    report_write.reset();
    // Running, or the monitor told us why not.
    for (;;) {
        int status = 0;
        if (::waitpid(monitor, &status, WNOHANG) == monitor) {
            std::string why;
            char buf[4096];
            for (ssize_t n; (n = ::read(report_read.get(), buf, sizeof buf)) > 0;) why.append(buf, static_cast<size_t>(n));
            if (!why.empty()) throw error(why);
            return 0;  // it ran and ended already
        }
        std::string st = runtime_status(store_root, id, nullptr);
        if (st == "running" || st == "stopped") return 0;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
}

bool is_live(const std::string& status) { return status == "running" || status == "paused" || status == "created"; }

std::vector<container_info> list_containers(const std::string& store_root) {
    std::vector<container_info> out;
    for (const json& rec : records(store_root)) {
        container_info c;
        c.id = rec.value("id", "");
        c.name = rec.value("name", "");
        c.image = rec.value("image", "");
        c.command = rec.value("command", "");
        c.created = rec.value("created", "");
        c.image_id = rec.value("imageId", "");
        c.labels = rec.value("labels", std::map<std::string, std::string>());
        c.exit_code = rec.value("exitCode", -1);
        c.status = c.state = runtime_status(store_root, c.id, &c.pid);
        if (c.status == "exited" || c.status == "stopped") {
            c.status = c.exit_code >= 0 ? "exited (" + std::to_string(c.exit_code) + ")" : "exited";
            c.state = "exited";
            c.pid = 0;
        }
        out.push_back(c);
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.created > b.created; });
    return out;
}

container_info find_container(const std::string& store_root, const std::string& ref) {
    std::optional<container_info> found;
    for (const auto& c : list_containers(store_root)) {
        if (c.name == ref || c.id == ref) return c;
        if (ref.size() >= 4 && c.id.rfind(ref, 0) == 0) {
            if (found) throw error("container " + quote(ref) + " is ambiguous");
            found = c;
        }
    }
    if (!found) throw no_such_container("no container " + quote(ref) + " (pieces ps -a lists them)");
    return *found;
}

void stop_container(const std::string& store_root, const std::string& ref, std::optional<int> timeout) {
    container_info c = find_container(store_root, ref);
    std::string root = state_root(store_root);
    auto running = [&] {
        return is_live(runtime_status(store_root, c.id, nullptr));
    };
    if (!running()) return;
    json record = read_record(store_root, c.id);
    int seconds = timeout ? *timeout : record.value("stopTimeout", 10);
    container::kill(root, c.id, record.value("stopSignal", SIGTERM), false);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    while (running() && (seconds < 0 || std::chrono::steady_clock::now() < deadline))
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (running()) {
        container::kill(root, c.id, SIGKILL, true);
        while (running()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    // The process that ran it records the exit status a moment later; ps right after stop shows it.
    auto recorded = [&] {
        try {
            return read_record(store_root, c.id).contains("exitCode");
        } catch (const error&) {
            return true;  // removed (--rm)
        }
    };
    auto patience = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!recorded() && std::chrono::steady_clock::now() < patience) std::this_thread::sleep_for(std::chrono::milliseconds(5));
}

void kill_container(const std::string& store_root, const std::string& ref, int sig) {
    container_info c = find_container(store_root, ref);
    if (c.state != "running" && c.state != "paused") throw error("container " + quote(ref) + " is not running");
    container::kill(state_root(store_root), c.id, sig, false);
}

int wait_container(const std::string& store_root, const std::string& ref) {
    container_info c = find_container(store_root, ref);
    std::string dir = containers_dir(store_root) + "/" + c.id;
    auto gone = [&] { return error("container " + quote(ref) + " was removed before its exit status could be read"); };
    // The shared lock keeps a --rm container's directory until we have read its status; the
    // watch wakes us when the record is rewritten with it.
    unique_fd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!d) throw gone();
    if (::flock(d.get(), LOCK_SH) < 0) throw_errno("flock", quote(dir));
    unique_fd watch(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
    if (!watch) throw_errno("inotify_init1");
    if (::inotify_add_watch(watch.get(), dir.c_str(), IN_MOVED_TO | IN_CLOSE_WRITE | IN_DELETE_SELF | IN_ONLYDIR) < 0)
        throw_errno("inotify_add_watch", quote(dir));
    // Seconds the runtime has known the container as ended with no status recorded: its
    // monitor died, and nobody will write one.
    int ended_without_status = 0;
    for (;;) {
        json record;
        try {
            record = read_record(store_root, c.id);
        } catch (const std::exception&) {
            throw gone();
        }
        if (record.contains("exitCode")) return record["exitCode"].get<int>();
        ended_without_status = is_live(runtime_status(store_root, c.id, nullptr)) ? 0 : ended_without_status + 1;
        if (ended_without_status > 5) throw error("container " + quote(ref) + " ended but no exit status was recorded for it");
        struct pollfd pfd = {watch.get(), POLLIN, 0};
        if (::poll(&pfd, 1, 1000) < 0 && errno != EINTR) throw_errno("poll");
        char events[4096];
        while (::read(watch.get(), events, sizeof events) > 0) {
        }
    }
}

json inspect_container(const std::string& store_root, const std::string& ref) {
    container_info c = find_container(store_root, ref);
    std::string started;
    try {
        if (c.state != "exited") started = container::state(state_root(store_root), c.id).value("created", "");
    } catch (const error&) {
    }
    return inspect_document(read_record(store_root, c.id), c, started);
}

void remove_container(const std::string& store_root, const std::string& ref, bool force) {
    container_info c = find_container(store_root, ref);
    std::string st = runtime_status(store_root, c.id, nullptr);
    if (is_live(st) && !force) throw error("container " + quote(ref) + " is " + st + ": stop it first, or remove it with -f");
    std::string root = state_root(store_root);
    if (st != "exited") container::remove(root, c.id, true);
    std::string dir = containers_dir(store_root) + "/" + c.id;
    unmount_image(dir);
    remove_all(dir);
}

std::string log_path(const std::string& store_root, const std::string& ref) {
    container_info c = find_container(store_root, ref);
    return containers_dir(store_root) + "/" + c.id + "/log";
}

std::vector<std::string> images_in_use(const std::string& store_root) {
    std::vector<std::string> out;
    for (const json& rec : records(store_root)) out.push_back(rec.value("imageId", ""));
    return out;
}

}  // namespace pieces::image
