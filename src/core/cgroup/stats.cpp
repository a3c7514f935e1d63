#include "core/cgroup/stats.h"

#include <unistd.h>

#include <fstream>
#include <sstream>

namespace pieces::cgroup {
namespace {

using json = nlohmann::json;

uint64_t number(const std::string& path) {
    std::ifstream in(path);
    std::string text;
    in >> text;
    if (text.empty() || text == "max") return 0;
    try {
        return std::stoull(text);
    } catch (const std::exception&) {
        return 0;
    }
}

// "key value" lines (memory.stat, cpu.stat, cpuacct.stat).
std::map<std::string, uint64_t> keyed(const std::string& path) {
    std::map<std::string, uint64_t> out;
    std::ifstream in(path);
    std::string key;
    uint64_t value = 0;
    while (in >> key >> value) out[key] = value;
    return out;
}

json memory_entry(const std::string& dir, const std::string& prefix) {
    return {{"usage", number(dir + "/" + prefix + "usage_in_bytes")},
            {"max_usage", number(dir + "/" + prefix + "max_usage_in_bytes")},
            {"failcnt", number(dir + "/" + prefix + "failcnt")},
            {"limit", number(dir + "/" + prefix + "limit_in_bytes")}};
}

}  // namespace

json stats(const group& g) {
    auto dirs = g.v1_dirs();
    json data = json::object();
    if (auto it = dirs.find("cpuacct"); it != dirs.end()) {
        const std::string& d = it->second;
        json percpu = json::array();
        std::ifstream in(d + "/cpuacct.usage_percpu");
        uint64_t v = 0;
        while (in >> v) percpu.push_back(v);
        // cpuacct.stat counts clock ticks; the usage fields are nanoseconds.
        auto ticks = keyed(d + "/cpuacct.stat");
        uint64_t ns_per_tick = 1000000000ULL / static_cast<uint64_t>(::sysconf(_SC_CLK_TCK));
        data["cpu"]["usage"] = {{"total", number(d + "/cpuacct.usage")},
                                {"percpu", percpu},
                                {"kernel", ticks["system"] * ns_per_tick},
                                {"user", ticks["user"] * ns_per_tick}};
    }
    if (auto it = dirs.find("cpu"); it != dirs.end()) {
        auto st = keyed(it->second + "/cpu.stat");
        data["cpu"]["throttling"] = {{"periods", st["nr_periods"]},
                                     {"throttled_periods", st["nr_throttled"]},
                                     {"throttled_time", st["throttled_time"]}};
    }
    if (auto it = dirs.find("memory"); it != dirs.end()) {
        const std::string& d = it->second;
        data["memory"] = {{"usage", memory_entry(d, "memory.")},
                          {"swap", memory_entry(d, "memory.memsw.")},
                          {"kernel", memory_entry(d, "memory.kmem.")},
                          {"kernelTCP", memory_entry(d, "memory.kmem.tcp.")},
                          {"raw", keyed(d + "/memory.stat")}};
        auto st = keyed(d + "/memory.stat");
        data["memory"]["cache"] = st["total_cache"];
    }
    if (auto it = dirs.find("pids"); it != dirs.end())
        data["pids"] = {{"current", number(it->second + "/pids.current")}, {"limit", number(it->second + "/pids.max")}};
    data["blkio"] = json::object();
    data["hugetlb"] = json::object();
    if (auto it = dirs.find("hugetlb"); it != dirs.end()) {
        for (const char* size : {"2MB", "1GB"}) {
            std::string base = it->second + "/hugetlb." + size + ".";
            if (::access((base + "usage_in_bytes").c_str(), F_OK) != 0) continue;
            data["hugetlb"][size] = {{"usage", number(base + "usage_in_bytes")},
                                     {"max", number(base + "max_usage_in_bytes")},
                                     {"failcnt", number(base + "failcnt")}};
        }
    }
    return data;
}

}  // namespace pieces::cgroup
