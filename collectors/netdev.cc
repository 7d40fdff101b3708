// The netdev collector: physical NICs and SR-IOV functions from <sysfs>/class/net and the PCI
// tree.
//
// A device is one PCI function (ID: its PCI address, the ID the SR-IOV device plugin uses); its
// netdev names are aliases. Interfaces without a `device` link (lo, bridges, veths, tunnels) are
// virtual and skipped. A PF's device/virtfnN links name its VFs, so a VF bound to vfio-pci (no
// netdev) is still a device, and so is any network-class function a userspace driver holds (a
// DPDK-bound PF). Network samples carry an `interface` label, because one PCI function can own
// several netdevs (multi-port functions).
#include "collectors/netdev.h"

#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "collectors/attribute_reader.h"
#include "collectors/registry.h"
#include "common/files.h"
#include "common/log.h"

namespace devscope {
namespace {

namespace fs = std::filesystem;

// "0000:3b:00.0": domain:bus:device.function in hex.
bool IsPciAddress(absl::string_view name) {
  if (name.size() != 12 || name[4] != ':' || name[7] != ':' || name[10] != '.') return false;
  for (size_t i : {0, 1, 2, 3, 5, 6, 8, 9, 11}) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(name[i]))) return false;
  }
  return true;
}

// A readable name for the common NIC vendors; the PCI vendor ID otherwise.
std::string VendorName(const std::string& id) {
  static const std::map<std::string, std::string> kNames = {
      {"0x8086", "Intel"},   {"0x15b3", "Mellanox"},   {"0x14e4", "Broadcom"},
      {"0x1077", "QLogic"},  {"0x1924", "Solarflare"}, {"0x1d0f", "Amazon"},
      {"0x1af4", "Red Hat"}, {"0x19ee", "Netronome"},  {"0x1137", "Cisco"},
      {"0x10ec", "Realtek"}, {"0x1022", "AMD"},        {"0x1dd8", "Pensando"}};
  auto it = kNames.find(id);
  return it == kNames.end() ? id : it->second;
}

// One PCI function and the netdevs it owns.
// Drivers that hand a whole PCI function to userspace (DPDK and friends).
const std::set<std::string> kUserspaceDrivers = {"vfio-pci", "igb_uio", "uio_pci_generic"};

struct Function {
  fs::path dir;                      // <sysfs>/devices/.../0000:3b:00.0, resolved
  std::vector<std::string> netdevs;  // names under <sysfs>/class/net
};

struct StatCounter {
  const char* file;  // statistics/<file>
  const char* metric;
  const char* kind;  // errors_total kind label, or nullptr
};

constexpr StatCounter kStatCounters[] = {
    {"rx_bytes", "devscope_device_network_receive_bytes_total", nullptr},
    {"tx_bytes", "devscope_device_network_transmit_bytes_total", nullptr},
    {"rx_packets", "devscope_device_network_receive_packets_total", nullptr},
    {"tx_packets", "devscope_device_network_transmit_packets_total", nullptr},
    {"rx_dropped", "devscope_device_network_receive_drop_total", nullptr},
    {"tx_dropped", "devscope_device_network_transmit_drop_total", nullptr},
    {"rx_errors", "devscope_device_errors_total", "rx_errors"},
    {"tx_errors", "devscope_device_errors_total", "tx_errors"},
};

class NetdevCollector : public Collector {
 public:
  NetdevCollector(const NetdevOptions& options, const NodeRoots& roots)
      : sysfs_(roots.sysfs), advertise_resource_(options.advertise_resource) {}

  absl::string_view name() const override { return "netdev"; }

  absl::StatusOr<std::vector<DeviceReport>> Collect() override {
    std::map<std::string, Function> functions = Discover();
    std::vector<DeviceReport> reports;
    reports.reserve(functions.size());
    for (const auto& [address, function] : functions) {
      reports.push_back(Report(address, function));
    }
    return reports;
  }

 private:
  // PCI functions by address: those with a netdev, then the VFs their PFs list.
  std::map<std::string, Function> Discover() {
    std::map<std::string, Function> functions;
    const std::string class_dir = absl::StrCat(sysfs_, "/class/net");
    for (const std::string& name : ListDirectory(class_dir)) {
      const std::string link = absl::StrCat(class_dir, "/", name, "/device");
      std::error_code ec;
      if (!fs::is_symlink(link, ec)) continue;  // virtual: lo, bridge, veth, bond, tunnel
      fs::path dir = fs::canonical(link, ec);
      if (ec) {
        attributes_.Warn(link,
                         absl::StrCat(name, ": unresolvable device link, skipped: ", ec.message()));
        continue;
      }
      // virtio-net: device -> .../0000:00:03.0/virtio0, the PCI function is the parent.
      if (!IsPciAddress(dir.filename().string()) &&
          IsPciAddress(dir.parent_path().filename().string())) {
        dir = dir.parent_path();
      }
      if (!IsPciAddress(dir.filename().string())) {
        attributes_.Warn(link,
                         absl::StrCat(name, ": not a PCI device (", dir.string(), "), skipped"));
        continue;
      }
      Function& function = functions[dir.filename().string()];
      function.dir = dir;
      function.netdevs.push_back(name);
    }
    // Network functions a userspace driver holds (DPDK through vfio-pci, igb_uio or
    // uio_pci_generic) have no netdev: the PCI bus lists them, by class.
    const std::string bus_dir = absl::StrCat(sysfs_, "/bus/pci/devices");
    for (const std::string& address : ListDirectory(bus_dir)) {
      if (functions.contains(address) || !IsNetworkClass(bus_dir, address)) continue;
      const std::string dir = absl::StrCat(bus_dir, "/", address);
      const std::optional<std::string> driver = SymlinkBasename(absl::StrCat(dir, "/driver"));
      if (!driver || !kUserspaceDrivers.contains(*driver)) continue;
      std::error_code ec;
      const fs::path real = fs::canonical(dir, ec);
      if (ec) continue;
      functions[address].dir = real;
    }
    // VFs of the PFs found above, with or without a netdev (vfio-pci, DPDK).
    std::vector<fs::path> pf_dirs;
    for (const auto& [address, function] : functions) pf_dirs.push_back(function.dir);
    for (const fs::path& pf_dir : pf_dirs) {
      for (const std::string& entry : ListDirectory(pf_dir.string())) {
        if (!absl::StartsWith(entry, "virtfn")) continue;
        std::error_code ec;
        const fs::path vf_dir = fs::canonical(pf_dir / entry, ec);
        if (ec || !IsPciAddress(vf_dir.filename().string())) {
          attributes_.Warn(
              (pf_dir / entry).string(),
              absl::StrCat((pf_dir / entry).string(), ": unresolvable VF link, skipped"));
          continue;
        }
        Function& function = functions[vf_dir.filename().string()];
        function.dir = vf_dir;
      }
    }
    return functions;
  }

  // <pci>/class "0x02xxxx": a network controller. A function's class never changes, so it is
  // read once per address rather than on every pass over every PCI device.
  bool IsNetworkClass(const std::string& bus_dir, const std::string& address) {
    auto known = network_class_.find(address);
    if (known != network_class_.end()) return known->second;
    const std::optional<std::string> pci_class =
        ReadTrimmed(absl::StrCat(bus_dir, "/", address, "/class"));
    if (!pci_class) return false;  // unreadable now: asked again next pass
    const bool network = absl::StartsWith(*pci_class, "0x02");
    network_class_[address] = network;
    return network;
  }

  DeviceReport Report(const std::string& address, const Function& function) {
    const std::string dir = function.dir.string();
    DeviceReport report;
    DeviceInfo& info = report.info;
    info.id = address;
    info.pci_address = address;
    info.aliases = function.netdevs;
    // <pci>/vendor, <pci>/device: "0x15b3", "0x101e".
    info.vendor = VendorName(ReadTrimmed(absl::StrCat(dir, "/vendor")).value_or(""));
    info.model = ReadTrimmed(absl::StrCat(dir, "/device")).value_or("");
    // <pci>/numa_node: -1 when the platform gives no affinity.
    if (auto numa = attributes_.ReadNumber(absl::StrCat(dir, "/numa_node")); numa && *numa >= 0) {
      info.numa_node = static_cast<int64_t>(*numa);
    }
    // <pci>/driver -> .../drivers/mlx5_core | ice | vfio-pci
    const std::string driver = SymlinkBasename(absl::StrCat(dir, "/driver")).value_or("");
    // A VF has <pci>/physfn -> its PF; a PF has <pci>/virtfnN and sriov_totalvfs.
    const std::optional<std::string> physfn = SymlinkBasename(absl::StrCat(dir, "/physfn"));
    const std::optional<double> total_vfs =
        attributes_.ReadNumber(absl::StrCat(dir, "/sriov_totalvfs"));
    const bool is_pf = !physfn && total_vfs && *total_vfs > 0;

    // Only VFs are advertised when devscope is configured to advertise NICs: handing a PF to a
    // pod would take the host's link (and every VF) with it.
    info.advertise = !advertise_resource_.empty() && physfn.has_value();
    info.resource = info.advertise ? advertise_resource_ : "";

    // A function bound to vfio-pci is used through its IOMMU group's node (the host's
    // /dev/vfio/N; the health model checks that it exists).
    if (driver == "vfio-pci") {
      if (auto group = SymlinkBasename(absl::StrCat(dir, "/iommu_group"))) {
        for (const std::string& node : {*group, std::string("vfio")}) {
          AllocateSpec::DeviceNode device_node;
          device_node.host_path = absl::StrCat("/dev/vfio/", node);
          device_node.container_path = device_node.host_path;
          device_node.permissions = "rw";
          info.allocate.device_nodes.push_back(std::move(device_node));
        }
      }
    }

    if (physfn || is_pf) {
      Sample sriov;
      sriov.name = "devscope_device_sriov_info";
      sriov.help = "SR-IOV role of a NIC PCI function and the PF it belongs to.";
      sriov.labels = {{"role", physfn ? "vf" : "pf"},
                      {"physical_function", physfn.value_or(address)}};
      sriov.value = 1;
      report.samples.push_back(std::move(sriov));
    }
    if (is_pf) {
      // <pci>/sriov_numvfs: VFs currently enabled.
      if (auto num_vfs = attributes_.ReadNumber(absl::StrCat(dir, "/sriov_numvfs"))) {
        Sample sample;
        sample.name = "devscope_device_sriov_vfs";
        sample.help = "SR-IOV virtual functions enabled on this physical function.";
        sample.value = *num_vfs;
        report.samples.push_back(std::move(sample));
      }
    }
    for (const std::string& netdev : function.netdevs) AddNetdev(netdev, report);
    return report;
  }

  void AddNetdev(const std::string& netdev, DeviceReport& report) {
    const std::string dir = absl::StrCat(sysfs_, "/class/net/", netdev);
    auto add = [&](const char* name, Sample::Kind kind, double value, const char* kind_label,
                   const char* help) {
      Sample sample;
      sample.name = name;
      sample.kind = kind;
      sample.value = value;
      if (help != nullptr) sample.help = help;
      if (kind_label != nullptr) sample.labels.emplace_back("kind", kind_label);
      sample.labels.emplace_back("interface", netdev);
      report.samples.push_back(std::move(sample));
    };
    // operstate: RFC 2863 state. carrier reads 0/1, and fails with EINVAL while the interface is
    // administratively down, hence ReadTrimmed (no warning for an expected failure).
    const std::string operstate = ReadTrimmed(absl::StrCat(dir, "/operstate")).value_or("");
    std::optional<double> link_up;
    if (operstate == "up") {
      link_up = 1;
    } else if (operstate == "down" || operstate == "lowerlayerdown" || operstate == "notpresent") {
      link_up = 0;
      if (report.health.healthy) {
        report.health.healthy = false;
        report.health.reason = "link down";
      }
    } else if (auto carrier = ReadTrimmed(absl::StrCat(dir, "/carrier"))) {
      // "unknown" (drivers that do not report operstate): the carrier says.
      if (*carrier == "1") link_up = 1;
      if (*carrier == "0") link_up = 0;
    }
    if (link_up) add("devscope_device_link_up", Sample::Kind::kGauge, *link_up, nullptr, nullptr);
    // speed: Mb/s; -1 or unreadable (link down) is unknown.
    if (auto speed = ReadTrimmed(absl::StrCat(dir, "/speed"))) {
      int64_t mbps = 0;
      if (absl::SimpleAtoi(*speed, &mbps) && mbps > 0) {
        add("devscope_device_link_speed_bytes_per_second", Sample::Kind::kGauge,
            static_cast<double>(mbps) * 1e6 / 8, nullptr, "Negotiated link speed.");
      }
    }
    for (const StatCounter& counter : kStatCounters) {
      if (auto value = attributes_.ReadNumber(absl::StrCat(dir, "/statistics/", counter.file))) {
        add(counter.metric, Sample::Kind::kCounter, *value, counter.kind, nullptr);
      }
    }
  }

  const std::string sysfs_;
  const std::string advertise_resource_;
  AttributeReader attributes_{"netdev"};
  std::map<std::string, bool> network_class_;  // PCI address -> class 0x02 (the pass's thread)
};

}  // namespace

void DeclareOptions(OptionDeclarer& d, NetdevOptions& o) {
  DeclareAdvertiseOption(
      d, o.advertise_resource,
      "NICs (only SR-IOV virtual functions: a PF takes the host's link with it)");
}

absl::StatusOr<std::unique_ptr<Collector>> NewNetdevCollector(const NetdevOptions& options,
                                                              const NodeRoots& roots) {
  return KeepIfItFindsDevices(std::make_unique<NetdevCollector>(options, roots),
                              absl::StrCat("PCI network device under ", roots.sysfs,
                                           "/class/net or held by a userspace driver"));
}

}  // namespace devscope
