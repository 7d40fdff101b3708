// The fleet on one machine (docs/scale.md): N devscope instances (default 50) on loopback, all
// polling one kubelet stand-in, each with a devicedir of its own (16 to 64 devices, overlapping
// ID ranges so that some are held by the stand-in's pods and some are free), scraped every 15 s by
// one real Prometheus (Debian's prometheus package). After a warm-up it measures, over a window
// (default 5 minutes): Prometheus' CPU (from /proc) and resident memory, the samples it appends
// per second and per target, its head series, the scrape durations, and the fleet's own CPU and
// memory. Optional arguments: INSTANCES MINUTES [DEVSCOPE FLAG...] (flags added to every
// instance, e.g. --no-metrics.holder-labels, to measure a knob).
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bench/peers.h"
#include "demo/standin_pod_resources.h"
#include "test/integration/devscope_process.h"

namespace devscope {
namespace {

constexpr char kResource[] = "example.com/dev";
constexpr int kPods = 100, kContainers = 4;  // one device each: dev-0 .. dev-399 held

// Devices of instance k: 16, 32, 48 or 64 of them, IDs from dev-(8k) on.
int DeviceCount(int k) { return 16 * (1 + k % 4); }

void WriteDevicedir(const std::string& path, int k) {
  for (int j = 0; j < DeviceCount(k); ++j) {
    const int id = 8 * k + j;
    const std::string dir = absl::StrCat(path, "/dev-", id);
    std::filesystem::create_directories(dir);
    std::ofstream(dir + "/resource") << kResource << "\n";
    std::ofstream(dir + "/numa_node") << id % 4 << "\n";
    std::ofstream(dir + "/info") << "vendor=Example\nmodel=W100\n";
    std::ofstream(dir + "/metrics.prom")
        << "devscope_device_utilization_ratio 0.5\ndevscope_device_temperature_celsius 50\n"
           "devscope_device_power_watts 200\ndevscope_device_memory_used_bytes 1e9\n"
           "devscope_device_memory_total_bytes 1.6e10\n"
           "# TYPE devscope_device_energy_joules_total counter\n"
           "devscope_device_energy_joules_total 1e6\n";
  }
}

std::vector<v1::PodResources> Pods() {
  std::vector<v1::PodResources> pods;
  int next = 0;
  for (int p = 0; p < kPods; ++p) {
    std::vector<v1::ContainerResources> containers;
    for (int c = 0; c < kContainers; ++c, ++next) {
      containers.push_back(
          MakeContainer(absl::StrCat("c", c),
                        {MakeDevices(kResource, {absl::StrCat("dev-", next)}, {next % 4})}));
    }
    pods.push_back(MakePod("bulk", absl::StrCat("pod-", p), std::move(containers)));
  }
  return pods;
}

// The value of a one-element instant vector from Prometheus' HTTP API; -1 when none.
double Query(int port, const std::string& promql) {
  std::string encoded;
  for (unsigned char c : promql) {
    if (std::isalnum(c) || c == '_' || c == '.' || c == '-') {
      encoded.push_back(static_cast<char>(c));
    } else {
      absl::StrAppend(&encoded, "%", absl::Hex(c, absl::kZeroPad2));
    }
  }
  const HttpResponse r = HttpGetLocal(port, "/api/v1/query?query=" + encoded);
  // ..."value":[1700000000.123,"42.5"]...
  const size_t value = r.body.find("\"value\":[");
  if (r.status != 200 || value == std::string::npos) return -1;
  const size_t open = r.body.find('"', r.body.find(',', value) + 1);
  const size_t close = r.body.find('"', open + 1);
  double v = -1;
  if (open == std::string::npos || close == std::string::npos ||
      !absl::SimpleAtod(r.body.substr(open + 1, close - open - 1), &v)) {
    return -1;
  }
  return v;
}

int Main(int instances, int minutes, const std::vector<std::string>& extra_flags) {
  const std::string dir = MakeTempDir();
  auto standin = PodResourcesStandin::Start(dir + "/kubelet.sock");
  if (!standin.ok()) {
    std::cerr << standin.status() << "\n";
    return 1;
  }
  (*standin)->SetRateLimit(0, 0);  // the kubelet's is 100 per second: fine for one node, not 50
  (*standin)->SetPods(Pods());

  std::vector<std::unique_ptr<DevscopeProcess>> fleet;
  std::string targets;
  for (int k = 0; k < instances; ++k) {
    const std::string devices = absl::StrCat(dir, "/devices-", k);
    WriteDevicedir(devices, k);
    std::vector<std::string> args = {"--kubelet.pod-resources-socket=" + dir + "/kubelet.sock",
                                     "--web.listen-address=127.0.0.1:0",
                                     "--no-device-plugin",
                                     "--collector.devicedir.path=" + devices,
                                     "--no-collector.nvml",
                                     "--no-collector.drm",
                                     "--no-collector.netdev",
                                     "--path.devfs=" + dir};
    args.insert(args.end(), extra_flags.begin(), extra_flags.end());
    auto process = DevscopeProcess::Start(args);
    if (!process.ok()) {
      std::cerr << "instance " << k << ": " << process.status() << "\n";
      return 1;
    }
    absl::StrAppend(&targets, targets.empty() ? "" : ", ", "'127.0.0.1:", (*process)->port(), "'");
    fleet.push_back(*std::move(process));
  }

  const int prometheus_port = FreeLocalPort();
  std::ofstream(dir + "/prometheus.yml")
      << "global:\n  scrape_interval: 15s\n  evaluation_interval: 15s\n"
      << "scrape_configs:\n  - job_name: devscope\n    static_configs:\n      - targets: ["
      << targets << "]\n";
  auto prometheus = ChildProcess::Start(
      {"/usr/bin/prometheus", "--config.file=" + dir + "/prometheus.yml",
       "--storage.tsdb.path=" + dir + "/tsdb", "--storage.tsdb.retention.time=2h",
       absl::StrCat("--web.listen-address=127.0.0.1:", prometheus_port)},
      dir + "/prometheus.log");
  if (!prometheus.ok() || !WaitForHttp(prometheus_port, "/-/ready")) {
    std::cerr << "prometheus did not start; see " << dir << "/prometheus.log\n";
    return 1;
  }
  // Warm-up: every target scraped a few times, the head's series created.
  absl::SleepFor(absl::Seconds(60));

  const pid_t prometheus_pid = (*prometheus)->pid();
  const double prometheus_cpu_before = CpuSeconds(prometheus_pid);
  double fleet_cpu_before = 0;
  for (const auto& p : fleet) fleet_cpu_before += CpuSeconds(p->pid());
  const double appended_before =
      Query(prometheus_port, "prometheus_tsdb_head_samples_appended_total");
  const absl::Time start = absl::Now();
  absl::SleepFor(absl::Minutes(minutes));
  const double window = absl::ToDoubleSeconds(absl::Now() - start);
  const double appended =
      Query(prometheus_port, "prometheus_tsdb_head_samples_appended_total") - appended_before;
  const double prometheus_cpu = (CpuSeconds(prometheus_pid) - prometheus_cpu_before) / window;
  double fleet_cpu = -fleet_cpu_before, fleet_rss = 0;
  for (const auto& p : fleet) {
    fleet_cpu += CpuSeconds(p->pid());
    fleet_rss += MemoryMiB(p->pid(), "VmRSS");
  }
  fleet_cpu /= window;

  const double series = Query(prometheus_port, "prometheus_tsdb_head_series");
  const double per_target = Query(prometheus_port, "avg(scrape_samples_scraped)");
  const double scrape_ms = 1000 * Query(prometheus_port, "avg(scrape_duration_seconds)");
  const double scrape_max_ms = 1000 * Query(prometheus_port, "max(scrape_duration_seconds)");
  const double heap = Query(prometheus_port, "go_memstats_heap_inuse_bytes") / (1 << 20);
  const double up = Query(prometheus_port, "sum(up)");
  std::printf(
      "fleet_probe: %d devscope instances, one stand-in (%d pods x %d containers), "
      "Prometheus 2.42 scraping every 15 s; %d min window after 1 min warm-up\n",
      instances, kPods, kContainers, minutes);
  if (!extra_flags.empty()) {
    std::string flags;
    for (const std::string& f : extra_flags) absl::StrAppend(&flags, " ", f);
    std::printf("  devscope flags added:%s\n", flags.c_str());
  }
  std::printf("  targets up                         %.0f of %d\n", up, instances);
  std::printf("  series per target (avg scraped)    %.0f\n", per_target);
  std::printf("  Prometheus head series             %.0f\n", series);
  std::printf("  samples appended per second        %.1f (%.2f per target)\n", appended / window,
              appended / window / instances);
  std::printf("  Prometheus CPU                     %.2f%% of a core (%.4f%% per target)\n",
              100 * prometheus_cpu, 100 * prometheus_cpu / instances);
  std::printf("  Prometheus resident memory         %.1f MiB (Go heap in use %.1f MiB)\n",
              MemoryMiB(prometheus_pid, "VmRSS"), heap);
  std::printf("  scrape duration                    %.2f ms average, %.2f ms max\n", scrape_ms,
              scrape_max_ms);
  std::printf("  devscope fleet CPU                 %.2f%% of a core (%.3f%% per instance)\n",
              100 * fleet_cpu, 100 * fleet_cpu / instances);
  std::printf("  devscope fleet resident memory     %.0f MiB (%.1f MiB per instance)\n", fleet_rss,
              fleet_rss / instances);
  prometheus->reset();
  for (auto& p : fleet) p->Stop();
  (*standin)->Stop();
  RemoveTree(dir);
  return 0;
}

}  // namespace
}  // namespace devscope

int main(int argc, char** argv) {
  int instances = 50, minutes = 5;
  if ((argc > 1 && !absl::SimpleAtoi(argv[1], &instances)) ||
      (argc > 2 && !absl::SimpleAtoi(argv[2], &minutes)) || instances < 1 || minutes < 1) {
    std::fprintf(stderr, "usage: fleet_probe [INSTANCES [MINUTES [DEVSCOPE FLAG...]]]\n");
    return 2;
  }
  std::vector<std::string> extra;
  for (int i = 3; i < argc; ++i) extra.push_back(argv[i]);
  return devscope::Main(instances, minutes, extra);
}
