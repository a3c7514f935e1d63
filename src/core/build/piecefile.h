// The Piecefile language: parsing, word splitting, variable expansion and .piecesignore rules.
// Pure functions of their input: no files, no environment (docs/piecefile.md is the reference).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pieces::build {

/// One instruction as written.
struct instruction {
    std::string keyword;                       ///< upper-case: FROM, FROM_URL, RUN, CMD, COPY, ADD, ENV, WORKDIR, USER, ENTRYPOINT, LABEL, ARG, EXPOSE, SHELL, VOLUME, STOPSIGNAL, HEALTHCHECK, ONBUILD, MAINTAINER
    std::vector<std::string> args;             ///< exec form: the JSON array's strings; shell form: one element, the text after the flags (continuations joined, trimmed). HEALTHCHECK: first its type (CMD or NONE, upper-case), then the command in either form
    bool exec_form = false;                    ///< written as a JSON array
    std::vector<std::pair<std::string, std::string>> flags;  ///< leading --name=value flags, name without "--" (COPY --chown=1:1, --from ..., FROM --platform=...); a bare boolean flag (--link) has value "true"
    std::string text;                          ///< the instruction as written, continuations joined (for cache keys and messages)
    int line = 0;                              ///< line number where it starts (1-based)
    char escape = '\\';                        ///< the file's escape character (`# escape=`), for split_words/expand
};

/// A parsed Piecefile.
struct piecefile {
    std::string path;                          ///< for messages
    std::vector<instruction> instructions;
    char escape = '\\';                        ///< the escape character (`# escape=` directive); pass it to split_words/expand
};

/// Parses a Piecefile (or Dockerfile): comments (#), blank lines, line continuations (backslash,
/// or the escape character set by a leading "# escape=`" parser directive), keyword
/// case-insensitive, JSON exec form vs shell form, heredocs not needed. Errors name the file,
/// line and what was expected, one line: `Piecefile:7: COPY needs a source and a destination`.
/// Validates each instruction's arity/shape (FROM needs an image; FROM_URL needs a URL and an optional sha256:DIGEST;
/// ENV k=v pairs or the old "ENV k v" form; LABEL k=v...; ARG name[=default]; EXPOSE port[/tcp|udp]...;
/// WORKDIR one path; USER user[:group]; SHELL exec form only; VOLUME one or more paths; STOPSIGNAL one
/// signal; HEALTHCHECK as parse_healthcheck; ONBUILD as parse_trigger; MAINTAINER a name; the first
/// instruction must be FROM/FROM_URL (ARG may come before FROM); unknown keywords are an error naming them).
piecefile parse_piecefile(std::string_view text, const std::string& path);

/// Parses an ONBUILD trigger (the text after "ONBUILD") as one instruction, checking its shape.
/// ONBUILD, FROM, FROM_URL and MAINTAINER cannot be triggers, as in Docker. Errors carry no
/// location (the caller knows it): `ONBUILD ONBUILD is not allowed`.
instruction parse_trigger(std::string_view text, char escape = '\\');

/// A HEALTHCHECK instruction's settings as Docker keeps them in the image config.
struct healthcheck {
    std::vector<std::string> test;    ///< ["NONE"], ["CMD", exe, args...] (exec form) or ["CMD-SHELL", "command"]
    int64_t interval = 0;             ///< nanoseconds; 0: not set (the runtime's default)
    int64_t timeout = 0;              ///< nanoseconds; 0: not set
    int64_t start_period = 0;         ///< nanoseconds; 0: not set
    int64_t start_interval = 0;       ///< nanoseconds; 0: not set
    int retries = 0;                  ///< 0: not set
};

/// A HEALTHCHECK instruction's settings: CMD with a command (and the flags --interval, --timeout,
/// --start-period, --start-interval as durations of 0 or at least 1ms, --retries of 0 or more),
/// or NONE alone. Throws `error` without a location ("HEALTHCHECK --interval=10: ...").
healthcheck parse_healthcheck(const instruction& ins);

/// Splits ENV, LABEL and ARG arguments into key/value pairs, honouring quotes and escapes as
/// Docker does. Key and value are returned AS WRITTEN, quotes still in place (`"a b"`): pass
/// each through expand(), which removes the quotes and substitutes variables (or use the
/// overload below). ARG without a default gives an empty value; "ENV k v w" gives {k, "v w"}.
/// Uses the instruction's escape character. Throws `error` ("ENV expects name=value ...").
std::vector<std::pair<std::string, std::string>> parse_key_values(const instruction& ins);

/// parse_key_values, then expand() on each key and value with `vars`: the final pairs.
std::vector<std::pair<std::string, std::string>> parse_key_values(const instruction& ins,
                                                                  const std::map<std::string, std::string>& vars);

/// Expands $VAR, ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:+alt}, ${VAR+alt}, ${VAR:?msg}
/// and \$ in `word` from `vars` (unset -> empty), as Docker does for ENV, WORKDIR, COPY, ADD,
/// USER, LABEL, EXPOSE, ARG, FROM. Like Docker it also removes quotes: '...' is literal,
/// "..." expands, an escape outside quotes makes the next character literal. Throws `error`
/// on an unterminated quote, a bad ${...} or ${VAR:?msg} with VAR unset.
std::string expand(std::string_view word, const std::map<std::string, std::string>& vars,
                   char escape = '\\');

/// Splits a shell-form argument list into words honouring quotes (for COPY/ADD/EXPOSE/ARG/USER/WORKDIR
/// arguments, after expansion rules as Docker applies them): whitespace inside quotes or after
/// the escape character does not split. Words keep their quotes and escapes, so each can go
/// through expand() next — split first, then expand each word, as Docker does (a variable's
/// value never splits a word). Throws `error` on an unterminated quote.
std::vector<std::string> split_words(std::string_view text, char escape = '\\');

/// split_words, then expand() on each word: the final words of a COPY/ADD/EXPOSE line.
std::vector<std::string> expand_words(std::string_view text, const std::map<std::string, std::string>& vars,
                                      char escape = '\\');

/// .piecesignore (like .dockerignore): patterns with *, ?, ** , leading "!" exceptions, comments; last match wins.
class ignore_rules {
public:
    /// Parses the file's text; throws `error` (".piecesignore:LINE: ...") on a malformed pattern.
    static ignore_rules parse(std::string_view text);
    /// True when `relative_path` (slash-separated, no leading "./") is excluded from the build context.
    bool excluded(std::string_view relative_path) const;
    /// True when some "!" rule exists: a walker must then look inside excluded directories,
    /// since an exception may bring back a file below one.
    bool has_exceptions() const;

private:
    std::vector<std::pair<std::string, bool>> rules_;  // pattern, is_exception
};

}  // namespace pieces::build
