// The --config.file loader: the YAML keys come from the option declarations (common/options.h).
// Every key is known: an unknown key is a typo that would otherwise silently do nothing, so it is
// an error naming the file and line, as is a malformed value.
#ifndef DEVSCOPE_COMMON_OPTIONS_YAML_H_
#define DEVSCOPE_COMMON_OPTIONS_YAML_H_

#include <string>

#include "absl/status/status.h"
#include "common/options.h"

namespace devscope {

// Reads the YAML file at `path` into the fields `options` is bound to. A key whose option was set
// by its flag keeps the flag's value. InvalidArgument "FILE:LINE: problem" for anything malformed
// or unknown, "--config.file: cannot read FILE: why" for a file that cannot be read. The set
// grows by the options of the map entries the file names (device_plugin.resources.NAME.*).
absl::Status LoadOptionsFile(const std::string& path, OptionSet& options);

}  // namespace devscope

#endif  // DEVSCOPE_COMMON_OPTIONS_YAML_H_
