// The demo's network devices: a netdev tree under the demo's own sysfs root, as the kernel lays
// it out (a physical function with two SR-IOV virtual functions, each a PCI function with a
// netdev), whose counters move every tick and whose held VF's link drops now and then.
#ifndef DEVSCOPE_DEMO_SIMULATED_NICS_H_
#define DEVSCOPE_DEMO_SIMULATED_NICS_H_

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace devscope {

// The resource devscope's plugin advertises the VFs under in the demo.
inline constexpr char kDemoVfResource[] = "example.com/sriov-vf";

class SimulatedNics {
 public:
  // Lays the tree out under `sysfs` (class/net, devices/pci0000:5e/...).
  explicit SimulatedNics(std::filesystem::path sysfs);

  // Moves the counters by one second of traffic at `t` seconds; each VF's link is down for 20 s
  // of every 90. Returns true when a link changed.
  bool Tick(double t);

 private:
  struct Nic {
    std::string address;  // PCI address, the device ID
    std::string netdev;
    double bytes_per_second;
    uint64_t rx_bytes = 0, tx_bytes = 0, rx_packets = 0, tx_packets = 0;
    bool link_up = true;
  };
  void WriteCounters(const Nic& nic) const;
  void WriteLink(const Nic& nic) const;

  const std::filesystem::path sysfs_;
  std::vector<Nic> nics_;
};

}  // namespace devscope

#endif  // DEVSCOPE_DEMO_SIMULATED_NICS_H_
