// The real binary at the size the performance issue names (bench/node_fixture.h), measured from
// outside beside its peers in the same run, with the same client (one HTTP/1.0 GET per new
// connection, as test/integration's HttpRequestLocal makes it):
//  - nginx serving the very bytes devscope served, from a file (the serving limit);
//  - node_exporter 1.5 (Debian's) serving the same series through its textfile collector.
// Figures: the cached scrape (back to back, nothing changed), the fresh scrape (a pod arrived or
// left just before; for the peers, their file was rewritten with devscope's new text), both plain
// and gzip, resident memory, and CPU while nobody scrapes at devscope's default intervals (and,
// from the same window, what one List costs the in-process kubelet stand-in).
// Medians throughout. NODE_PROBE_IDLE_SECONDS sets the idle window (default 60).
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "bench/node_fixture.h"
#include "bench/peers.h"
#include "demo/standin_pod_resources.h"
#include "test/integration/devscope_process.h"

namespace devscope {
namespace {

constexpr char kGzip[] = "Accept-Encoding: gzip\r\n";
constexpr int kCachedScrapes = 50;
constexpr int kFreshScrapes = 12;

double Median(std::vector<double> v) {
  if (v.empty()) return -1;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// One timed GET; `body` gets the body.
double TimedGet(int port, const std::string& path, const std::string& headers,
                std::string* body = nullptr) {
  const absl::Time start = absl::Now();
  HttpResponse r = HttpRequestLocal(port, "GET", path, headers);
  const double ms = absl::ToDoubleMilliseconds(absl::Now() - start);
  if (r.status != 200) {
    std::cerr << "GET 127.0.0.1:" << port << path << " answered " << r.status << "\n";
    std::exit(1);
  }
  if (body != nullptr) *body = std::move(r.body);
  return ms;
}

double CachedMedian(int port, const std::string& path, const std::string& headers) {
  std::vector<double> ms;
  for (int i = 0; i < kCachedScrapes; ++i) ms.push_back(TimedGet(port, path, headers));
  return Median(ms);
}

struct Column {
  double cached = -1, fresh = -1, cached_gzip = -1, fresh_gzip = -1;
  double rss = -1, hwm = -1, rss_anon = -1, rss_file = -1, idle_cpu = -1;
};

void PrintRow(const char* what, double devscope, double node_exporter, double nginx,
              const char* unit) {
  std::printf("  %-34s %10.3f %14.3f %10.3f %9.2fx  %s\n", what, devscope, node_exporter, nginx,
              devscope / nginx, unit);
}

int ServeNode(const std::string& dir) {
  WriteBenchDevicedir(dir + "/devices");
  auto standin = PodResourcesStandin::Start(dir + "/kubelet.sock");
  if (!standin.ok()) {
    std::cerr << standin.status() << "\n";
    return 1;
  }
  (*standin)->SetRateLimit(0, 0);
  (*standin)->SetPods(BenchFleet(0));
  std::printf(
      "devscope --kubelet.pod-resources-socket=%s/kubelet.sock --web.listen-address=127.0.0.1:0 "
      "--no-device-plugin --collector.devicedir.path=%s/devices %s --no-collector.nvml "
      "--no-collector.drm --no-collector.netdev --path.devfs=%s\n",
      dir.c_str(), dir.c_str(), DevicedirOwnerFlag().c_str(), dir.c_str());
  std::fflush(stdout);
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  int signal = 0;
  sigwait(&signals, &signal);
  std::printf("%d Lists served\n", (*standin)->CallCount("List"));
  (*standin)->Stop();
  return 0;
}

int Churn(int minutes) {
  const std::string dir = MakeTempDir();
  const std::string devices = dir + "/devices";
  WriteBenchDevicedir(devices);
  auto standin = PodResourcesStandin::Start(dir + "/kubelet.sock");
  if (!standin.ok()) {
    std::cerr << standin.status() << "\n";
    return 1;
  }
  (*standin)->SetRateLimit(0, 0);
  const std::vector<v1::PodResources> base = BenchFleet(0);
  std::vector<v1::PodResources> arrived = BenchFleet(0);
  (*standin)->SetPods(base);
  auto process = DevscopeProcess::Start(
      {"--kubelet.pod-resources-socket=" + dir + "/kubelet.sock",
       "--web.listen-address=127.0.0.1:0", "--no-device-plugin",
       "--collector.devicedir.path=" + devices, DevicedirOwnerFlag(), "--no-collector.nvml",
       "--no-collector.drm", "--no-collector.netdev", "--path.devfs=" + dir});
  if (!process.ok()) {
    std::cerr << process.status() << "\n";
    return 1;
  }
  DevscopeProcess& p = **process;
  std::printf("churn: minute, resident MiB (anonymous), peak MiB, scrape ms\n");
  const absl::Time start = absl::Now();
  double last_scrape_ms = 0;
  for (int tick = 0; absl::Now() - start < absl::Minutes(minutes); ++tick) {
    absl::SleepFor(absl::Seconds(1));
    if (tick % 2 == 0) {
      // A different pod each time (it takes a different tracked device), or none.
      arrived = BenchFleet(0);
      if (tick % 4 == 0) arrived.push_back(BenchFleet(1 + (tick / 4) % 512).back());
      (*standin)->SetPods(arrived);
    }
    if (tick % 5 == 0) {
      for (int i = 0; i < 64; ++i) {
        const int device = (tick * 7 + i) % kBenchTrackedDevices;
        const std::string path = absl::StrCat(devices, "/dev-", device, "/metrics.prom");
        std::ofstream(path + ".tmp")
            << "devscope_device_power_watts " << tick << "\n"
            << "devscope_device_temperature_celsius " << (tick % 40) + 40 << "\n";
        std::rename((path + ".tmp").c_str(), path.c_str());
      }
    }
    if (tick % 15 == 0) last_scrape_ms = TimedGet(p.port(), "/metrics", kGzip);
    if (tick % 60 == 0) {
      std::printf("  %3d  %6.1f (%5.1f)  %6.1f  %7.2f\n", tick / 60, MemoryMiB(p.pid(), "VmRSS"),
                  MemoryMiB(p.pid(), "RssAnon"), MemoryMiB(p.pid(), "VmHWM"), last_scrape_ms);
      std::fflush(stdout);
    }
  }
  p.Stop();
  (*standin)->Stop();
  RemoveTree(dir);
  return 0;
}

// The node at the bench size: the stand-in listing BenchFleet(0), devscope at its default
// intervals (List every second, collectors every 5 s) after its second collector pass, and the
// two peers serving what devscope served then.
struct Node {
  std::string dir;
  std::unique_ptr<PodResourcesStandin> standin;
  std::unique_ptr<DevscopeProcess> devscope;
  std::unique_ptr<NginxPeer> nginx;
  std::unique_ptr<NodeExporterPeer> node_exporter;
  std::string text, gzip, node_exporter_text;  // the first scrapes of devscope and node_exporter
};

absl::StatusOr<Node> StartNode() {
  Node node;
  node.dir = MakeTempDir();
  WriteBenchDevicedir(node.dir + "/devices");
  auto standin = PodResourcesStandin::Start(node.dir + "/kubelet.sock");
  if (!standin.ok()) return standin.status();
  node.standin = *std::move(standin);
  node.standin->SetRateLimit(0, 0);
  node.standin->SetPods(BenchFleet(0));
  auto process =
      DevscopeProcess::Start({"--kubelet.pod-resources-socket=" + node.dir + "/kubelet.sock",
                              "--web.listen-address=127.0.0.1:0", "--no-device-plugin",
                              "--collector.devicedir.path=" + node.dir + "/devices",
                              DevicedirOwnerFlag(), "--no-collector.nvml", "--no-collector.drm",
                              "--no-collector.netdev", "--path.devfs=" + node.dir});
  if (!process.ok()) return process.status();
  node.devscope = *std::move(process);
  if (!WaitForHttp(node.devscope->port(), "/readyz")) {
    return absl::UnavailableError("devscope never became ready");
  }
  absl::SleepFor(absl::Seconds(6));  // a collector pass after the first
  TimedGet(node.devscope->port(), "/metrics", "", &node.text);
  TimedGet(node.devscope->port(), "/metrics", kGzip, &node.gzip);
  auto nginx = NginxPeer::Start(node.dir);
  if (!nginx.ok()) return nginx.status();
  node.nginx = *std::move(nginx);
  auto node_exporter = NodeExporterPeer::Start(node.dir);
  if (!node_exporter.ok()) return node_exporter.status();
  node.node_exporter = *std::move(node_exporter);
  node.nginx->Serve(node.text, node.gzip);
  node.node_exporter->Serve(node.text);
  TimedGet(node.node_exporter->port(), "/metrics", "", &node.node_exporter_text);
  return node;
}

// Columns in the order devscope, node_exporter, nginx.
void MeasureCached(const Node& node, Column (&c)[3]) {
  const int ports[3] = {node.devscope->port(), node.node_exporter->port(), node.nginx->port()};
  for (int i = 0; i < 3; ++i) {
    c[i].cached = CachedMedian(ports[i], "/metrics", "");
    // nginx serves the gzip from its own file, sent with Content-Encoding: gzip.
    c[i].cached_gzip = i == 2 ? CachedMedian(ports[i], "/metrics.gz", "")
                              : CachedMedian(ports[i], "/metrics", kGzip);
  }
}

// Fresh: a pod arrives or leaves, devscope's poller sees it (two Lists later), then one scrape of
// each; the peers' files are rewritten with devscope's new text first.
void MeasureFresh(Node& node, Column (&c)[3]) {
  const std::vector<v1::PodResources> base = BenchFleet(0), arrived = BenchFleet(1);
  const int ne = node.node_exporter->port(), ng = node.nginx->port();
  std::vector<double> fresh[3], fresh_gzip[3];
  for (int round = 0; round < 2 * kFreshScrapes; ++round) {
    const bool use_gzip = round >= kFreshScrapes;
    std::vector<double>(&into)[3] = use_gzip ? fresh_gzip : fresh;
    node.standin->SetPods(round % 2 == 0 ? arrived : base);
    const int lists = node.standin->CallCount("List");
    while (node.standin->CallCount("List") < lists + 2) absl::SleepFor(absl::Milliseconds(20));
    absl::SleepFor(absl::Milliseconds(100));
    std::string body;
    into[0].push_back(TimedGet(node.devscope->port(), "/metrics", use_gzip ? kGzip : "", &body));
    const std::string plain = use_gzip ? node.devscope->HttpGet("/metrics").body : body;
    node.nginx->Serve(plain, use_gzip ? body : node.gzip);
    into[2].push_back(TimedGet(ng, use_gzip ? "/metrics.gz" : "/metrics", ""));
    node.node_exporter->Serve(plain);
    into[1].push_back(TimedGet(ne, "/metrics", use_gzip ? kGzip : ""));
  }
  for (int i = 0; i < 3; ++i) {
    c[i].fresh = Median(fresh[i]);
    c[i].fresh_gzip = Median(fresh_gzip[i]);
  }
}

struct Idle {
  double window = 0;
  int lists = 0;
  double standin_ms_per_list = -1;
};

// Idle: nobody scrapes. The probe's own CPU in the window is the stand-in answering Lists.
Idle MeasureIdle(const Node& node, Column (&c)[3]) {
  double idle_seconds = 60;
  if (const char* env = std::getenv("NODE_PROBE_IDLE_SECONDS")) {
    if (!absl::SimpleAtod(env, &idle_seconds)) idle_seconds = 60;
  }
  const pid_t pids[3] = {node.devscope->pid(), node.node_exporter->pid(), node.nginx->pid()};
  double cpu_before[3];
  for (int i = 0; i < 3; ++i) cpu_before[i] = CpuSeconds(pids[i]);
  const double standin_before = CpuSeconds(getpid());
  const int lists_before = node.standin->CallCount("List");
  const absl::Time start = absl::Now();
  absl::SleepFor(absl::Seconds(idle_seconds));
  Idle idle;
  idle.window = absl::ToDoubleSeconds(absl::Now() - start);
  for (int i = 0; i < 3; ++i) {
    c[i].idle_cpu = 100 * (CpuSeconds(pids[i]) - cpu_before[i]) / idle.window;
    c[i].rss = MemoryMiB(pids[i], "VmRSS");
    c[i].hwm = MemoryMiB(pids[i], "VmHWM");
    c[i].rss_anon = MemoryMiB(pids[i], "RssAnon");
    c[i].rss_file = MemoryMiB(pids[i], "RssFile");
  }
  idle.lists = node.standin->CallCount("List") - lists_before;
  if (idle.lists > 0) {
    idle.standin_ms_per_list = 1000 * (CpuSeconds(getpid()) - standin_before) / idle.lists;
  }
  return idle;
}

void PrintTable(const Node& node, const Column (&c)[3], const Idle& idle) {
  const Column &d = c[0], &n = c[1], &x = c[2];
  std::printf("node_probe: %d pods x %d containers x %d devices, %d devicedir devices\n",
              kBenchPods, kBenchContainers, kBenchDevicesPerContainer, kBenchTrackedDevices);
  std::printf("  devscope serves %zu series, %zu bytes (%zu gzip); node_exporter %zu bytes\n",
              ParseSamples(node.text).size(), node.text.size(), node.gzip.size(),
              node.node_exporter_text.size());
  std::printf("  %-34s %10s %14s %10s %10s\n", "figure (median)", "devscope", "node_exporter",
              "nginx", "devscope/nginx");
  PrintRow("cached scrape", d.cached, n.cached, x.cached, "ms");
  PrintRow("fresh scrape (a pod came or went)", d.fresh, n.fresh, x.fresh, "ms");
  PrintRow("cached scrape, gzip", d.cached_gzip, n.cached_gzip, x.cached_gzip, "ms");
  PrintRow("fresh scrape, gzip", d.fresh_gzip, n.fresh_gzip, x.fresh_gzip, "ms");
  PrintRow("resident memory", d.rss, n.rss, x.rss, "MiB");
  PrintRow("resident memory, peak", d.hwm, n.hwm, x.hwm, "MiB");
  PrintRow("  of which anonymous", d.rss_anon, n.rss_anon, x.rss_anon, "MiB");
  PrintRow("  of which files (code, shared)", d.rss_file, n.rss_file, x.rss_file, "MiB");
  std::printf("  %-34s %10.3f %14.3f %10.3f %10s  %% of a core over %.0f s\n", "idle CPU",
              d.idle_cpu, n.idle_cpu, x.idle_cpu, "", idle.window);
  std::printf("  kubelet stand-in: %d Lists in the idle window, %.3f ms CPU each\n", idle.lists,
              idle.standin_ms_per_list);
  std::string load;
  std::getline(std::ifstream("/proc/loadavg"), load);
  std::printf("  machine: %ld cores, load average %s (other work on it skews the times)\n",
              sysconf(_SC_NPROCESSORS_ONLN), load.c_str());
}

int Main() {
  absl::StatusOr<Node> node = StartNode();
  if (!node.ok()) {
    std::cerr << "node_probe: " << node.status() << "\n";
    return 1;
  }
  Column columns[3];  // devscope, node_exporter, nginx
  MeasureCached(*node, columns);
  MeasureFresh(*node, columns);
  const Idle idle = MeasureIdle(*node, columns);
  PrintTable(*node, columns, idle);
  node->nginx.reset();
  node->node_exporter.reset();
  node->devscope->Stop();
  node->standin->Stop();
  RemoveTree(node->dir);
  return 0;
}

}  // namespace
}  // namespace devscope

int main(int argc, char** argv) {
  if (argc == 3 && std::string(argv[1]) == "--serve-node") return devscope::ServeNode(argv[2]);
  int minutes = 0;
  if (argc == 3 && std::string(argv[1]) == "--churn" && absl::SimpleAtoi(argv[2], &minutes)) {
    return devscope::Churn(minutes);
  }
  if (argc != 1) {
    std::fprintf(stderr, "usage: node_probe [--churn MINUTES | --serve-node DIR]\n");
    return 2;
  }
  return devscope::Main();
}
