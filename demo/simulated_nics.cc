#include "demo/simulated_nics.h"

#include <cmath>
#include <fstream>
#include <system_error>

#include "absl/strings/str_cat.h"

namespace devscope {
namespace {

namespace fs = std::filesystem;

constexpr char kPf[] = "0000:5e:00.0";
constexpr char kVfs[2][13] = {"0000:5e:00.2", "0000:5e:00.3"};

void Write(const fs::path& path, const std::string& text) {
  const fs::path temporary = path.string() + ".tmp";
  std::ofstream(temporary, std::ios::trunc) << text;
  std::error_code ec;
  fs::rename(temporary, path, ec);
}

void Link(const fs::path& target, const fs::path& link) {
  std::error_code ec;
  fs::create_directory_symlink(target, link, ec);
}

// One PCI function of an Intel E810 (vendor 0x8086) on NUMA node 1, bound to `driver`.
void WriteFunction(const fs::path& sysfs, const fs::path& dir, const std::string& device,
                   const std::string& driver) {
  fs::create_directories(dir);
  Write(dir / "vendor", "0x8086\n");
  Write(dir / "device", device + "\n");
  Write(dir / "class", "0x020000\n");
  Write(dir / "numa_node", "1\n");
  const fs::path drivers = sysfs / "bus" / "pci" / "drivers" / driver;
  fs::create_directories(drivers);
  Link(drivers, dir / "driver");
}

}  // namespace

SimulatedNics::SimulatedNics(fs::path sysfs) : sysfs_(std::move(sysfs)) {
  // <sysfs>/devices/pci0000:5e/<function>, <sysfs>/class/net/<netdev>/device -> the function.
  const fs::path bus = sysfs_ / "devices" / "pci0000:5e";
  fs::create_directories(sysfs_ / "class" / "net");
  nics_.push_back({kPf, "ens1f0", 4e8});
  nics_.push_back({kVfs[0], "ens1f0v0", 1.5e8});
  nics_.push_back({kVfs[1], "ens1f0v1", 0.5e8});
  for (const Nic& nic : nics_) {
    const bool pf = nic.address == kPf;
    const fs::path function = bus / nic.address;
    WriteFunction(sysfs_, function, pf ? "0x1593" : "0x1889", pf ? "ice" : "iavf");
    const fs::path net = sysfs_ / "class" / "net" / nic.netdev;
    fs::create_directories(net / "statistics");
    Link(function, net / "device");
    Write(net / "speed", pf ? "25000\n" : "10000\n");
    WriteLink(nic);
    WriteCounters(nic);
  }
  Write(bus / kPf / "sriov_totalvfs", "8\n");
  Write(bus / kPf / "sriov_numvfs", "2\n");
  for (int i = 0; i < 2; ++i) {
    Link(bus / kVfs[i], bus / kPf / absl::StrCat("virtfn", i));
    Link(bus / kPf, bus / kVfs[i] / "physfn");
  }
}

bool SimulatedNics::Tick(double t) {
  bool changed = false;
  for (size_t i = 0; i < nics_.size(); ++i) {
    Nic& nic = nics_[i];
    // Each VF loses its link for 20 s of every 90, the two half a period apart, so the one the
    // demo's pod holds drops whichever it is.
    const bool up = i == 0 || std::fmod(t + 45.0 * static_cast<double>(i - 1), 90.0) < 70.0;
    if (up != nic.link_up) {
      nic.link_up = up;
      WriteLink(nic);
      changed = true;
    }
    if (!nic.link_up) continue;
    const double rate = nic.bytes_per_second * (0.6 + 0.4 * std::sin(t / 15.0 + i));
    nic.rx_bytes += static_cast<uint64_t>(rate);
    nic.tx_bytes += static_cast<uint64_t>(rate * 0.7);
    nic.rx_packets += static_cast<uint64_t>(rate / 1200);
    nic.tx_packets += static_cast<uint64_t>(rate * 0.7 / 1200);
    WriteCounters(nic);
  }
  return changed;
}

void SimulatedNics::WriteCounters(const Nic& nic) const {
  const fs::path statistics = sysfs_ / "class" / "net" / nic.netdev / "statistics";
  Write(statistics / "rx_bytes", absl::StrCat(nic.rx_bytes, "\n"));
  Write(statistics / "tx_bytes", absl::StrCat(nic.tx_bytes, "\n"));
  Write(statistics / "rx_packets", absl::StrCat(nic.rx_packets, "\n"));
  Write(statistics / "tx_packets", absl::StrCat(nic.tx_packets, "\n"));
  Write(statistics / "rx_dropped", absl::StrCat(nic.rx_packets / 100000, "\n"));
  Write(statistics / "tx_dropped", "0\n");
  Write(statistics / "rx_errors", absl::StrCat(nic.rx_packets / 1000000, "\n"));
  Write(statistics / "tx_errors", "0\n");
}

void SimulatedNics::WriteLink(const Nic& nic) const {
  const fs::path net = sysfs_ / "class" / "net" / nic.netdev;
  Write(net / "operstate", nic.link_up ? "up\n" : "down\n");
  Write(net / "carrier", nic.link_up ? "1\n" : "0\n");
}

}  // namespace devscope
