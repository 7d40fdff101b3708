// soak: the real binary under churn for a while (issue 12, item 7), its resident memory, open
// descriptors and threads sampled from /proc, failing on growth.
//
// Every second (devscope's default poll interval): a tenth of the 100 pods the kubelet stand-in
// lists are replaced by new ones (new names, so new series), two devices of the devicedir flip
// health (the device plugin streams it to the registration stand-in; the poller asks for the
// allocatable devices again), four devices get new telemetry, and /metrics (plain and gzip) and
// /healthz are scraped. Every --sample-every (30 s) the three figures are read.
//
// The verdict, per figure, on the samples after --warmup: the median of the last third against
// the median of the first third. Medians, because one sample taken while a render's buffers are
// held or a gRPC worker is briefly started says nothing; thirds, because a leak shows as a
// difference between the two ends of the run whatever happens in between. Growth above the
// tolerance fails: resident memory max(2 MiB, 5 %), descriptors 3, threads 2.
//
//   soak [--duration=10m] [--sample-every=30s] [--warmup=2m]
//
// Exit status 0: no growth and every scrape answered; 1: growth or a failed scrape; 2: usage.
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "demo/standin_pod_resources.h"
#include "demo/standin_registration.h"
#include "test/integration/devscope_process.h"

namespace devscope {
namespace {

constexpr int kDevices = 32;
constexpr int kPods = 100;
constexpr int kChurnPerTick = 10;
constexpr char kResource[] = "example.com/widget";

struct Options {
  absl::Duration duration = absl::Minutes(10);
  absl::Duration sample_every = absl::Seconds(30);
  absl::Duration warmup = absl::Minutes(2);
};

struct Sample {
  double minutes = 0;
  double rss_mib = 0;
  int fds = 0;
  int threads = 0;
};

// --NAME=DURATION arguments; false (after a message) on anything else.
bool ParseArgs(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const size_t eq = arg.find('=');
    absl::Duration* field = nullptr;
    const std::string name = arg.substr(0, eq);
    if (name == "--duration") field = &o.duration;
    if (name == "--sample-every") field = &o.sample_every;
    if (name == "--warmup") field = &o.warmup;
    if (field == nullptr || eq == std::string::npos ||
        !absl::ParseDuration(arg.substr(eq + 1), field) || *field < absl::ZeroDuration()) {
      std::cerr << "soak: bad argument " << arg
                << "\nusage: soak [--duration=10m] [--sample-every=30s] [--warmup=2m]\n";
      return false;
    }
  }
  return true;
}

void WriteAtomically(const std::string& path, const std::string& text) {
  const std::string temporary = path + ".tmp";
  std::ofstream(temporary) << text;
  std::filesystem::rename(temporary, path);
}

std::string DeviceId(int i) { return absl::StrCat("widget-", i); }

void WriteDevicedir(const std::string& dir, const std::string& devfs) {
  for (int i = 0; i < kDevices; ++i) {
    const std::string d = absl::StrCat(dir, "/", DeviceId(i));
    std::filesystem::create_directories(d);
    WriteAtomically(d + "/resource", absl::StrCat(kResource, "\n"));
    WriteAtomically(d + "/numa_node", absl::StrCat(i % 2, "\n"));
    WriteAtomically(d + "/health", "Healthy\n");
    WriteAtomically(d + "/allocate", absl::StrCat("device /dev/widget", i, "\n"));
    std::ofstream(absl::StrCat(devfs, "/widget", i)).put('\n');
  }
}

void WriteTelemetry(const std::string& dir, int device, int tick) {
  WriteAtomically(absl::StrCat(dir, "/", DeviceId(device), "/metrics.prom"),
                  absl::StrFormat("devscope_device_utilization_ratio %.2f\n"
                                  "devscope_device_power_watts %d\n"
                                  "# TYPE devscope_device_energy_joules_total counter\n"
                                  "devscope_device_energy_joules_total %d\n",
                                  (tick % 100) / 100.0, 100 + tick % 50, tick * 150));
}

// The pods of generation `tick`: pods 0..99, of which the ten of slot tick%10 are new ones.
std::vector<v1::PodResources> Pods(int tick, std::vector<std::string>& names) {
  if (names.empty()) {
    for (int i = 0; i < kPods; ++i) names.push_back(absl::StrCat("pod-", i, "-0"));
  }
  const int slot = tick % (kPods / kChurnPerTick);
  for (int k = 0; k < kChurnPerTick; ++k) {
    const int i = slot * kChurnPerTick + k;
    names[i] = absl::StrCat("pod-", i, "-", tick);
  }
  std::vector<v1::PodResources> pods;
  for (int i = 0; i < kPods; ++i) {
    pods.push_back(
        MakePod("soak", names[i],
                {MakeContainer("main", {MakeDevices(kResource, {DeviceId(i % kDevices)}, {i % 2})},
                               {i % 8})}));
  }
  return pods;
}

// VmRSS (MiB) and Threads from /proc/PID/status, descriptors from /proc/PID/fd.
Sample Measure(pid_t pid, absl::Duration since_start) {
  Sample s;
  s.minutes = absl::ToDoubleMinutes(since_start);
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  for (std::string line; std::getline(status, line);) {
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    const std::string key = line.substr(0, colon);
    std::string value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(" \t"));
    value = value.substr(0, value.find(' '));
    double number = 0;
    if (!absl::SimpleAtod(value, &number)) continue;
    if (key == "VmRSS") s.rss_mib = number / 1024;
    if (key == "Threads") s.threads = static_cast<int>(number);
  }
  if (DIR* fds = opendir(absl::StrCat("/proc/", pid, "/fd").c_str())) {
    while (const dirent* e = readdir(fds)) s.fds += e->d_name[0] != '.';
    closedir(fds);
  }
  return s;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty()      ? 0
         : v.size() % 2 ? v[v.size() / 2]
                        : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

// The growth rule on `samples` (after the warm-up); prints one line per figure, true when none
// grew beyond its tolerance.
bool Verdict(const std::vector<Sample>& samples) {
  const size_t third = samples.size() / 3;
  if (third == 0) {
    std::printf("soak: too few samples after the warm-up (%zu) for a verdict\n", samples.size());
    return false;
  }
  struct Figure {
    const char* name;
    double (*get)(const Sample&);
    double (*tolerance)(double first);
  };
  const Figure figures[] = {
      {"resident MiB", [](const Sample& s) { return s.rss_mib; },
       [](double first) { return std::max(2.0, 0.05 * first); }},
      {"descriptors", [](const Sample& s) { return static_cast<double>(s.fds); },
       [](double) { return 3.0; }},
      {"threads", [](const Sample& s) { return static_cast<double>(s.threads); },
       [](double) { return 2.0; }},
  };
  bool ok = true;
  std::printf("%-14s %12s %12s %10s %10s  %s\n", "figure", "first third", "last third", "growth",
              "tolerance", "verdict");
  for (const Figure& f : figures) {
    std::vector<double> first, last;
    for (size_t i = 0; i < third; ++i) first.push_back(f.get(samples[i]));
    for (size_t i = samples.size() - third; i < samples.size(); ++i)
      last.push_back(f.get(samples[i]));
    const double a = Median(first), b = Median(last), tolerance = f.tolerance(a);
    const bool grew = b - a > tolerance;
    ok &= !grew;
    std::printf("%-14s %12.2f %12.2f %+10.2f %10.2f  %s\n", f.name, a, b, b - a, tolerance,
                grew ? "GREW" : "ok");
  }
  return ok;
}

int Run(const Options& o) {
  const std::string dir = MakeTempDir();
  const std::string devices = dir + "/devices", devfs = dir + "/dev";
  for (const std::string& d : {dir + "/dp", dir + "/pr", devfs})
    std::filesystem::create_directory(d);
  WriteDevicedir(devices, devfs);
  for (int i = 0; i < kDevices; ++i) WriteTelemetry(devices, i, 0);
  std::ofstream(dir + "/config.yaml") << "collectors:\n  interval: 1s\n";
  auto pod_resources = PodResourcesStandin::Start(dir + "/pr/kubelet.sock");
  RegistrationStandin kubelet;
  if (!pod_resources.ok() || !kubelet.Start(dir + "/dp").ok()) {
    std::cerr << "soak: cannot start the kubelet stand-ins\n";
    return 1;
  }
  std::vector<std::string> names;
  (*pod_resources)->SetPods(Pods(0, names));
  auto devscope = DevscopeProcess::Start(
      {"--web.listen-address=127.0.0.1:0",
       "--kubelet.pod-resources-socket=" + dir + "/pr/kubelet.sock",
       "--kubelet.device-plugins-dir=" + dir + "/dp", "--config.file=" + dir + "/config.yaml",
       "--collector.devicedir.path=" + devices, DevicedirOwnerFlag(), "--path.devfs=" + devfs,
       "--no-collector.nvml", "--no-collector.drm", "--no-collector.netdev"});
  if (!devscope.ok()) {
    std::cerr << "soak: " << devscope.status() << "\n";
    return 1;
  }
  if (!kubelet.WaitForDevices(
          kResource, [](const auto& d) { return d.size() == kDevices; }, absl::Seconds(20))) {
    std::cerr << "soak: the device plugin did not register\n" << (*devscope)->Stderr();
    return 1;
  }
  std::printf(
      "soak: %s, %d pods (%d new a second), %d devices (2 health flips a second), "
      "sampled every %s, warm-up %s; pid %d\n",
      absl::FormatDuration(o.duration).c_str(), kPods, kChurnPerTick, kDevices,
      absl::FormatDuration(o.sample_every).c_str(), absl::FormatDuration(o.warmup).c_str(),
      (*devscope)->pid());
  std::printf("%8s %12s %6s %8s %8s\n", "minute", "resident MiB", "fds", "threads", "scrapes");
  const absl::Time start = absl::Now();
  absl::Time next_sample = start;
  std::vector<Sample> kept;
  int scrapes = 0, failures = 0;
  for (int tick = 1; absl::Now() - start < o.duration; ++tick) {
    const absl::Time tick_start = absl::Now();
    (*pod_resources)->SetPods(Pods(tick, names));
    for (int k = 0; k < 2; ++k) {
      const int device = (tick * 2 + k) % kDevices;
      WriteAtomically(absl::StrCat(devices, "/", DeviceId(device), "/health"),
                      (tick / kDevices) % 2 ? "Healthy\n" : "Unhealthy\n");
    }
    for (int k = 0; k < 4; ++k) WriteTelemetry(devices, (tick * 4 + k) % kDevices, tick);
    const HttpResponse plain = (*devscope)->HttpGet("/metrics");
    const HttpResponse gzip =
        HttpRequestLocal((*devscope)->port(), "GET", "/metrics", "Accept-Encoding: gzip\r\n");
    const HttpResponse healthz = (*devscope)->HttpGet("/healthz");
    scrapes += 3;
    failures += (plain.status != 200 || !absl::StrContains(plain.body, "soak")) +
                (gzip.status != 200) + (healthz.status != 200);
    if (absl::Now() >= next_sample) {
      const Sample s = Measure((*devscope)->pid(), absl::Now() - start);
      std::printf("%8.1f %12.2f %6d %8d %8d\n", s.minutes, s.rss_mib, s.fds, s.threads, scrapes);
      std::fflush(stdout);
      if (absl::Now() - start >= o.warmup) kept.push_back(s);
      next_sample += o.sample_every;
    }
    absl::SleepFor(absl::Seconds(1) - (absl::Now() - tick_start));
  }
  const bool alive = (*devscope)->Alive();
  const int exit_status = (*devscope)->Stop();
  kubelet.Stop();
  RemoveTree(dir);
  std::printf("scrapes: %d, failed: %d; devscope %s, exit status %d on SIGTERM\n", scrapes,
              failures, alive ? "alive to the end" : "DIED", exit_status);
  const bool no_growth = Verdict(kept);
  return no_growth && failures == 0 && alive && exit_status == 0 ? 0 : 1;
}

}  // namespace
}  // namespace devscope

int main(int argc, char** argv) {
  devscope::Options options;
  if (!devscope::ParseArgs(argc, argv, options)) return 2;
  return devscope::Run(options);
}
