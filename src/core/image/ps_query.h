// What `pieces ps` selects and how it prints a container: --filter KEY=VALUE and --format
// templates ({{.ID}}, {{.Label "k"}} ...). Pure functions over container_info; each error names
// the flag and the value.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/image/containers.h"

namespace pieces::image {

/// The --filter flags of pieces ps. Values of one key are alternatives; different keys must all
/// match; every label filter must match.
struct ps_filter {
    std::map<std::string, std::vector<std::string>> values;  ///< key -> the values given

    /// Parses "KEY=VALUE" flags; keys: id, name (patterns, as regular expressions searched in
    /// the full id or the name), label (KEY or KEY=VALUE), status (created, running, paused,
    /// exited), ancestor (an image name or id). Throws on an unknown key or status, or a bad pattern.
    static ps_filter parse(const std::vector<std::string>& flags);

    /// The ancestor values given (to be resolved to image ids by the caller).
    const std::vector<std::string>& ancestors() const;

    /// Whether `c` passes. `ancestor_ids` are the manifest digests the ancestor values name
    /// (a container whose image text equals an ancestor value passes as well).
    bool matches(const container_info& c, const std::vector<std::string>& ancestor_ids) const;
};

/// A --format template, parsed once: text and the placeholders {{.ID}} {{.Names}} {{.Image}}
/// {{.Command}} {{.Status}} {{.Labels}} {{.Label "key"}}; "\t" and "\n" in the text are a tab
/// and a newline.
class ps_format {
public:
    /// Throws naming the first placeholder this code does not know, or an unclosed "{{".
    static ps_format parse(const std::string& text);
    /// One container as the template says; ids and commands shortened unless `no_trunc`.
    std::string render(const container_info& c, bool no_trunc) const;

private:
    struct piece {
        std::string text;   ///< literal text, or the field's name
        std::string key;    ///< for Label: the label's key
        bool field = false;
    };
    std::vector<piece> pieces_;
};

/// "sleep 1000" as ps --format shows a command: quoted, cut to 20 characters with an ellipsis
/// unless `no_trunc`.
std::string display_command(const std::string& command, bool no_trunc);

}  // namespace pieces::image
