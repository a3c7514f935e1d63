#include "core/image/ps_query.h"

#include <algorithm>
#include <regex>

#include "core/base/error.h"
#include "core/base/fs.h"

namespace pieces::image {
namespace {

const std::vector<std::string> filter_keys = {"id", "name", "label", "status", "ancestor"};
const std::vector<std::string> statuses = {"created", "running", "paused", "exited"};
const std::vector<std::string> fields = {"ID", "Names", "Image", "Command", "Status", "Labels", "Label"};

std::string joined(const std::vector<std::string>& words) {
    std::string out;
    for (const auto& w : words) out += (out.empty() ? "" : ", ") + w;
    return out;
}

bool contains(const std::vector<std::string>& list, const std::string& s) { return std::find(list.begin(), list.end(), s) != list.end(); }

// A pattern found anywhere in `text`; patterns were checked when parsed.
bool pattern_in(const std::string& pattern, const std::string& text) { return std::regex_search(text, std::regex(pattern)); }

bool label_matches(const std::string& want, const std::map<std::string, std::string>& labels) {
    size_t eq = want.find('=');
    auto it = labels.find(want.substr(0, eq));
    return it != labels.end() && (eq == std::string::npos || it->second == want.substr(eq + 1));
}

std::string trim(const std::string& s) {
    size_t b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
    return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

// The text between {{ and }}: ".Field" or `.Label "key"`.
void parse_action(const std::string& action, std::string& field, std::string& key) {
    std::string a = trim(action);
    auto unknown = [&] {
        return error("--format " + quote("{{" + action + "}}") + ": pieces knows {{.ID}} {{.Names}} {{.Image}} {{.Command}} " +
                     "{{.Status}} {{.Labels}} {{.Label \"key\"}}");
    };
    if (a.size() < 2 || a[0] != '.') throw unknown();
    size_t space = a.find_first_of(" \t");
    field = a.substr(1, space == std::string::npos ? std::string::npos : space - 1);
    if (!contains(fields, field)) throw unknown();
    if (field != "Label") {
        if (space != std::string::npos) throw unknown();
        return;
    }
    std::string arg = space == std::string::npos ? "" : trim(a.substr(space));
    if (arg.size() < 2 || arg.front() != '"' || arg.back() != '"' || arg.find('"', 1) != arg.size() - 1) throw unknown();
    key = arg.substr(1, arg.size() - 2);
}

}  // namespace

ps_filter ps_filter::parse(const std::vector<std::string>& flags) {
    ps_filter f;
    for (const auto& text : flags) {
        size_t eq = text.find('=');
        if (eq == std::string::npos || eq == 0)
            throw error("--filter " + quote(text) + ": expected KEY=VALUE (keys: " + joined(filter_keys) + ")");
        std::string key = text.substr(0, eq), value = text.substr(eq + 1);
        if (!contains(filter_keys, key)) throw error("--filter " + quote(text) + ": unknown key " + quote(key) + " (keys: " + joined(filter_keys) + ")");
        if (key == "status" && !contains(statuses, value))
            throw error("--filter " + quote(text) + ": unknown status (" + joined(statuses) + ")");
        if (key == "label" && (value.empty() || value[0] == '='))
            throw error("--filter " + quote(text) + ": expected label=KEY or label=KEY=VALUE");
        if (key == "id" || key == "name") {
            try {
                std::regex check(value);
            } catch (const std::regex_error& e) {
                throw error("--filter " + quote(text) + ": not a valid pattern: " + e.what());
            }
        }
        f.values[key].push_back(value);
    }
    return f;
}

const std::vector<std::string>& ps_filter::ancestors() const {
    static const std::vector<std::string> none;
    auto it = values.find("ancestor");
    return it == values.end() ? none : it->second;
}

bool ps_filter::matches(const container_info& c, const std::vector<std::string>& ancestor_ids) const {
    for (const auto& [key, list] : values) {
        auto any = [&](auto&& pred) { return std::any_of(list.begin(), list.end(), pred); };
        bool ok = true;
        if (key == "id") ok = any([&](const std::string& v) { return pattern_in(v, c.id); });
        else if (key == "name") ok = any([&](const std::string& v) { return pattern_in(v, c.name); });
        else if (key == "status") ok = any([&](const std::string& v) { return v == c.state; });
        else if (key == "label") ok = std::all_of(list.begin(), list.end(), [&](const std::string& v) { return label_matches(v, c.labels); });
        else if (key == "ancestor")
            ok = contains(ancestor_ids, c.image_id) || any([&](const std::string& v) { return v == c.image; });
        if (!ok) return false;
    }
    return true;
}

ps_format ps_format::parse(const std::string& text) {
    ps_format f;
    std::string literal;
    auto flush = [&] {
        if (!literal.empty()) f.pieces_.push_back({literal, "", false});
        literal.clear();
    };
    for (size_t i = 0; i < text.size();) {
        if (text.compare(i, 2, "{{") == 0) {
            size_t close = text.find("}}", i + 2);
            if (close == std::string::npos) throw error("--format " + quote(text) + ": a \"{{\" is not closed");
            piece p;
            p.field = true;
            parse_action(text.substr(i + 2, close - i - 2), p.text, p.key);
            flush();
            f.pieces_.push_back(p);
            i = close + 2;
        } else if (text.compare(i, 2, "\\t") == 0 || text.compare(i, 2, "\\n") == 0) {
            literal += text[i + 1] == 't' ? '\t' : '\n';
            i += 2;
        } else {
            literal += text[i++];
        }
    }
    flush();
    return f;
}

std::string ps_format::render(const container_info& c, bool no_trunc) const {
    std::string out;
    for (const auto& p : pieces_) {
        if (!p.field) out += p.text;
        else if (p.text == "ID") out += no_trunc ? c.id : c.id.substr(0, 12);
        else if (p.text == "Names") out += c.name;
        else if (p.text == "Image") out += c.image;
        else if (p.text == "Command") out += display_command(c.command, no_trunc);
        else if (p.text == "Status") out += c.status;
        else if (p.text == "Labels") {
            std::string all;
            for (const auto& [k, v] : c.labels) all += (all.empty() ? "" : ",") + k + "=" + v;
            out += all;
        } else if (p.text == "Label") {
            auto it = c.labels.find(p.key);
            if (it != c.labels.end()) out += it->second;
        }
    }
    return out;
}

std::string display_command(const std::string& command, bool no_trunc) {
    std::string shown = command;
    std::vector<size_t> starts;  // where each UTF-8 character begins
    for (size_t i = 0; i < shown.size(); ++i)
        if ((static_cast<unsigned char>(shown[i]) & 0xC0) != 0x80) starts.push_back(i);
    if (!no_trunc && starts.size() > 20) shown = shown.substr(0, starts[19]) + "\u2026";
    std::string out = "\"";
    for (char ch : shown) {
        if (ch == '"' || ch == '\\') out += '\\';
        out += ch;
    }
    return out + "\"";
}

}  // namespace pieces::image
