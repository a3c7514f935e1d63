// The Piecefile parser, the shell-like word rules (split_words, expand) and .piecesignore matching.
#include "core/build/piecefile.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <optional>
#include <set>

#include "core/base/error.h"
#include "core/base/units.h"
#include "core/base/signals.h"

namespace pieces::build {
namespace {

bool is_blank(char c) { return c == ' ' || c == '\t'; }
bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_name_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_'; }

std::string_view trim_left(std::string_view s) {
    while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
    return s;
}
std::string_view trim_right(std::string_view s) {
    while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
    return s;
}
std::string_view trim(std::string_view s) { return trim_left(trim_right(s)); }

std::string to_upper(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return out;
}
std::string to_lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

std::string in_quotes(std::string_view s) { return "\"" + std::string(s) + "\""; }

// The file's physical lines, without line terminators (LF or CRLF) and without a UTF-8 BOM.
std::vector<std::string_view> split_lines(std::string_view text) {
    if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);
    std::vector<std::string_view> lines;
    while (!text.empty()) {
        size_t nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        if (line.ends_with('\r')) line.remove_suffix(1);
        lines.push_back(line);
        if (nl == std::string_view::npos) break;
        text.remove_prefix(nl + 1);
    }
    return lines;
}

// ---------------------------------------------------------------------------------------------
// Parser directives: "# name=value" lines at the very top of the file.

struct directive {
    std::string name;  // lower-case
    std::string value;
};

std::optional<directive> parse_directive(std::string_view line) {
    line = trim(line);
    if (line.empty() || line[0] != '#') return std::nullopt;
    size_t i = 1;
    while (i < line.size() && is_blank(line[i])) ++i;
    size_t name_start = i;
    if (i >= line.size() || std::isalpha(static_cast<unsigned char>(line[i])) == 0) return std::nullopt;
    while (i < line.size() && std::isalnum(static_cast<unsigned char>(line[i])) != 0) ++i;
    std::string_view name = line.substr(name_start, i - name_start);
    while (i < line.size() && is_blank(line[i])) ++i;
    if (i >= line.size() || line[i] != '=') return std::nullopt;
    std::string_view value = trim(line.substr(i + 1));
    if (value.empty()) return std::nullopt;
    return directive{to_lower(name), std::string(value)};
}

// ---------------------------------------------------------------------------------------------
// Instruction tables.

const std::set<std::string, std::less<>> known_keywords = {
    "FROM", "FROM_URL", "RUN", "CMD", "COPY", "ADD", "ENV", "WORKDIR", "USER", "ENTRYPOINT", "LABEL", "ARG",
    "EXPOSE", "SHELL", "VOLUME", "STOPSIGNAL", "HEALTHCHECK", "ONBUILD", "MAINTAINER"};

// Instructions whose arguments may be a JSON array (HEALTHCHECK's after its type word).
const std::set<std::string, std::less<>> json_keywords = {"RUN",    "CMD",    "ENTRYPOINT", "SHELL",
                                                          "COPY",   "ADD",    "VOLUME",     "HEALTHCHECK"};

// What an ONBUILD trigger may not be, as Docker refuses them.
const std::set<std::string, std::less<>> not_triggers = {"ONBUILD", "FROM", "FROM_URL", "MAINTAINER"};

struct flag_spec {
    std::string_view name;
    bool boolean = false;     // "--link" alone means true
    bool repeatable = false;  // may be given more than once (--mount, --exclude)
};

std::vector<flag_spec> flags_of(std::string_view keyword) {
    if (keyword == "FROM") return {{"platform"}};
    if (keyword == "RUN") return {{"mount", false, true}, {"network"}, {"security"}};
    if (keyword == "COPY")
        return {{"from"}, {"chown"}, {"chmod"}, {"link", true}, {"parents", true}, {"exclude", false, true}};
    if (keyword == "ADD")
        return {{"chown"}, {"chmod"}, {"link", true}, {"checksum"}, {"keep-git-dir", true}, {"exclude", false, true}};
    if (keyword == "HEALTHCHECK")
        return {{"interval"}, {"timeout"}, {"start-period"}, {"start-interval"}, {"retries"}};
    return {};
}

// Leading "--flag[=value]" words of `rest` (quotes removed from them, as Docker does), and what follows.
std::pair<std::vector<std::string>, std::string_view> extract_flag_words(std::string_view rest, char escape) {
    std::vector<std::string> words;
    size_t i = 0;
    while (true) {
        while (i < rest.size() && is_space(rest[i])) ++i;
        if (i + 1 >= rest.size() || rest[i] != '-' || rest[i + 1] != '-') return {words, rest.substr(i)};
        std::string word;
        char quote = 0;
        for (; i < rest.size(); ++i) {
            char c = rest[i];
            if (quote == 0 && is_space(c)) break;
            if (quote == 0 && (c == '\'' || c == '"')) {
                quote = c;
            } else if (quote != 0 && c == quote) {
                quote = 0;
            } else if (c == escape && quote != '\'' && i + 1 < rest.size()) {
                word += rest[++i];
            } else {
                word += c;
            }
        }
        if (quote != 0) throw error(std::string("unterminated ") + quote + " quote in flag " + word);
        if (word == "--") return {words, rest.substr(i)};  // "--" ends the flags
        words.push_back(std::move(word));
    }
}

// ---------------------------------------------------------------------------------------------
// The JSON exec form.

// Whether text that starts with '[' but is not valid JSON was meant as a JSON array (an error)
// rather than a shell command like `[ -f /etc/os-release ]` (the shell's test, written with spaces).
bool meant_as_json(std::string_view body) {
    if (body.size() < 2 || body.front() != '[' || body.back() != ']') return false;
    if (body.starts_with("[[")) return false;  // bash's [[ ... ]]
    return !is_space(body[1]) || !is_space(body[body.size() - 2]) || body.find("\",") != std::string_view::npos;
}

// The reason part of a nlohmann parse error ("... column 7: syntax error ..." -> "syntax error ...").
std::string json_reason(const std::string& what) {
    size_t col = what.find("column ");
    if (col != std::string::npos) {
        size_t colon = what.find(": ", col);
        if (colon != std::string::npos) return what.substr(colon + 2);
    }
    size_t bracket = what.find("] ");
    return bracket == std::string::npos ? what : what.substr(bracket + 2);
}

// ---------------------------------------------------------------------------------------------
// Word rules shared by split_words and expand.

class expander {
public:
    expander(std::string_view s, const std::map<std::string, std::string>& vars, char escape)
        : s_(s), vars_(vars), escape_(escape) {}

    std::string run() {
        std::string out = word(false);
        return out;
    }

private:
    // Processes a word up to its end, or (inside ${NAME:-...}) up to the closing brace.
    std::string word(bool in_braces) {
        std::string out;
        while (i_ < s_.size()) {
            char c = s_[i_];
            if (in_braces && c == '}') break;
            if (c == escape_) {
                ++i_;
                if (i_ < s_.size()) out += s_[i_++];  // a trailing escape is dropped, as Docker does
            } else if (c == '\'') {
                size_t end = s_.find('\'', i_ + 1);
                if (end == std::string_view::npos) throw error("unterminated ' quote in " + in_quotes(s_));
                out += s_.substr(i_ + 1, end - i_ - 1);
                i_ = end + 1;
            } else if (c == '"') {
                out += double_quoted();
            } else if (c == '$') {
                out += variable();
            } else {
                out += c;
                ++i_;
            }
        }
        return out;
    }

    std::string double_quoted() {
        std::string out;
        ++i_;
        while (i_ < s_.size() && s_[i_] != '"') {
            char c = s_[i_];
            if (c == '$') {
                out += variable();
            } else if (c == escape_ && i_ + 1 < s_.size() &&
                       (s_[i_ + 1] == '"' || s_[i_ + 1] == '$' || s_[i_ + 1] == escape_)) {
                out += s_[i_ + 1];
                i_ += 2;
            } else {
                out += c;
                ++i_;
            }
        }
        if (i_ >= s_.size()) throw error("unterminated \" quote in " + in_quotes(s_));
        ++i_;
        return out;
    }

    std::string name() {
        size_t start = i_;
        if (i_ < s_.size() && is_digit(s_[i_])) {
            while (i_ < s_.size() && is_digit(s_[i_])) ++i_;
        } else {
            while (i_ < s_.size() && is_name_char(s_[i_])) ++i_;
        }
        return std::string(s_.substr(start, i_ - start));
    }

    const std::string* lookup(const std::string& n) const {
        auto it = vars_.find(n);
        return it == vars_.end() ? nullptr : &it->second;
    }

    // At a '$': the substitution, or a literal '$' when no name follows.
    std::string variable() {
        ++i_;
        if (i_ >= s_.size() || (s_[i_] != '{' && !is_name_char(s_[i_]))) return "$";
        if (s_[i_] != '{') {
            const std::string* v = lookup(name());
            return v ? *v : std::string();
        }
        size_t open = i_ - 1;
        ++i_;
        std::string n = name();
        if (n.empty() || i_ >= s_.size()) throw error("bad substitution " + in_quotes(s_.substr(open)));
        if (s_[i_] == '}') {
            ++i_;
            const std::string* v = lookup(n);
            return v ? *v : std::string();
        }
        bool colon = s_[i_] == ':';
        if (colon) ++i_;
        if (i_ >= s_.size() || (s_[i_] != '-' && s_[i_] != '+' && s_[i_] != '?'))
            throw error("bad substitution " + in_quotes(s_.substr(open)) +
                        ": expected ${NAME}, ${NAME:-default}, ${NAME:+alternative} or ${NAME:?message}");
        char op = s_[i_++];
        std::string alt = word(true);
        if (i_ >= s_.size()) throw error("missing } in " + in_quotes(s_.substr(open)));
        ++i_;
        const std::string* v = lookup(n);
        bool present = colon ? (v && !v->empty()) : v != nullptr;
        switch (op) {
        case '-': return present ? *v : alt;
        case '+': return present ? alt : std::string();
        default:
            if (!present) throw error(n + ": " + (alt.empty() ? "is not set" : alt));
            return *v;
        }
    }

    std::string_view s_;
    size_t i_ = 0;
    const std::map<std::string, std::string>& vars_;
    char escape_;
};

// ---------------------------------------------------------------------------------------------
// Checks of instruction shapes.

bool has_variable(std::string_view s) { return s.find('$') != std::string_view::npos; }

bool is_lower_hex(std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return is_digit(c) || (c >= 'a' && c <= 'f'); });
}

// A port or port range ("80", "8000-8010"), each 1-65535.
bool valid_port_range(std::string_view s) {
    auto port = [](std::string_view p) {
        if (p.empty() || p.size() > 5 || !std::all_of(p.begin(), p.end(), is_digit)) return -1;
        int v = std::stoi(std::string(p));
        return v >= 1 && v <= 65535 ? v : -1;
    };
    size_t dash = s.find('-');
    if (dash == std::string_view::npos) return port(s) > 0;
    int lo = port(s.substr(0, dash));
    int hi = port(s.substr(dash + 1));
    return lo > 0 && hi > 0 && lo <= hi;
}

// Docker's rule for stage names: a letter first, then letters, digits, '-', '_' or '.'.
bool valid_stage_name(std::string_view s) {
    if (s.empty() || std::isalpha(static_cast<unsigned char>(s[0])) == 0) return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_' || c == '.';
    });
}

// Parses one logical line into an instruction, checking its shape; `fail` throws with the location
// (none when `path` is empty: an ONBUILD trigger, whose caller adds it).
class instruction_parser {
public:
    instruction_parser(const std::string& path, int line, char escape) : path_(path), line_(line), escape_(escape) {}

    [[noreturn]] void fail(const std::string& msg) const {
        throw error(path_.empty() ? msg : path_ + ":" + std::to_string(line_) + ": " + msg);
    }

    instruction parse(std::string_view text) {
        instruction ins;
        ins.text = std::string(text);
        ins.line = line_;
        ins.escape = escape_;
        size_t end = 0;
        while (end < text.size() && !is_space(text[end])) ++end;
        std::string_view written = text.substr(0, end);
        ins.keyword = to_upper(written);
        if (!known_keywords.contains(ins.keyword))
            fail("unknown instruction " + in_quotes(written) +
                 " (expected FROM, FROM_URL, RUN, CMD, COPY, ADD, ENV, WORKDIR, USER, ENTRYPOINT, LABEL, ARG, "
                 "EXPOSE, SHELL, VOLUME, STOPSIGNAL, HEALTHCHECK, ONBUILD or MAINTAINER)");
        keyword_ = ins.keyword;
        std::string_view rest = trim(text.substr(end));
        if (keyword_ == "ONBUILD") {
            // The trigger is a whole instruction: its flags are its own.
            if (!rest.empty()) ins.args.emplace_back(rest);
            check_shape(ins);
            return ins;
        }
        auto [flag_words, body] = lex([&] { return extract_flag_words(rest, escape_); });
        ins.flags = check_flags(flag_words);
        body = trim(body);
        if (keyword_ == "HEALTHCHECK" && !body.empty()) {
            // "CMD command" or "NONE": the type word, then the command in either form.
            size_t type_end = std::min(body.find_first_of(" \t"), body.size());
            ins.args.push_back(to_upper(body.substr(0, type_end)));
            body = trim(body.substr(type_end));
        }
        if (json_keywords.contains(keyword_)) {
            if (auto array = exec_form(body)) {
                ins.exec_form = true;
                ins.args.insert(ins.args.end(), array->begin(), array->end());
            }
        }
        if (!ins.exec_form && !body.empty()) ins.args.emplace_back(body);
        check_shape(ins);
        return ins;
    }

private:
    // Runs a lexing step, giving its error this instruction's location.
    template <typename Fn>
    auto lex(Fn&& fn) const -> decltype(fn()) {
        try {
            return fn();
        } catch (const error& e) {
            fail(keyword_ + ": " + e.what());
        }
    }

    std::vector<std::pair<std::string, std::string>> check_flags(const std::vector<std::string>& words) const {
        std::vector<std::pair<std::string, std::string>> flags;
        if (words.empty()) return flags;
        std::vector<flag_spec> specs = flags_of(keyword_);
        for (const std::string& word : words) {
            std::string_view w = std::string_view(word).substr(2);
            size_t eq = w.find('=');
            std::string name(w.substr(0, eq));
            auto spec = std::find_if(specs.begin(), specs.end(), [&](const flag_spec& s) { return s.name == name; });
            if (spec == specs.end()) {
                if (specs.empty()) fail(keyword_ + " takes no flags, got --" + name);
                std::string known;
                for (const flag_spec& s : specs) known += (known.empty() ? "--" : ", --") + std::string(s.name);
                fail(keyword_ + " has no flag --" + name + " (it takes " + known + ")");
            }
            std::string value;
            if (eq == std::string_view::npos) {
                if (!spec->boolean) fail(keyword_ + " --" + name + " needs a value: --" + name + "=VALUE");
                value = "true";
            } else {
                value = std::string(w.substr(eq + 1));
                if (spec->boolean && value != "true" && value != "false")
                    fail(keyword_ + " --" + name + " takes true or false, got " + in_quotes(value));
            }
            if (!spec->repeatable &&
                std::any_of(flags.begin(), flags.end(), [&](const auto& f) { return f.first == name; }))
                fail(keyword_ + " --" + name + " is given twice");
            flags.emplace_back(name, std::move(value));
        }
        return flags;
    }

    // The strings of a JSON array, or nothing when `body` is shell form.
    std::optional<std::vector<std::string>> exec_form(std::string_view body) const {
        if (body.empty() || body.front() != '[') return std::nullopt;
        nlohmann::json doc;
        try {
            doc = nlohmann::json::parse(body);
        } catch (const nlohmann::json::parse_error& e) {
            if (!meant_as_json(body)) return std::nullopt;
            size_t at = e.byte > 0 ? std::min<size_t>(e.byte - 1, body.size()) : 0;
            fail(keyword_ + ": invalid JSON array at " + in_quotes(body.substr(at, 12)) + ": " + json_reason(e.what()));
        }
        if (!doc.is_array()) return std::nullopt;
        std::vector<std::string> out;
        for (const auto& item : doc) {
            if (!item.is_string()) fail(keyword_ + ": the JSON array must hold only strings, got " + item.dump());
            out.push_back(item.get<std::string>());
        }
        return out;
    }

    std::vector<std::string> words(const instruction& ins) const {
        if (ins.args.empty()) return {};
        return lex([&] { return split_words(ins.args[0], escape_); });
    }

    void check_shape(const instruction& ins) const {
        const std::string& k = keyword_;
        if (k == "HEALTHCHECK") {
            try {
                parse_healthcheck(ins);
            } catch (const error& e) {
                fail(e.what());
            }
            return;
        }
        if (k == "VOLUME" && ins.exec_form) {
            if (ins.args.empty()) fail("VOLUME needs at least one path");
            for (const std::string& v : ins.args)
                if (trim(v).empty()) fail("VOLUME: a path cannot be empty");
            return;
        }
        if (k == "SHELL") {
            if (!ins.exec_form) fail("SHELL needs a JSON array, e.g. SHELL [\"/bin/sh\", \"-c\"]");
            if (ins.args.empty()) fail("SHELL needs at least the shell program: SHELL [\"/bin/sh\", \"-c\"]");
            return;
        }
        if (ins.exec_form) {
            if ((k == "COPY" || k == "ADD") && ins.args.size() < 2)
                fail(k + " needs a source and a destination");
            if (k == "RUN" && ins.args.empty()) fail("RUN needs a command");
            return;  // CMD [] and ENTRYPOINT [] are allowed: they clear the setting
        }
        if (ins.args.empty()) fail(k + " " + missing_what(k));
        if (k == "FROM") check_from(words(ins));
        else if (k == "FROM_URL") check_from_url(words(ins));
        else if (k == "COPY" || k == "ADD") {
            if (words(ins).size() < 2) fail(k + " needs a source and a destination");
        } else if (k == "ENV" || k == "LABEL" || k == "ARG") {
            try {
                parse_key_values(ins);
            } catch (const error& e) {
                fail(e.what());
            }
        } else if (k == "EXPOSE") {
            for (const std::string& w : words(ins)) check_port(w);
        } else if (k == "WORKDIR") {
            if (words(ins).size() != 1) fail("WORKDIR takes one path (quote a path that has spaces)");
        } else if (k == "USER") {
            check_user(words(ins));
        } else if (k == "VOLUME") {
            for (const std::string& w : words(ins))
                if (!has_variable(w) && lex([&] { return expand(w, {}, escape_); }).empty())
                    fail("VOLUME: a path cannot be empty");
        } else if (k == "STOPSIGNAL") {
            check_stop_signal(words(ins));
        } else if (k == "ONBUILD") {
            try {
                parse_trigger(ins.args[0], escape_);
            } catch (const error& e) {
                fail(std::string("ONBUILD: ") + e.what());
            }
        }
    }

    static std::string missing_what(const std::string& k) {
        if (k == "FROM") return "needs an image: FROM image[:tag] [AS name]";
        if (k == "FROM_URL") return "needs a URL: FROM_URL url [sha256:DIGEST]";
        if (k == "COPY" || k == "ADD") return "needs a source and a destination";
        if (k == "ENV") return "needs name=value";
        if (k == "LABEL") return "needs key=value";
        if (k == "ARG") return "needs a name: ARG name[=default]";
        if (k == "EXPOSE") return "needs a port: EXPOSE port[/tcp|udp]";
        if (k == "WORKDIR") return "needs a path";
        if (k == "USER") return "needs a user: USER user[:group]";
        if (k == "VOLUME") return "needs at least one path: VOLUME /path ...";
        if (k == "STOPSIGNAL") return "needs a signal: STOPSIGNAL SIGTERM";
        if (k == "ONBUILD") return "needs an instruction: ONBUILD RUN ...";
        if (k == "MAINTAINER") return "needs a name";
        return "needs a command";
    }

    // "image [AS name]" or "url [sha256:D] [AS name]": the words before "AS"; checks the name.
    std::vector<std::string> strip_stage_name(std::vector<std::string> w, const std::string& usage) const {
        if (w.size() >= 2 && to_lower(w[w.size() - 2]) == "as") {
            const std::string& name = w.back();
            if (!has_variable(name) && !valid_stage_name(name))
                fail(keyword_ + ": stage name " + in_quotes(name) +
                     " must start with a letter and hold only letters, digits, '-', '_' and '.'");
            w.resize(w.size() - 2);
        }
        if (w.empty()) fail(keyword_ + " " + usage);
        return w;
    }

    void check_from(std::vector<std::string> w) const {
        w = strip_stage_name(std::move(w), "needs an image: FROM image[:tag] [AS name]");
        if (w.size() != 1) fail("FROM takes one image and an optional AS name: FROM image[:tag] [AS name]");
    }

    void check_from_url(std::vector<std::string> w) const {
        w = strip_stage_name(std::move(w), "needs a URL: FROM_URL url [sha256:DIGEST]");
        if (w.size() > 2) fail("FROM_URL takes a URL and an optional sha256:DIGEST");
        const std::string& url = w[0];
        if (!has_variable(url)) {
            std::string lower = to_lower(url);
            bool ok = false;
            for (std::string_view scheme : {"http://", "https://", "file://"})
                ok = ok || (lower.starts_with(scheme) && lower.size() > scheme.size());
            if (!ok) fail("FROM_URL needs an http://, https:// or file:// URL, got " + in_quotes(url));
        }
        if (w.size() == 2 && !has_variable(w[1])) {
            std::string_view d = w[1];
            if (!d.starts_with("sha256:") || d.size() != 7 + 64 || !is_lower_hex(d.substr(7)))
                fail("FROM_URL digest must be sha256: and 64 lower-case hex digits, got " + in_quotes(d));
        }
    }

    void check_port(const std::string& w) const {
        if (has_variable(w) || w.find_first_of("'\"") != std::string::npos) return;  // known after expansion
        std::string_view spec = w;
        size_t slash = spec.find('/');
        if (slash != std::string_view::npos) {
            std::string proto = to_lower(spec.substr(slash + 1));
            if (proto != "tcp" && proto != "udp" && proto != "sctp")
                fail("EXPOSE: protocol of " + in_quotes(w) + " must be tcp, udp or sctp");
            spec = spec.substr(0, slash);
        }
        if (!valid_port_range(spec))
            fail("EXPOSE expects port[/tcp|udp] with a port from 1 to 65535 (or a range like 8000-8010), got " +
                 in_quotes(w));
    }

    void check_stop_signal(const std::vector<std::string>& w) const {
        if (w.size() != 1) fail("STOPSIGNAL takes one signal, a name (SIGTERM, TERM) or a number");
        if (has_variable(w[0])) return;  // known after expansion
        try {
            parse_signal(lex([&] { return expand(w[0], {}, escape_); }));
        } catch (const error& e) {
            fail("STOPSIGNAL: " + std::string(e.what()));
        }
    }

    void check_user(const std::vector<std::string>& w) const {
        if (w.size() != 1) fail("USER takes one user[:group]");
        if (has_variable(w[0])) return;
        size_t colon = w[0].find(':');
        if (colon == 0 || (colon != std::string::npos && colon + 1 == w[0].size()))
            fail("USER expects user[:group], got " + in_quotes(w[0]));
    }

    const std::string& path_;
    int line_;
    char escape_;
    std::string keyword_;
};

// Whether a physical line ends with the escape character (blanks after it allowed); `piece` gets
// the line without it.
bool continues(std::string_view line, char escape, std::string_view& piece) {
    std::string_view t = line;
    while (!t.empty() && is_blank(t.back())) t.remove_suffix(1);
    if (!t.empty() && t.back() == escape) {
        piece = t.substr(0, t.size() - 1);
        return true;
    }
    piece = line;
    return false;
}

// ---------------------------------------------------------------------------------------------
// .piecesignore patterns.

// Removes ".", empty segments and leading "/", resolves ".." (as a path cleaner would).
std::string clean_path(std::string_view p) {
    bool rooted = p.starts_with('/');
    std::vector<std::string_view> parts;
    while (!p.empty()) {
        size_t slash = p.find('/');
        std::string_view part = p.substr(0, slash);
        p = slash == std::string_view::npos ? std::string_view() : p.substr(slash + 1);
        if (part.empty() || part == ".") continue;
        if (part == "..") {
            if (!parts.empty() && parts.back() != "..") parts.pop_back();
            else if (!rooted) parts.push_back(part);  // above the context: matches nothing
            continue;
        }
        parts.push_back(part);
    }
    std::string out;
    for (std::string_view part : parts) {
        if (!out.empty()) out += '/';
        out += part;
    }
    return out;
}

// Matches one character against a [...] class starting at p[0] == '['; advances p past it.
// Returns nullopt for a malformed class.
std::optional<bool> match_class(std::string_view& p, char c) {
    size_t i = 1;
    bool negate = i < p.size() && p[i] == '^';
    if (negate) ++i;
    bool matched = false;
    bool first = true;
    while (true) {
        if (i >= p.size()) return std::nullopt;
        if (p[i] == ']' && !first) break;
        first = false;
        char lo = p[i];
        if (lo == '\\') {
            if (++i >= p.size()) return std::nullopt;
            lo = p[i];
        }
        ++i;
        char hi = lo;
        if (i + 1 < p.size() && p[i] == '-' && p[i + 1] != ']') {
            hi = p[i + 1];
            i += 2;
            if (hi == '\\') {
                if (i >= p.size()) return std::nullopt;
                hi = p[i++];
            }
        }
        if (lo <= c && c <= hi) matched = true;
    }
    p.remove_prefix(i + 1);
    return matched != negate && c != '/';
}

// Glob match of a whole slash-separated path: '*' and '?' stay within a segment, "**" spans any
// number of segments (zero included), [...] classes, '\' escapes.
bool glob_match(std::string_view p, std::string_view s) {
    while (!p.empty()) {
        if (p.starts_with("**")) {
            while (p.starts_with('*')) p.remove_prefix(1);
            if (p.starts_with('/')) p.remove_prefix(1);
            if (p.empty()) return true;
            if (glob_match(p, s)) return true;
            for (size_t i = 0; i < s.size(); ++i)
                if (s[i] == '/' && glob_match(p, s.substr(i + 1))) return true;
            return false;
        }
        char c = p[0];
        if (c == '*') {
            p.remove_prefix(1);
            for (size_t i = 0;; ++i) {
                if (glob_match(p, s.substr(i))) return true;
                if (i >= s.size() || s[i] == '/') return false;
            }
        }
        if (s.empty()) return false;
        if (c == '?') {
            if (s[0] == '/') return false;
        } else if (c == '[') {
            std::optional<bool> m = match_class(p, s[0]);
            if (!m || !*m) return false;
            s.remove_prefix(1);
            continue;
        } else {
            if (c == '\\' && p.size() > 1) p.remove_prefix(1);
            if (s[0] != p[0]) return false;
        }
        p.remove_prefix(1);
        s.remove_prefix(1);
    }
    return s.empty();
}

// Why a pattern is malformed, or "" when it is fine.
std::string pattern_problem(std::string_view p) {
    for (size_t i = 0; i < p.size(); ++i) {
        if (p[i] == '\\') {
            if (i + 1 >= p.size()) return "ends with a lone \\";
            ++i;
        } else if (p[i] == '[') {
            std::string_view rest = p.substr(i);
            size_t before = rest.size();
            if (!match_class(rest, 'a')) return "has an unterminated [";
            i += before - rest.size() - 1;
        }
    }
    return "";
}

}  // namespace

// ---------------------------------------------------------------------------------------------

piecefile parse_piecefile(std::string_view text, const std::string& path) {
    piecefile pf;
    pf.path = path;
    std::vector<std::string_view> lines = split_lines(text);

    // Parser directives: only at the very top; the first other line (a blank line, an ordinary
    // comment or an instruction) ends them.
    std::set<std::string> seen;
    for (size_t n = 0; n < lines.size(); ++n) {
        std::optional<directive> d = parse_directive(lines[n]);
        if (!d || (d->name != "escape" && d->name != "syntax" && d->name != "check")) break;
        if (!seen.insert(d->name).second)
            throw error(path + ":" + std::to_string(n + 1) + ": the " + d->name + " directive is given twice");
        if (d->name == "escape") {
            if (d->value != "\\" && d->value != "`")
                throw error(path + ":" + std::to_string(n + 1) + ": the escape directive takes \\ or `, got " +
                            in_quotes(d->value));
            pf.escape = d->value[0];
        }
    }

    bool seen_from = false;
    for (size_t n = 0; n < lines.size();) {
        int start = static_cast<int>(n) + 1;
        std::string_view first = trim_left(lines[n++]);
        if (first.empty() || first[0] == '#') continue;

        // Join continuation lines; comment lines and blank lines inside a continuation are skipped.
        std::string_view piece;
        bool more = continues(first, pf.escape, piece);
        std::string joined(piece);
        while (more && n < lines.size()) {
            std::string_view raw = lines[n++];
            std::string_view lead = trim_left(raw);
            if (lead.empty() || lead[0] == '#') continue;
            more = continues(raw, pf.escape, piece);
            joined += piece;
        }
        std::string_view logical = trim(joined);
        if (logical.empty()) continue;

        instruction_parser p(path, start, pf.escape);
        std::string_view word = logical.substr(0, std::min(logical.find_first_of(" \t"), logical.size()));
        std::string keyword = to_upper(word);
        if (!seen_from && keyword != "FROM" && keyword != "FROM_URL" && keyword != "ARG" &&
            known_keywords.contains(keyword))
            p.fail("expected FROM or FROM_URL before " + keyword + " (only ARG may come first)");
        if (!known_keywords.contains(keyword) && !pf.instructions.empty() &&
            pf.instructions.back().text.find("<<") != std::string::npos) {
            // Most likely the body of a heredoc the line before opened.
            try {
                p.parse(logical);
            } catch (const error& e) {
                throw error(std::string(e.what()) + "; heredocs (<<) are not supported");
            }
        }
        pf.instructions.push_back(p.parse(logical));
        seen_from = seen_from || keyword == "FROM" || keyword == "FROM_URL";
    }
    if (pf.instructions.empty()) throw error(path + ": no instructions; a Piecefile starts with FROM or FROM_URL");
    if (!seen_from) throw error(path + ": no FROM or FROM_URL instruction");
    return pf;
}

instruction parse_trigger(std::string_view text, char escape) {
    text = trim(text);
    std::string keyword = to_upper(text.substr(0, std::min(text.find_first_of(" \t"), text.size())));
    if (keyword == "ONBUILD") throw error("ONBUILD ONBUILD is not allowed (triggers do not chain)");
    if (not_triggers.contains(keyword)) throw error(keyword + " is not allowed as an ONBUILD trigger");
    return instruction_parser("", 0, escape).parse(text);
}

healthcheck parse_healthcheck(const instruction& ins) {
    healthcheck h;
    if (ins.args.empty()) throw error("HEALTHCHECK needs CMD and a command, or NONE");
    const std::string& type = ins.args[0];
    if (type == "NONE") {
        if (ins.args.size() > 1 || ins.exec_form || !ins.flags.empty())
            throw error("HEALTHCHECK NONE takes no flags and no arguments");
        h.test = {"NONE"};
        return h;
    }
    if (type != "CMD") throw error("HEALTHCHECK: unknown type " + in_quotes(type) + " (expected CMD or NONE)");
    if (ins.args.size() < 2) throw error("HEALTHCHECK CMD needs a command");
    h.test = {ins.exec_form ? "CMD" : "CMD-SHELL"};
    h.test.insert(h.test.end(), ins.args.begin() + 1, ins.args.end());
    for (const auto& [name, value] : ins.flags) {
        std::string shown = "HEALTHCHECK --" + name + "=" + value;
        if (value.empty()) continue;  // as Docker: an empty value leaves the setting unset
        if (name == "retries") {
            std::string_view v = value;
            if (v.starts_with('+') || v.starts_with('-')) v.remove_prefix(1);
            if (v.empty() || v.size() > 10 || !std::all_of(v.begin(), v.end(), is_digit))
                throw error(shown + ": --retries takes a whole number");
            long long n = std::stoll(value);
            if (n < 0) throw error(shown + ": --retries cannot be negative");
            if (n > INT32_MAX) throw error(shown + ": --retries is too large");
            h.retries = static_cast<int>(n);
            continue;
        }
        int64_t d = with_context(shown, [&] { return parse_duration(value); });
        if (d < 0) throw error(shown + ": the duration cannot be negative");
        if (d > 0 && d < 1'000'000) throw error(shown + ": the duration must be 0 or at least 1ms");
        if (name == "interval") h.interval = d;
        else if (name == "timeout") h.timeout = d;
        else if (name == "start-period") h.start_period = d;
        else h.start_interval = d;
    }
    return h;
}

std::vector<std::pair<std::string, std::string>> parse_key_values(const instruction& ins) {
    const char escape = ins.escape;
    std::vector<std::pair<std::string, std::string>> out;
    std::string_view rest = ins.args.empty() ? std::string_view() : trim(ins.args[0]);
    std::vector<std::string> words = with_context(ins.keyword, [&] { return split_words(rest, escape); });
    if (words.empty()) throw error(ins.keyword + " needs " + (ins.keyword == "ARG" ? "a name" : "name=value"));
    if (ins.keyword == "ARG") {
        for (const std::string& w : words) {
            size_t eq = w.find('=');
            if (eq == 0) throw error("ARG needs a name before =, got " + in_quotes(w));
            out.emplace_back(w.substr(0, eq), eq == std::string::npos ? std::string() : w.substr(eq + 1));
        }
        return out;
    }
    if (words[0].find('=') == std::string::npos) {
        // The old form "ENV name value": the value is the rest of the line, as written.
        size_t end = 0;
        while (end < rest.size() && !is_space(rest[end])) ++end;
        std::string_view value = trim(rest.substr(end));
        if (value.empty())
            throw error(ins.keyword + " expects name=value (or the old form \"" + ins.keyword +
                        " name value\"), got " + in_quotes(rest));
        out.emplace_back(std::string(rest.substr(0, end)), std::string(value));
        return out;
    }
    for (const std::string& w : words) {
        size_t eq = w.find('=');
        if (eq == std::string::npos)
            throw error(ins.keyword + " expects name=value pairs, got " + in_quotes(w) + " without =");
        if (eq == 0) throw error(ins.keyword + " needs a name before =, got " + in_quotes(w));
        out.emplace_back(w.substr(0, eq), w.substr(eq + 1));
    }
    return out;
}

std::vector<std::pair<std::string, std::string>> parse_key_values(const instruction& ins,
                                                                  const std::map<std::string, std::string>& vars) {
    auto pairs = parse_key_values(ins);
    for (auto& [key, value] : pairs) {
        key = expand(key, vars, ins.escape);
        value = expand(value, vars, ins.escape);
    }
    return pairs;
}

std::string expand(std::string_view word, const std::map<std::string, std::string>& vars, char escape) {
    return expander(word, vars, escape).run();
}

std::vector<std::string> split_words(std::string_view text, char escape) {
    std::vector<std::string> words;
    std::string word;
    bool in_word = false;
    char quote = 0;
    for (size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        if (quote != 0) {
            word += c;
            if (c == quote) quote = 0;
            else if (quote == '"' && c == escape && i + 1 < text.size()) word += text[++i];
            continue;
        }
        if (is_space(c)) {
            if (in_word) words.push_back(std::move(word));
            word.clear();
            in_word = false;
            continue;
        }
        in_word = true;
        word += c;
        if (c == '\'' || c == '"') quote = c;
        else if (c == escape && i + 1 < text.size()) word += text[++i];
    }
    if (quote != 0) throw error(std::string("unterminated ") + quote + " quote in " + in_quotes(text));
    if (in_word) words.push_back(std::move(word));
    return words;
}

std::vector<std::string> expand_words(std::string_view text, const std::map<std::string, std::string>& vars,
                                      char escape) {
    std::vector<std::string> words = split_words(text, escape);
    for (std::string& w : words) w = expand(w, vars, escape);
    return words;
}

ignore_rules ignore_rules::parse(std::string_view text) {
    ignore_rules rules;
    std::vector<std::string_view> lines = split_lines(text);
    for (size_t n = 0; n < lines.size(); ++n) {
        std::string_view line = lines[n];
        if (line.starts_with('#')) continue;  // a comment only in the first column, as Docker reads them
        line = trim(line);
        if (line.empty()) continue;
        bool exception = line[0] == '!';
        if (exception) line = trim(line.substr(1));
        std::string pattern = clean_path(line);
        if (pattern.empty()) continue;  // "/" or ".": names no file
        if (std::string problem = pattern_problem(pattern); !problem.empty())
            throw error(".piecesignore:" + std::to_string(n + 1) + ": pattern " + in_quotes(line) + " " + problem);
        rules.rules_.emplace_back(std::move(pattern), exception);
    }
    return rules;
}

bool ignore_rules::excluded(std::string_view relative_path) const {
    std::string path = clean_path(relative_path);
    if (path.empty()) return false;
    bool excluded = false;
    for (const auto& [pattern, exception] : rules_) {
        if (exception != excluded) continue;  // could not change the answer
        // A pattern that names a directory also names everything below it.
        bool match = glob_match(pattern, path);
        for (size_t slash = path.find('/'); !match && slash != std::string::npos; slash = path.find('/', slash + 1))
            match = glob_match(pattern, std::string_view(path).substr(0, slash));
        if (match) excluded = !exception;
    }
    return excluded;
}

bool ignore_rules::has_exceptions() const {
    return std::any_of(rules_.begin(), rules_.end(), [](const auto& r) { return r.second; });
}

}  // namespace pieces::build
