// The files of a devicedir device directory (layout in docs/interface.md, "The devicedir
// layout"), each parsed from its text: reading stays with the collector (collectors/devicedir.h),
// so each parser can be tested and fuzzed on its own. metrics.prom's parser is
// collectors/prometheus_text_parser.h.
#ifndef DEVSCOPE_COLLECTORS_DEVICEDIR_FILES_H_
#define DEVSCOPE_COLLECTORS_DEVICEDIR_FILES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "collectors/collector.h"
#include "collectors/parsed.h"

namespace devscope {

// Whether `name` is a valid devicedir device ID (a directory's name): 1..63 of [A-Za-z0-9._-].
bool IsValidDeviceId(absl::string_view name);

// Whether `name` is one of the layout's files (anything else in a device directory is ignored).
bool IsLayoutFile(absl::string_view name);

// `resource`: the extended resource name the device counts under, domain/name, surrounding
// whitespace ignored. InvalidArgument (the device is skipped) when the kubelet would not take it
// (common/resource_name.h).
absl::StatusOr<std::string> ParseResourceFile(absl::string_view text);

// `health`: Healthy or Unhealthy (any case); empty, as while being rewritten, is Healthy. Anything
// else is an error on line 1 and unhealthy: unknown content is not trusted as healthy.
Parsed<HealthSignal> ParseHealthFile(absl::string_view text);

// `numa_node`: an integer; -1 (no NUMA affinity, as in sysfs) is nullopt. Anything else is an
// error on line 1.
Parsed<std::optional<int64_t>> ParseNumaNodeFile(absl::string_view text);

// `info`: key=value lines; blank lines and # comments allowed; unknown keys ignored (forward
// compatible).
struct InfoFile {
  std::string vendor;
  std::string model;
  std::string serial;
  std::string pci_address;
  std::string uuid;
  // Other names of the device, whitespace- or comma-separated: IDs other device plugins use, and
  // "DRIVER/DEVICE" for the DRA device it is (exporter/dra_match.h).
  std::vector<std::string> aliases;
};
Parsed<InfoFile> ParseInfoFile(absl::string_view text);
// Puts `file` into `info`: vendor, model, serial, the PCI address (normalised,
// common/pci_address.h); the PCI address, the UUID and the aliases become aliases.
void ApplyInfoFile(const InfoFile& file, DeviceInfo& info);

// `allocate`: device HOST [CONTAINER [PERMS]], env K=V, mount HOST CONTAINER [ro], annotation K=V,
// cdi VENDOR/CLASS=NAME; blank lines and # comments allowed.
Parsed<AllocateSpec> ParseAllocateFile(absl::string_view text);

}  // namespace devscope

#endif  // DEVSCOPE_COLLECTORS_DEVICEDIR_FILES_H_
