// What the option declarations (common/options.h) say, for people and for tools: the markdown
// tables of docs/interface.md and a JSON schema of the --config.file keys (which the Helm chart's
// values.schema.json is checked against). `devscope options` prints them (cmd/flags.h).
#ifndef DEVSCOPE_COMMON_OPTIONS_DOCS_H_
#define DEVSCOPE_COMMON_OPTIONS_DOCS_H_

#include <string>

#include "common/options.h"

namespace devscope {

// "| flag | default | meaning |", one row per flag, in declaration order.
std::string FlagTableMarkdown(const OptionSet& options);

// "| key | value | default | meaning |", one row per YAML key, in declaration order; a map's
// entries as KEY.PLACEHOLDER.SUBKEY rows.
std::string KeyTableMarkdown(const OptionSet& options);

// A JSON schema (draft 2020-12) of the YAML file: every section closed to unknown keys, each key
// typed (durations and sizes as the patterns devscope reads), described by its help.
std::string ConfigJsonSchema(const OptionSet& options);

}  // namespace devscope

#endif  // DEVSCOPE_COMMON_OPTIONS_DOCS_H_
