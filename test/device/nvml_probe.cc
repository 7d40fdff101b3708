// nvml_probe: runs devscope's nvml collector once against the machine's real libnvidia-ml and
// prints what it saw (identity, allocate spec, health, every sample). For a machine with an
// NVIDIA GPU; test/device/run-nvml-check.sh builds and runs it.
//
// Usage: nvml_probe [--library PATH] [--sysfs DIR] [--devfs DIR] [--watch SECONDS]
// --watch keeps the collector (and its XID event thread) alive that long and collects again
// whenever its watch fd fires, then once more at the end. Exit status: 0 when at least one GPU
// was reported, 1 when the collector failed, 2 on bad usage.
#include <poll.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "collectors/collector.h"
#include "collectors/nvml.h"
#include "collectors/registry.h"

namespace {

void Print(const std::vector<devscope::DeviceReport>& reports) {
  std::printf("devices: %zu\n", reports.size());
  for (const devscope::DeviceReport& r : reports) {
    const devscope::DeviceInfo& i = r.info;
    std::printf("- id: %s\n  model: %s\n  vendor: %s\n  serial: %s\n  pci_address: %s\n",
                i.id.c_str(), i.model.c_str(), i.vendor.c_str(), i.serial.c_str(),
                i.pci_address.c_str());
    std::printf("  numa_node: %s\n", i.numa_node ? std::to_string(*i.numa_node).c_str() : "(none)");
    std::printf("  resource: %s advertise: %s\n", i.resource.c_str(),
                i.advertise ? "true" : "false");
    for (const std::string& alias : i.aliases) std::printf("  alias: %s\n", alias.c_str());
    for (const auto& node : i.allocate.device_nodes) {
      std::printf("  device_node: %s -> %s (%s)\n", node.host_path.c_str(),
                  node.container_path.c_str(), node.permissions.c_str());
    }
    std::printf("  healthy: %s%s%s\n", r.health.healthy ? "true" : "false",
                r.health.reason.empty() ? "" : " reason: ", r.health.reason.c_str());
    for (const devscope::Sample& s : r.samples) {
      std::string labels;
      for (const auto& [k, v] : s.labels) {
        labels += (labels.empty() ? "{" : ",") + k + "=\"" + v + "\"";
      }
      if (!labels.empty()) labels += "}";
      std::printf("  sample: %s%s %.6g%s\n", s.name.c_str(), labels.c_str(), s.value,
                  s.kind == devscope::Sample::Kind::kCounter ? " (counter)" : "");
    }
    // The processes using it (NVML's running process lists and utilisation samples).
    const auto print = [](const char* what, const auto& value) {
      if (value.has_value()) std::printf(" %s=%.6g", what, static_cast<double>(*value));
    };
    for (const devscope::DeviceProcess& p : r.processes) {
      std::printf("  process: pid=%u", p.pid);
      print("memory_used_bytes", p.memory_used_bytes);
      print("sm", p.sm_utilization_ratio);
      print("memory", p.memory_utilization_ratio);
      print("encoder", p.encoder_utilization_ratio);
      print("decoder", p.decoder_utilization_ratio);
      std::printf("\n");
    }
  }
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  devscope::NvmlOptions options;
  devscope::NodeRoots roots;
  int watch_seconds = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (i + 1 >= argc) {
      std::fprintf(stderr, "nvml_probe: %s needs a value\n", arg.c_str());
      return 2;
    }
    const std::string value = argv[++i];
    if (arg == "--library") {
      options.library = value;
    } else if (arg == "--sysfs") {
      roots.sysfs = value;
    } else if (arg == "--devfs") {
      roots.devfs = value;
    } else if (arg == "--watch" && absl::SimpleAtoi(value, &watch_seconds) && watch_seconds >= 0) {
    } else {
      std::fprintf(stderr, "nvml_probe: bad argument %s %s\n", arg.c_str(), value.c_str());
      return 2;
    }
  }

  const absl::Time start = absl::Now();
  auto collector = devscope::NewNvmlCollector(options, roots);
  if (!collector.ok()) {
    std::printf("NewNvmlCollector: %s\n", collector.status().ToString().c_str());
    return 1;
  }
  std::printf("collector started in %s, watch_fd=%d\n",
              absl::FormatDuration(absl::Now() - start).c_str(), (*collector)->watch_fd());
  const absl::Time collect_start = absl::Now();
  auto reports = (*collector)->Collect();
  if (!reports.ok()) {
    std::printf("Collect: %s\n", reports.status().ToString().c_str());
    return 1;
  }
  std::printf("first pass took %s\n", absl::FormatDuration(absl::Now() - collect_start).c_str());
  Print(*reports);

  const absl::Time deadline = absl::Now() + absl::Seconds(watch_seconds);
  while (watch_seconds > 0 && absl::Now() < deadline) {
    const int fd = (*collector)->watch_fd();
    const int left_ms = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
    if (fd < 0) {
      absl::SleepFor(absl::Milliseconds(left_ms));
      break;
    }
    pollfd pfd = {fd, POLLIN, 0};
    if (poll(&pfd, 1, left_ms) == 1) {
      (*collector)->DrainWatch();
      std::printf("watch fd fired: collecting\n");
      if (auto again = (*collector)->Collect(); again.ok()) Print(*again);
    }
  }
  if (watch_seconds > 0) {
    reports = (*collector)->Collect();
    if (!reports.ok()) {
      std::printf("Collect: %s\n", reports.status().ToString().c_str());
      return 1;
    }
    std::printf("final pass:\n");
    Print(*reports);
  }
  return reports->empty() ? 1 : 0;
}
