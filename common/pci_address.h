// PCI addresses in the one form devscope keeps them: the form sysfs and device plugins use.
#ifndef DEVSCOPE_COMMON_PCI_ADDRESS_H_
#define DEVSCOPE_COMMON_PCI_ADDRESS_H_

#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace devscope {

// "DOMAIN:BB:DD.F" or "BB:DD.F", any case, with a domain of 1 to 8 hex digits (NVML writes 8,
// "00000000:3B:00.0"), as "dddd:bb:dd.f" with a 4-digit domain in lower case ("0000:3b:00.0").
// nullopt when `text` is not a PCI address (or its domain does not fit in 4 digits).
std::optional<std::string> NormalizePciAddress(absl::string_view text);

}  // namespace devscope

#endif  // DEVSCOPE_COMMON_PCI_ADDRESS_H_
