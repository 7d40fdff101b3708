// The real binary keeps answering while 1,000 hostile connections are held open against it, at
// the size of bench/node_probe (250 pods x 4 containers x 4 devices, 1,024 devicedir devices: a
// 1.7 MB scrape). Over HTTP a third of them say nothing, a third send half a request head and then
// a byte a second, a third send a head announcing a 100 kB body and trickle it a byte a second;
// over HTTPS a third say nothing, a third send half a ClientHello, a third finish the handshake
// and say nothing. Each is reopened as soon as devscope closes it, as an attacker would. Every
// scrape (plain and gzip) and every /healthz must be answered within 1 s, the connections must
// really be open (devscope's own devscope_http_connections says how many). With nothing else to
// serve, the whole process must stay under 32 MiB while they are held.
//
// The test needs about 1,100 descriptors: it raises its soft limit to the hard one and says so;
// with a lower hard limit it holds as many as it can and says so.
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "demo/standin_pod_resources.h"
#include "gtest/gtest.h"
#include "test/integration/devscope_process.h"

namespace devscope {
namespace {

// Resident memory says nothing about devscope under a sanitizer (shadow memory, and ASan's
// quarantine keeps up to 256 MiB of freed blocks): the release build checks the memory target.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)  // GCC
#define DEVSCOPE_SANITIZED_BUILD 1
#elif defined(__has_feature)  // clang
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define DEVSCOPE_SANITIZED_BUILD 1
#endif
#endif
#ifdef DEVSCOPE_SANITIZED_BUILD
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

constexpr int kHeld = 1000;
constexpr absl::Duration kAttack = absl::Seconds(12);  // past every deadline at least once
constexpr absl::Duration kBound = absl::Seconds(1);

enum class Kind { kSilent, kHalfHead, kTrickledBody, kHalfHello, kTlsIdle };

// Raises this process's soft descriptor limit to the hard one; returns how many connections it
// can hold (kHeld, or fewer, with a note, when the hard limit is low).
int HoldableConnections() {
  rlimit limit{};
  getrlimit(RLIMIT_NOFILE, &limit);
  if (limit.rlim_cur < limit.rlim_max) {
    std::printf("note: descriptor soft limit raised from %llu to %llu\n",
                static_cast<unsigned long long>(limit.rlim_cur),
                static_cast<unsigned long long>(limit.rlim_max));
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
  const long spare = static_cast<long>(limit.rlim_cur) - 100;
  if (spare < kHeld) {
    std::printf("note: hard descriptor limit %llu: holding %ld connections, not %d\n",
                static_cast<unsigned long long>(limit.rlim_max), spare, kHeld);
  }
  return static_cast<int>(std::min<long>(kHeld, spare));
}

int ConnectLocal(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd >= 0 && connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) return fd;
  if (fd >= 0) close(fd);
  return -1;
}

// Holds hostile connections on one thread: every second it reopens those devscope closed and
// sends the next byte on those that trickle.
class Attacker {
 public:
  Attacker(int port, int count, std::vector<Kind> kinds) : port_(port) {
    signal(SIGPIPE, SIG_IGN);
    tls_ = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(tls_, SSL_VERIFY_NONE, nullptr);
    for (int i = 0; i < count; ++i) held_.push_back({-1, kinds[i % kinds.size()]});
    for (Held& h : held_) Open(h);
    thread_ = std::thread([this] { Loop(); });
  }
  ~Attacker() {
    stop_ = true;
    thread_.join();
    for (Held& h : held_) Close(h);
    SSL_CTX_free(tls_);
  }
  int reopened() const { return reopened_.load(); }

 private:
  struct Held {
    int fd;
    Kind kind;
  };

  void Open(Held& h) {
    h.fd = ConnectLocal(port_);
    if (h.fd < 0) return;
    switch (h.kind) {
      case Kind::kSilent:
        break;
      case Kind::kHalfHead:
        Send(h, "GET /metrics HTTP/1.1\r\nHost: devscope\r\nUser-Agent: ");
        break;
      case Kind::kTrickledBody:
        Send(h, "GET /metrics HTTP/1.1\r\nHost: devscope\r\nContent-Length: 100000\r\n\r\n");
        break;
      case Kind::kHalfHello:
        // A handshake record header announcing 512 bytes, and the first few of them.
        Send(h, std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11));
        break;
      case Kind::kTlsIdle: {
        SSL* ssl = SSL_new(tls_);
        SSL_set_fd(ssl, h.fd);
        if (SSL_connect(ssl) != 1) Close(h);
        SSL_free(ssl);  // the connection stays open, silent
        break;
      }
    }
    if (h.fd >= 0) fcntl(h.fd, F_SETFL, fcntl(h.fd, F_GETFL) | O_NONBLOCK);
  }
  void Close(Held& h) {
    if (h.fd >= 0) close(h.fd);
    h.fd = -1;
  }
  static void Send(Held& h, const std::string& bytes) {
    if (send(h.fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) < 0) {
      close(h.fd);
      h.fd = -1;
    }
  }

  void Loop() {
    while (!stop_) {
      const absl::Time round = absl::Now();
      std::vector<pollfd> fds;
      for (const Held& h : held_) fds.push_back({h.fd, POLLIN, 0});
      poll(fds.data(), fds.size(), 0);
      for (size_t i = 0; i < held_.size(); ++i) {
        Held& h = held_[i];
        bool closed = h.fd < 0;
        if (!closed && (fds[i].revents & (POLLIN | POLLHUP | POLLERR))) {
          char buf[4096];
          ssize_t n;
          while ((n = recv(h.fd, buf, sizeof(buf), 0)) > 0) {
          }
          closed = n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
        }
        if (!closed && (h.kind == Kind::kHalfHead || h.kind == Kind::kTrickledBody)) {
          Send(h, "x");
          closed = h.fd < 0;
        }
        if (closed) {
          Close(h);
          Open(h);
          ++reopened_;
        }
      }
      absl::SleepFor(absl::Seconds(1) - (absl::Now() - round));
    }
  }

  const int port_;
  SSL_CTX* tls_ = nullptr;
  std::vector<Held> held_;  // the attacker thread's, once started
  std::atomic<bool> stop_{false};
  std::atomic<int> reopened_{0};
  std::thread thread_;
};

double RssMiB(int pid) {
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  for (std::string line; std::getline(status, line);) {
    double kb = 0;
    if (line.rfind("VmRSS:", 0) == 0 && absl::SimpleAtod(line.substr(6, line.size() - 9), &kb)) {
      return kb / 1024;
    }
  }
  return -1;
}

struct Timings {
  std::vector<double> ms;
  double Median() const {
    std::vector<double> v = ms;
    std::sort(v.begin(), v.end());
    return v.empty() ? -1 : v[v.size() / 2];
  }
  double Max() const { return ms.empty() ? -1 : *std::max_element(ms.begin(), ms.end()); }
};

// One request on a new connection, over HTTP or HTTPS: (path, extra header lines).
using Get = std::function<HttpResponse(const std::string&, const std::string&)>;

struct Outcome {
  Timings metrics, gzip, healthz;
  size_t smallest_scrape = std::string::npos;  // bytes
  double most_open = 0;                        // devscope_http_connections, as scraped
  int reopened = 0;
  double rss_before = 0, rss_peak = 0;  // MiB
};

// Holds `held` connections of `kinds` against `p` for `how_long` and meanwhile, twice a second,
// scrapes (plain and gzip) and asks /healthz, each on a new connection.
Outcome Attack(const DevscopeProcess& p, const Get& get, int held, std::vector<Kind> kinds,
               absl::Duration how_long) {
  Outcome o;
  o.rss_before = RssMiB(p.pid());
  Attacker attacker(p.port(), held, std::move(kinds));
  const absl::Time end = absl::Now() + how_long;
  auto timed = [&](Timings& t, const std::string& path, const std::string& headers) {
    const absl::Time start = absl::Now();
    HttpResponse r = get(path, headers);
    t.ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - start));
    EXPECT_EQ(r.status, 200) << path << " " << headers;
    return r;
  };
  while (absl::Now() < end) {
    HttpResponse metrics = timed(o.metrics, "/metrics", "");
    o.smallest_scrape = std::min(o.smallest_scrape, metrics.body.size());
    auto open = FindSamples(metrics.body, "devscope_http_connections");
    if (!open.empty()) o.most_open = std::max(o.most_open, open[0].value);
    timed(o.gzip, "/metrics", "Accept-Encoding: gzip\r\n");
    timed(o.healthz, "/healthz", "");
    o.rss_peak = std::max(o.rss_peak, RssMiB(p.pid()));
    absl::SleepFor(absl::Milliseconds(500));
  }
  o.reopened = attacker.reopened();
  return o;
}

void Report(const char* what, int held, const Outcome& o) {
  std::printf(
      "%s, %d connections held (%d reopened after devscope closed them; devscope counted up to "
      "%.0f open):\n"
      "  GET /metrics (%zu bytes)  median %.1f ms, max %.1f ms (%zu scrapes)\n"
      "  GET /metrics gzip       median %.1f ms, max %.1f ms\n"
      "  GET /healthz            median %.1f ms, max %.1f ms\n"
      "  resident memory %.1f MiB before, at most %.1f MiB while held\n",
      what, held, o.reopened, o.most_open, o.smallest_scrape, o.metrics.Median(), o.metrics.Max(),
      o.metrics.ms.size(), o.gzip.Median(), o.gzip.Max(), o.healthz.Median(), o.healthz.Max(),
      o.rss_before, o.rss_peak);
}

// Every answer within the bound, and the connections were really there: devscope closes (and
// the attacker reopens) some every second, so not all are open at once.
void ExpectPrompt(const Outcome& o, int expected_open) {
  EXPECT_LT(o.metrics.Max(), absl::ToDoubleMilliseconds(kBound));
  EXPECT_LT(o.gzip.Max(), absl::ToDoubleMilliseconds(kBound));
  EXPECT_LT(o.healthz.Max(), absl::ToDoubleMilliseconds(kBound));
  EXPECT_GT(o.most_open, expected_open);
  EXPECT_GT(o.reopened, 0);  // devscope closed those that did not finish a request
}

class HeldConnectionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    holdable_ = HoldableConnections();
    dir_ = MakeTempDir();
    args_ = {"--kubelet.pod-resources-socket=" + dir_ + "/kubelet.sock",
             "--web.listen-address=127.0.0.1:0",
             "--no-device-plugin",
             "--no-collector.nvml",
             "--no-collector.drm",
             "--no-collector.netdev",
             "--path.devfs=" + dir_};
    auto standin = PodResourcesStandin::Start(dir_ + "/kubelet.sock");
    ASSERT_TRUE(standin.ok()) << standin.status();
    standin_ = *std::move(standin);
    standin_->SetRateLimit(0, 0);
  }
  void TearDown() override {
    if (standin_) standin_->Stop();
    RemoveTree(dir_);
  }

  // bench/node_probe's node: 250 pods x 4 containers x 4 devices, and devicedir telemetry for
  // the first 1,024 allocated device IDs.
  void MakeBigNode() {
    const std::string devices = dir_ + "/devices";
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
    standin_->SetPods(fleet);
    args_.push_back("--collector.devicedir.path=" + devices);
    args_.push_back(DevicedirOwnerFlag());
  }

  // Makes a certificate and a web config serving HTTPS with it; returns the client's options.
  HttpsClientOptions UseHttps() {
    const std::string key = dir_ + "/tls.key", cert = dir_ + "/tls.crt";
    EXPECT_EQ(std::system(("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
                           "-days 1 -subj /CN=devscope -addext subjectAltName=IP:127.0.0.1 "
                           "-keyout " +
                           key + " -out " + cert + " >/dev/null 2>&1")
                              .c_str()),
              0);
    std::ofstream(dir_ + "/web.yaml")
        << "tls_server_config:\n  cert_file: " << cert << "\n  key_file: " << key << "\n";
    args_.push_back("--web.config.file=" + dir_ + "/web.yaml");
    HttpsClientOptions client;
    client.ca_file = cert;
    return client;
  }

  // Waits until a scrape has at least `bytes` (the first polls and collector passes are in).
  static void WaitForSize(const Get& get, size_t bytes) {
    for (int i = 0; i < 150 && get("/metrics", "").body.size() < bytes; ++i) {
      absl::SleepFor(absl::Milliseconds(200));
    }
    ASSERT_GE(get("/metrics", "").body.size(), bytes);
  }

  int holdable_ = 0;
  std::string dir_;
  std::unique_ptr<PodResourcesStandin> standin_;
  std::vector<std::string> args_;
};

Get PlainGet(int port) {
  return [port](const std::string& path, const std::string& headers) {
    return HttpRequestLocal(port, "GET", path, headers);
  };
}

Get TlsGet(int port, HttpsClientOptions client) {
  return [port, client](const std::string& path, const std::string& headers) mutable {
    client.extra_headers = headers;
    return HttpsGetLocal(port, path, client).response;
  };
}

const std::vector<Kind> kHttpKinds = {Kind::kSilent, Kind::kHalfHead, Kind::kTrickledBody};
const std::vector<Kind> kHttpsKinds = {Kind::kSilent, Kind::kHalfHello, Kind::kTlsIdle};

TEST_F(HeldConnectionsTest, ScrapesStayPromptWhileAThousandConnectionsAreHeldOverHttp) {
  MakeBigNode();
  auto process = DevscopeProcess::Start(args_);
  ASSERT_TRUE(process.ok()) << process.status();
  const Get get = PlainGet((*process)->port());
  WaitForSize(get, 1'500'000);
  const Outcome o = Attack(**process, get, holdable_, kHttpKinds, kAttack);
  Report("HTTP at 250 pods and 1,024 devices", holdable_, o);
  ExpectPrompt(o, holdable_ / 3);
  EXPECT_GE(o.smallest_scrape, 1'500'000u);
  EXPECT_TRUE((*process)->Alive());
}

TEST_F(HeldConnectionsTest, ScrapesStayPromptWhileAThousandConnectionsAreHeldOverHttps) {
  MakeBigNode();
  const HttpsClientOptions client = UseHttps();
  auto process = DevscopeProcess::Start(args_);
  ASSERT_TRUE(process.ok()) << process.status();
  const Get get = TlsGet((*process)->port(), client);
  WaitForSize(get, 1'500'000);
  const Outcome o = Attack(**process, get, holdable_, kHttpsKinds, kAttack);
  Report("HTTPS at 250 pods and 1,024 devices (TLS limit 512 connections)", holdable_, o);
  ExpectPrompt(o, std::min(holdable_, 512) / 3);
  EXPECT_GE(o.smallest_scrape, 1'500'000u);
  EXPECT_TRUE((*process)->Alive());
}

// What the connections cost, with nothing else to serve: the whole process stays under 32 MiB.
TEST_F(HeldConnectionsTest, AThousandHeldConnectionsCostLittleMemory) {
  for (bool tls : {false, true}) {
    SCOPED_TRACE(tls ? "HTTPS" : "HTTP");
    HttpsClientOptions client;
    if (tls) client = UseHttps();  // from now on the web config is among the flags
    auto process = DevscopeProcess::Start(args_);
    ASSERT_TRUE(process.ok()) << process.status();
    const Get get = tls ? TlsGet((*process)->port(), client) : PlainGet((*process)->port());
    WaitForSize(get, 1);
    const Outcome o =
        Attack(**process, get, holdable_, tls ? kHttpsKinds : kHttpKinds, absl::Seconds(6));
    Report(tls ? "HTTPS, no pods or devices" : "HTTP, no pods or devices", holdable_, o);
    ExpectPrompt(o, std::min(holdable_, tls ? 512 : 4096) / 3);
    if (!kSanitized) {
      EXPECT_LT(o.rss_peak, 32);
    }
  }
}

}  // namespace
}  // namespace devscope
