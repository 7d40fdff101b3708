// The fleet on one machine (docs/scale.md): N devscope instances (default 50) on loopback, all
// polling one kubelet stand-in, each with a devicedir of its own (16 to 64 devices, ID ranges
// that overlap the stand-in's pods so that some devices are held, some shared by four containers,
// some free), scraped every 15 s by one real Prometheus (Debian's prometheus package) that also
// evaluates dashboards/recording.rules.yaml. After a one-minute warm-up it measures, over a window
// (default 2 minutes): Prometheus' CPU (from /proc) and resident memory, the samples it appends per
// second and per target, its head series, the scrape durations, the fleet's own CPU and memory, and
// the series one instance serves at each device count. Arguments: [INSTANCES [MINUTES [FLAG...]]]
// (flags added to every instance, e.g. --no-metrics.holder-labels, to measure a knob).
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "bench/peers.h"
#include "demo/standin_pod_resources.h"
#include "test/integration/devscope_process.h"

namespace devscope {
namespace {

constexpr char kResource[] = "example.com/dev";
// Pods 0..79: four containers holding a device each (dev-0 .. dev-319). Pods 80..99: four
// containers sharing one time-sliced device (dev-320 .. dev-339), four holders each.
constexpr int kPods = 100, kContainers = 4, kExclusivePods = 80;

// Devices of instance k: 16, 32, 48 or 64 of them, IDs from dev-(8k) on.
int DeviceCount(int k) { return 16 * (1 + k % 4); }

void WriteDevicedir(const std::string& path, int k) {
  std::filesystem::create_directories(path);
  std::filesystem::permissions(path, std::filesystem::perms(0755));
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
  for (int p = 0; p < kPods; ++p) {
    std::vector<v1::ContainerResources> containers;
    for (int c = 0; c < kContainers; ++c) {
      const int id = p < kExclusivePods ? kContainers * p + c
                                        : kContainers * kExclusivePods + (p - kExclusivePods);
      containers.push_back(MakeContainer(
          absl::StrCat("c", c), {MakeDevices(kResource, {absl::StrCat("dev-", id)}, {id % 4})}));
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

std::string LoadAverage() {
  std::string line;
  std::getline(std::ifstream("/proc/loadavg"), line);
  return line;
}

// A sample without labels from Prometheus' own /metrics (it does not scrape itself here: its
// samples would count as the fleet's); -1 when absent.
double OwnMetric(int port, absl::string_view name) {
  const HttpResponse r = HttpGetLocal(port, "/metrics");
  for (absl::string_view line : absl::StrSplit(r.body, '\n')) {
    if (!absl::ConsumePrefix(&line, name) || !absl::ConsumePrefix(&line, " ")) continue;
    double v = -1;
    return absl::SimpleAtod(line, &v) ? v : -1;
  }
  return -1;
}

// Samples Prometheus appended so far (2.42 counts floats and histograms apart).
double Appended(int port) {
  const double floats =
      OwnMetric(port, "prometheus_tsdb_head_samples_appended_total{type=\"float\"}");
  return floats >= 0 ? floats : OwnMetric(port, "prometheus_tsdb_head_samples_appended_total");
}

struct Fleet {
  std::string dir;
  std::unique_ptr<PodResourcesStandin> standin;
  std::vector<std::unique_ptr<DevscopeProcess>> instances;
};

absl::StatusOr<Fleet> StartFleet(int count, const std::vector<std::string>& extra_flags) {
  Fleet fleet;
  fleet.dir = MakeTempDir();
  auto standin = PodResourcesStandin::Start(fleet.dir + "/kubelet.sock");
  if (!standin.ok()) return standin.status();
  fleet.standin = *std::move(standin);
  fleet.standin->SetRateLimit(0, 0);  // the kubelet's is 100 per second: fine for one node, not 50
  fleet.standin->SetPods(Pods());
  for (int k = 0; k < count; ++k) {
    const std::string devices = absl::StrCat(fleet.dir, "/devices-", k);
    WriteDevicedir(devices, k);
    std::vector<std::string> args = {
        "--kubelet.pod-resources-socket=" + fleet.dir + "/kubelet.sock",
        "--web.listen-address=127.0.0.1:0",
        "--no-device-plugin",
        "--collector.devicedir.path=" + devices,
        DevicedirOwnerFlag(),
        "--no-collector.nvml",
        "--no-collector.drm",
        "--no-collector.netdev",
        "--path.devfs=" + fleet.dir};
    args.insert(args.end(), extra_flags.begin(), extra_flags.end());
    auto process = DevscopeProcess::Start(args);
    if (!process.ok()) return process.status();
    fleet.instances.push_back(*std::move(process));
  }
  return fleet;
}

// Prometheus scraping every instance every 15 s and evaluating the recording rules.
absl::StatusOr<std::unique_ptr<ChildProcess>> StartPrometheus(const Fleet& fleet,
                                                              const std::string& rules, int port) {
  std::vector<std::string> targets;
  for (const auto& p : fleet.instances)
    targets.push_back(absl::StrCat("'127.0.0.1:", p->port(), "'"));
  std::ofstream(fleet.dir + "/prometheus.yml")
      << "global:\n  scrape_interval: 15s\n  evaluation_interval: 15s\n"
      << "rule_files: ['" << rules << "']\n"
      << "scrape_configs:\n  - job_name: devscope\n    static_configs:\n      - targets: ["
      << absl::StrJoin(targets, ", ") << "]\n";
  auto prometheus = ChildProcess::Start(
      {"/usr/bin/prometheus", "--config.file=" + fleet.dir + "/prometheus.yml",
       "--storage.tsdb.path=" + fleet.dir + "/tsdb", "--storage.tsdb.retention.time=2h",
       absl::StrCat("--web.listen-address=127.0.0.1:", port)},
      fleet.dir + "/prometheus.log");
  if (!prometheus.ok()) return prometheus.status();
  if (!WaitForHttp(port, "/-/ready")) {
    return absl::UnavailableError("prometheus did not start; see " + fleet.dir + "/prometheus.log");
  }
  return prometheus;
}

struct Figures {
  double window_s = 0, up = 0, per_target = 0, head_series = 0, recorded = 0;
  double appended_per_s = 0, prometheus_cpu = 0, prometheus_rss = 0, heap = 0;
  double scrape_ms = 0, scrape_max_ms = 0, fleet_cpu = 0, fleet_rss = 0, standin_cpu = 0;
};

Figures Measure(const Fleet& fleet, pid_t prometheus, int port, int minutes) {
  Figures f;
  const double prometheus_before = CpuSeconds(prometheus);
  const double own_before = CpuSeconds(getpid());
  double fleet_before = 0;
  for (const auto& p : fleet.instances) fleet_before += CpuSeconds(p->pid());
  const double appended_before = Appended(port);
  const absl::Time start = absl::Now();
  absl::SleepFor(absl::Minutes(minutes));
  f.window_s = absl::ToDoubleSeconds(absl::Now() - start);
  f.appended_per_s = (Appended(port) - appended_before) / f.window_s;
  f.prometheus_cpu = (CpuSeconds(prometheus) - prometheus_before) / f.window_s;
  f.standin_cpu = (CpuSeconds(getpid()) - own_before) / f.window_s;
  f.fleet_cpu = -fleet_before;
  for (const auto& p : fleet.instances) {
    f.fleet_cpu += CpuSeconds(p->pid());
    f.fleet_rss += MemoryMiB(p->pid(), "VmRSS");
  }
  f.fleet_cpu /= f.window_s;
  f.prometheus_rss = MemoryMiB(prometheus, "VmRSS");
  f.heap = OwnMetric(port, "go_memstats_heap_inuse_bytes") / (1 << 20);
  f.head_series = OwnMetric(port, "prometheus_tsdb_head_series");
  f.recorded = Query(port, "count({__name__=~\".+:.+:.+\"})");
  f.per_target = Query(port, "avg(scrape_samples_scraped)");
  f.scrape_ms = 1000 * Query(port, "avg(scrape_duration_seconds)");
  f.scrape_max_ms = 1000 * Query(port, "max(scrape_duration_seconds)");
  f.up = Query(port, "sum(up)");
  return f;
}

// Samples and bytes one instance of each device count serves (instances 0..3: 16..64 devices,
// each held by one container), and instance 38 (48 devices, 20 of them shared by four).
void PrintSeriesBySize(const Fleet& fleet) {
  std::printf("  series one instance serves (all %d pods x %d containers listed):\n", kPods,
              kContainers);
  for (size_t k : {0, 1, 2, 3, 38}) {
    if (k >= fleet.instances.size()) continue;
    const HttpResponse r = HttpGetLocal(fleet.instances[k]->port(), "/metrics");
    size_t samples = 0, device_samples = 0;
    for (absl::string_view line : absl::StrSplit(r.body, '\n')) {
      if (line.empty() || line[0] == '#') continue;
      ++samples;
      if (absl::StartsWith(line, "devscope_device_")) ++device_samples;
    }
    std::printf(
        "    instance %2zu, %2d devices%s: %zu samples (%zu devscope_device_*), %zu bytes\n", k,
        DeviceCount(static_cast<int>(k)), k == 38 ? " (20 shared by 4)" : "", samples,
        device_samples, r.body.size());
  }
}

void Print(const Figures& f, int instances, int minutes, const std::vector<std::string>& flags) {
  std::printf(
      "fleet_probe: %d devscope instances, one stand-in (%d pods x %d containers), "
      "Prometheus scraping every 15 s; %d min window after 1 min warm-up; flags added: %s\n",
      instances, kPods, kContainers, minutes,
      flags.empty() ? "none" : absl::StrJoin(flags, " ").c_str());
  std::printf("  targets up                         %.0f of %d\n", f.up, instances);
  std::printf("  samples per target (avg scraped)   %.0f\n", f.per_target);
  std::printf("  Prometheus head series             %.0f (%.0f recorded by the rules)\n",
              f.head_series, f.recorded);
  std::printf("  samples appended per second        %.1f (%.2f per target)\n", f.appended_per_s,
              f.appended_per_s / instances);
  std::printf("  Prometheus CPU                     %.2f%% of a core (%.4f%% per target)\n",
              100 * f.prometheus_cpu, 100 * f.prometheus_cpu / instances);
  std::printf("  Prometheus resident memory         %.1f MiB (Go heap in use %.1f MiB)\n",
              f.prometheus_rss, f.heap);
  std::printf("  scrape duration                    %.2f ms average, %.2f ms max\n", f.scrape_ms,
              f.scrape_max_ms);
  std::printf("  devscope fleet CPU                 %.2f%% of a core (%.3f%% per instance)\n",
              100 * f.fleet_cpu, 100 * f.fleet_cpu / instances);
  std::printf("  devscope fleet resident memory     %.0f MiB (%.1f MiB per instance)\n",
              f.fleet_rss, f.fleet_rss / instances);
  std::printf("  kubelet stand-in (this process)    %.2f%% of a core for %d Lists per second\n",
              100 * f.standin_cpu, instances);
  std::printf("  machine: %ld cores, load average at the end: %s\n", sysconf(_SC_NPROCESSORS_ONLN),
              LoadAverage().c_str());
}

int Main(int instances, int minutes, const std::vector<std::string>& extra_flags) {
  if (!std::filesystem::exists("dashboards/recording.rules.yaml")) {
    std::cerr << "fleet_probe: run it from the repository's root (bench/fleet)\n";
    return 2;
  }
  absl::StatusOr<Fleet> fleet = StartFleet(instances, extra_flags);
  if (!fleet.ok()) {
    std::cerr << "fleet_probe: " << fleet.status() << "\n";
    return 1;
  }
  // Run from the repository's root (bench/fleet does): the rules are
  // dashboards/recording.rules.yaml.
  const std::string rules = std::filesystem::absolute("dashboards/recording.rules.yaml");
  const int port = FreeLocalPort();
  auto prometheus = StartPrometheus(*fleet, rules, port);
  if (!prometheus.ok()) {
    std::cerr << "fleet_probe: " << prometheus.status() << "\n";
    return 1;
  }
  absl::SleepFor(absl::Seconds(60));  // every target scraped four times, the head's series made
  const Figures figures = Measure(*fleet, (*prometheus)->pid(), port, minutes);
  Print(figures, instances, minutes, extra_flags);
  PrintSeriesBySize(*fleet);
  prometheus->reset();
  for (auto& p : fleet->instances) p->Stop();
  fleet->standin->Stop();
  RemoveTree(fleet->dir);
  return 0;
}

}  // namespace
}  // namespace devscope

int main(int argc, char** argv) {
  int instances = 50, minutes = 2;
  if ((argc > 1 && !absl::SimpleAtoi(argv[1], &instances)) ||
      (argc > 2 && !absl::SimpleAtoi(argv[2], &minutes)) || instances < 1 || minutes < 1) {
    std::fprintf(stderr, "usage: fleet_probe [INSTANCES [MINUTES [DEVSCOPE FLAG...]]]\n");
    return 2;
  }
  std::vector<std::string> extra;
  for (int i = 3; i < argc; ++i) extra.push_back(argv[i]);
  return devscope::Main(instances, minutes, extra);
}
