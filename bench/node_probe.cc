// The real binary at the size the issues name, measured from outside: 250 pods x 4 containers x
// 4 devices in pod-resources (the stand-in), a devicedir of 1,024 devices whose IDs are the first
// 1,024 allocated ones (so 1,024 telemetry sets carry holder labels), polled every second.
// Reports the median HTTP scrape time (back to back, and 10 s apart), the resident memory after
// warm-up and every 30 s for two minutes of polls and scrapes (growth would show a leak), and, as a
// reference in the same run, the median time of GET /healthz (the HTTP round trip with no
// rendering). Then the same node served over HTTPS (tls_server_config, P-256 certificate), each GET
// on a new connection as the worst case (Prometheus keeps its connections open): what TLS adds per
// scrape.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "demo/standin_pod_resources.h"
#include "test/integration/devscope_process.h"

namespace devscope {
namespace {

double MedianMs(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// VmRSS or VmHWM of `pid` in MiB.
double MemoryMiB(int pid, const std::string& field) {
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  for (std::string line; std::getline(status, line);) {
    if (line.rfind(field + ":", 0) == 0) {
      double kb = 0;
      std::string number = line.substr(field.size() + 1);
      number.erase(0, number.find_first_not_of(" \t"));
      number = number.substr(0, number.find(' '));
      if (absl::SimpleAtod(number, &kb)) return kb / 1024;
    }
  }
  return -1;
}

std::vector<double> TimeGets(const DevscopeProcess& p, const std::string& path, int n,
                             size_t* bytes, const std::string& headers = "") {
  std::vector<double> ms;
  for (int i = 0; i < n; ++i) {
    const absl::Time start = absl::Now();
    HttpResponse r = HttpRequestLocal(p.port(), "GET", path, headers);
    ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - start));
    if (bytes != nullptr) *bytes = r.body.size();
  }
  return ms;
}

int Main() {
  const std::string dir = MakeTempDir();
  const std::string devices = dir + "/node-probe";
  auto fleet = MakeFleet(250, 4, 4);
  int made = 0;
  for (const auto& pod : fleet) {
    for (const auto& container : pod.containers()) {
      for (const auto& d : container.devices()) {
        for (const std::string& id : d.device_ids()) {
          if (made >= 1024) continue;
          const std::string path = absl::StrCat(devices, "/", id);
          std::filesystem::create_directories(path);
          std::ofstream(path + "/resource") << "example.com/dev\n";
          std::ofstream(path + "/numa_node") << made % 2 << "\n";
          std::ofstream(path + "/metrics.prom")
              << "devscope_device_utilization_ratio 0.5\ndevscope_device_temperature_celsius 50\n"
                 "devscope_device_power_watts 200\ndevscope_device_memory_used_bytes 1e9\n"
                 "devscope_device_memory_total_bytes 1.6e10\n"
                 "# TYPE devscope_device_energy_joules_total counter\n"
                 "devscope_device_energy_joules_total 1e6\n";
          ++made;
        }
      }
    }
  }
  auto standin = PodResourcesStandin::Start(dir + "/kubelet.sock");
  if (!standin.ok()) {
    std::cerr << standin.status() << "\n";
    return 1;
  }
  (*standin)->SetRateLimit(0, 0);
  (*standin)->SetPods(fleet);
  auto process = DevscopeProcess::Start({"--kubelet.pod-resources-socket=" + dir + "/kubelet.sock",
                                         "--web.listen-address=127.0.0.1:0", "--no-device-plugin",
                                         "--collector.devicedir.path=" + devices,
                                         "--no-collector.nvml", "--no-collector.drm",
                                         "--no-collector.netdev", "--path.devfs=" + dir});
  if (!process.ok()) {
    std::cerr << process.status() << "\n";
    return 1;
  }
  DevscopeProcess& p = **process;
  const int pid = p.pid();
  absl::SleepFor(absl::Seconds(5));  // first polls and collector passes
  size_t bytes = 0;
  const double rss_warm = MemoryMiB(pid, "VmRSS");
  const auto reference = TimeGets(p, "/healthz", 50, nullptr);
  const auto scrapes = TimeGets(p, "/metrics", 50, &bytes);
  // As Prometheus asks: gzip.
  size_t gzip_bytes = 0;
  const auto gzip_scrapes = TimeGets(p, "/metrics", 50, &gzip_bytes, "Accept-Encoding: gzip\r\n");
  // Two more minutes, scraped every 10 s as Prometheus would: resident memory should level off.
  std::vector<double> rss_over_time;
  std::vector<double> scrapes_after;
  for (int i = 0; i < 12; ++i) {
    absl::SleepFor(absl::Seconds(10));
    for (double ms : TimeGets(p, "/metrics", 1, nullptr)) scrapes_after.push_back(ms);
    if (i % 3 == 2) rss_over_time.push_back(MemoryMiB(pid, "VmRSS"));
  }
  const double hwm = MemoryMiB(pid, "VmHWM");
  const auto series = ParseSamples(p.HttpGet("/metrics").body).size();
  std::printf("node_probe: 250 pods x 4 containers x 4 devices, 1024 devicedir devices\n");
  std::printf("  series per scrape           %zu (%zu bytes)\n", series, bytes);
  std::printf("  GET /healthz median         %.3f ms (reference)\n", MedianMs(reference));
  std::printf("  GET /metrics median         %.3f ms (%.1fx reference)\n", MedianMs(scrapes),
              MedianMs(scrapes) / MedianMs(reference));
  std::printf("  GET /metrics, gzip median    %.3f ms (%zu bytes; %.2fx plain)\n",
              MedianMs(gzip_scrapes), gzip_bytes, MedianMs(gzip_scrapes) / MedianMs(scrapes));
  std::printf(
      "  GET /metrics 10 s apart     %.3f ms (median; most follow a collector pass: fresh text)\n",
      MedianMs(scrapes_after));
  std::printf("  RSS after 5 s               %.1f MiB\n", rss_warm);
  for (size_t i = 0; i < rss_over_time.size(); ++i) {
    std::printf("  RSS after %3zu s             %.1f MiB\n", 5 + 30 * (i + 1), rss_over_time[i]);
  }
  std::printf("  RSS peak                    %.1f MiB\n", hwm);
  p.Stop();

  // The same node over HTTPS.
  const std::string key = dir + "/tls.key", cert = dir + "/tls.crt";
  if (std::system(("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 "
                   "-subj /CN=devscope -addext subjectAltName=IP:127.0.0.1 -keyout " +
                   key + " -out " + cert + " >/dev/null 2>&1")
                      .c_str()) != 0) {
    std::cerr << "openssl could not make a certificate\n";
    return 1;
  }
  std::ofstream(dir + "/web.yaml")
      << "tls_server_config:\n  cert_file: " << cert << "\n  key_file: " << key << "\n";
  auto tls_process = DevscopeProcess::Start(
      {"--kubelet.pod-resources-socket=" + dir + "/kubelet.sock",
       "--web.listen-address=127.0.0.1:0", "--no-device-plugin",
       "--collector.devicedir.path=" + devices, "--no-collector.nvml", "--no-collector.drm",
       "--no-collector.netdev", "--path.devfs=" + dir, "--web.config.file=" + dir + "/web.yaml"});
  if (!tls_process.ok()) {
    std::cerr << tls_process.status() << "\n";
    return 1;
  }
  absl::SleepFor(absl::Seconds(5));
  HttpsClientOptions client;
  client.ca_file = cert;
  auto time_https = [&](const std::string& path) {
    std::vector<double> ms;
    for (int i = 0; i < 50; ++i) {
      const absl::Time start = absl::Now();
      HttpsResponse r = HttpsGetLocal((*tls_process)->port(), path, client);
      ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - start));
      if (r.response.status != 200) {
        std::cerr << "HTTPS GET " << path << " answered " << r.response.status << "\n";
        return std::vector<double>{};
      }
    }
    return ms;
  };
  const auto https_healthz = time_https("/healthz");
  const auto https_metrics = time_https("/metrics");
  if (https_healthz.empty() || https_metrics.empty()) return 1;
  std::printf("  HTTPS GET /healthz median   %.3f ms (new connection: TCP + TLS 1.3 handshake)\n",
              MedianMs(https_healthz));
  std::printf("  HTTPS GET /metrics median   %.3f ms (%.2fx plain GET /metrics)\n",
              MedianMs(https_metrics), MedianMs(https_metrics) / MedianMs(scrapes));
  (*tls_process)->Stop();
  (*standin)->Stop();
  RemoveTree(dir);
  return 0;
}

}  // namespace
}  // namespace devscope

int main() { return devscope::Main(); }
