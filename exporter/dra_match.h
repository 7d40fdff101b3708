// Which tracked device a DRA device is. Pod-resources names a claim's device by its driver, pool
// and device name (and the CDI devices the driver prepared for it), in the driver's own terms;
// the collectors name devices by IDs, UUIDs, PCI addresses and node numbers. The join
// (exporter/join.h) looks up, in this order, the first of these that names a tracked device:
//
//  1. what a configured alias rule for the driver makes of the device name (DraOptions);
//  2. "DRIVER/POOL/DEVICE" and "DRIVER/DEVICE" among the tracked devices' IDs and aliases: the
//     names DraNamesOf() gives a collector's device by its driver's convention, and any alias a
//     collector reports (a devicedir `info` file's `aliases`);
//  3. the driver's own convention for names that carry a hardware identity
//     (ConventionCandidates());
//  4. a UUID or PCI address that the device name or a CDI device name carries.
//
// What none of them names is reported (a metric and a log line), never guessed at.
//
// The conventions, from the drivers' sources:
//  - NVIDIA's DRA driver (gpu.nvidia.com, k8s-dra-driver-gpu) names a whole GPU "gpu-<minor>" by
//    its /dev/nvidia<minor> number and a MIG device "gpu-<minor>-mig-<profile>-<start>-<size>" by
//    its parent's minor, its GPU instance profile ID and its placement; its CDI devices carry the
//    same names (k8s.gpu.nvidia.com/device=gpu-0), no UUID.
//  - Intel's GPU driver (gpu.intel.com, intel-resource-drivers-for-kubernetes) names a GPU by its
//    PCI address and PCI device ID, "0000-03-00-0-0x56a0" (the address's ':' and '.' made '-'),
//    or, with its classic naming, "card<N>" after /dev/dri/card<N>.
//  - The example driver (gpu.example.com, kubernetes-sigs/dra-example-driver) simulates its GPUs:
//    "gpu-<index>" named nothing real; a devicedir device that stands for one says so with an
//    alias "gpu.example.com/gpu-0".
#ifndef DEVSCOPE_EXPORTER_DRA_MATCH_H_
#define DEVSCOPE_EXPORTER_DRA_MATCH_H_

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "collectors/collector.h"
#include "common/options.h"
#include "kubelet/pod_resources.h"

namespace re2 {
class RE2;
}

namespace devscope {

// An alias rule for one driver: a device name that `device_pattern` matches whole names the
// tracked device whose ID or alias is `id`, in which \1 to \9 stand for the pattern's groups
// (\0 for the whole name). RE2 syntax.
struct DraAliasRule {
  std::string device_pattern;
  std::string id;
};

struct DraOptions {
  std::map<std::string, DraAliasRule> rules;  // YAML dra.aliases.DRIVER, by driver name
};

void DeclareOptions(OptionDeclarer& d, DraAliasRule& o);
// dra.aliases; checked by compiling the rules (DraMatcher::Create).
void DeclareOptions(OptionDeclarer& d, DraOptions& o);

// The names, "DRIVER/DEVICE", that a DRA driver gives the device `info` describes by the
// driver's convention; empty when no convention applies (no minor, another vendor).
std::vector<std::string> DraNamesOf(const DeviceInfo& info);

// IDs that the driver's convention says the claim device's name carries (step 3 above): for
// Intel's driver, the PCI address or the cardN node.
std::vector<std::string> ConventionCandidates(const ClaimDevice& device);

// UUIDs and PCI addresses that the device name or a CDI device name (its part after '=') is
// (step 4 above).
std::vector<std::string> IdentifierCandidates(const ClaimDevice& device);

// The configured rules, compiled once. Immutable; shared by every join.
class DraMatcher {
 public:
  // InvalidArgument naming the driver for a pattern RE2 refuses or an `id` that names a group
  // the pattern lacks.
  static absl::StatusOr<std::shared_ptr<const DraMatcher>> Create(const DraOptions& options);

  // Every ID to look up for `device`, in the order above; the first that names a tracked device
  // decides.
  std::vector<std::string> Candidates(const ClaimDevice& device) const;

 private:
  struct Rule {
    std::shared_ptr<const re2::RE2> pattern;
    std::string id;
  };
  explicit DraMatcher(std::map<std::string, Rule, std::less<>> rules) : rules_(std::move(rules)) {}
  const std::map<std::string, Rule, std::less<>> rules_;  // by driver name
};

}  // namespace devscope

#endif  // DEVSCOPE_EXPORTER_DRA_MATCH_H_
