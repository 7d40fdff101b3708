#include "exporter/join.h"

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "common/pci_address.h"

namespace devscope {
namespace {

bool AllDigits(absl::string_view s) {
  for (char c : s) {
    if (!absl::ascii_isdigit(c)) return false;
  }
  return !s.empty();
}

// "UUID::N" -> "UUID"; empty when there is no numeric sharing suffix.
absl::string_view StripShareSuffix(absl::string_view id) {
  const size_t sep = id.rfind("::");
  if (sep == absl::string_view::npos || sep == 0 || !AllDigits(id.substr(sep + 2))) return {};
  return id.substr(0, sep);
}

// Intel's shared form "cardN-M" -> "cardN"; empty otherwise.
absl::string_view StripIntelShare(absl::string_view id) {
  if (!absl::StartsWith(id, "card")) return {};
  const size_t dash = id.find('-');
  if (dash == absl::string_view::npos || !AllDigits(id.substr(4, dash - 4)) ||
      !AllDigits(id.substr(dash + 1))) {
    return {};
  }
  return id.substr(0, dash);
}

using DeviceIndexes = absl::InlinedVector<uint32_t, 1>;

class DeviceIndex {
 public:
  void Add(absl::string_view key, uint32_t device) {
    if (key.empty()) return;
    DeviceIndexes& list = map_[CanonicalDeviceId(key)];
    if (list.empty() || list.back() != device) list.push_back(device);
  }
  const DeviceIndexes* Find(absl::string_view id) const {
    if (id.empty()) return nullptr;
    auto it = map_.find(CanonicalDeviceId(id));
    return it == map_.end() ? nullptr : &it->second;
  }
  // Tries the ID as given, then without a sharing suffix, then Intel's cardN-M as cardN.
  const DeviceIndexes* Lookup(absl::string_view id) const {
    if (const DeviceIndexes* found = Find(id)) return found;
    if (const DeviceIndexes* found = Find(StripShareSuffix(id))) return found;
    return Find(StripIntelShare(id));
  }

 private:
  absl::flat_hash_map<std::string, DeviceIndexes> map_;
};

// Adds `holder` to the device's holders unless it is there already (a container may list a device
// twice: two IDs of one shared device, two resources, two shares of one DRA device).
void AddHolder(JoinedDevice& device, const Holder& holder) {
  auto& holders = device.holders;
  if (std::find(holders.begin(), holders.end(), holder) == holders.end()) {
    holders.push_back(holder);
  }
}

// The devices a DRA device is, by the first candidate that names any (exporter/dra_match.h).
const DeviceIndexes* MatchClaimDevice(const ClaimDevice& claim, const DraMatcher& dra,
                                      const DeviceIndex& index) {
  for (const std::string& id : dra.Candidates(claim)) {
    if (const DeviceIndexes* found = index.Find(id)) return found;
  }
  return nullptr;
}

const DraMatcher& NoAliasRules() {
  static const auto* const kMatcher =
      new std::shared_ptr<const DraMatcher>(*DraMatcher::Create(DraOptions{}));
  return **kMatcher;
}

}  // namespace

std::string CanonicalDeviceId(absl::string_view id) {
  std::string lower = absl::AsciiStrToLower(id);
  return NormalizePciAddress(lower).value_or(std::move(lower));
}

std::shared_ptr<const NodeView> Join(std::shared_ptr<const PodResourcesSnapshot> pods,
                                     std::shared_ptr<const DeviceSnapshot> devices,
                                     const DraMatcher* dra) {
  auto view = std::make_shared<NodeView>();
  view->pods = pods ? std::move(pods) : std::make_shared<const PodResourcesSnapshot>();
  view->devices_source = devices ? std::move(devices) : std::make_shared<const DeviceSnapshot>();
  if (dra == nullptr) dra = &NoAliasRules();

  DeviceIndex index;
  for (const CollectorReport& collector : view->devices_source->collectors) {
    for (const DeviceReport& report : collector.devices) {
      const uint32_t i = static_cast<uint32_t>(view->devices.size());
      JoinedDevice& device = view->devices.emplace_back();
      device.collector = collector.collector;
      device.resource = report.info.resource;
      device.report = &report;
      index.Add(report.info.id, i);
      for (const std::string& alias : report.info.aliases) index.Add(alias, i);
      index.Add(report.info.pci_address, i);
      for (const std::string& name : DraNamesOf(report.info)) index.Add(name, i);
    }
  }

  // The resource a device is listed under when it does not name its own: allocated first.
  std::vector<const std::string*> allocated_resource(view->devices.size(), nullptr);
  std::vector<const std::string*> allocatable_resource(view->devices.size(), nullptr);

  for (const PodResources& pod : view->pods->pods) {
    for (const ContainerResources& container : pod.containers) {
      const Holder holder{pod.ns, pod.name, container.name, {}, {}};
      for (const DeviceAssignment& assignment : container.devices) {
        for (const std::string& id : assignment.device_ids) {
          const DeviceIndexes* found = index.Lookup(id);
          if (found == nullptr) continue;
          for (uint32_t i : *found) {
            AddHolder(view->devices[i], holder);
            if (allocated_resource[i] == nullptr) allocated_resource[i] = &assignment.resource;
          }
        }
      }
      for (const ClaimDevice& claim : container.claim_devices) {
        const DeviceIndexes* found = MatchClaimDevice(claim, *dra, index);
        if (found == nullptr) {
          view->unmatched_claim_devices.push_back(&claim);
          continue;
        }
        const Holder claim_holder{pod.ns, pod.name, container.name, claim.claim_namespace,
                                  claim.claim_name};
        for (uint32_t i : *found) AddHolder(view->devices[i], claim_holder);
      }
    }
  }
  if (view->pods->allocatable.has_value()) {
    for (const DeviceAssignment& assignment : view->pods->allocatable->devices) {
      for (const std::string& id : assignment.device_ids) {
        const DeviceIndexes* found = index.Lookup(id);
        if (found == nullptr) continue;
        for (uint32_t i : *found) {
          if (allocatable_resource[i] == nullptr) allocatable_resource[i] = &assignment.resource;
        }
      }
    }
  }
  for (size_t i = 0; i < view->devices.size(); ++i) {
    JoinedDevice& device = view->devices[i];
    if (!device.resource.empty()) continue;
    if (allocated_resource[i] != nullptr) {
      device.resource = *allocated_resource[i];
    } else if (allocatable_resource[i] != nullptr) {
      device.resource = *allocatable_resource[i];
    }
  }
  return view;
}

}  // namespace devscope
