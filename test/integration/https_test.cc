// HTTPS through the real binary: the web config's tls_server_config (server certificate, client
// certificate modes, certificate rotation without a restart) with an OpenSSL client, and a real
// Prometheus scraping the demo over HTTPS with basic auth, where every dashboard panel's query
// must return data (panels that show only trouble: evaluate).
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "test/integration/devscope_process.h"

namespace devscope {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;

// What a dashboard panel that shows only trouble says in its description.
constexpr char kTroubleOnly[] = "Empty while nothing is wrong.";

// bcrypt of "secret" at cost 4 (libcrypt).
constexpr char kHash[] = "$2b$04$bK/WuQTajV.OYHjXQxavSu5LWpmDoxzhXv5fJy8uLlwt79pQC.Qn.";

void RunShell(const std::string& command) {
  ASSERT_EQ(std::system((command + " >/dev/null 2>&1").c_str()), 0) << command;
}

void WriteFile(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

class HttpsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/devscope-https.XXXXXX";
    dir_ = mkdtemp(dir);
    // A CA, a server certificate for 127.0.0.1 signed by it (and a second one for rotation),
    // a client certificate it signed and one signed by a CA the server does not know.
    MakeCa("ca");
    MakeCa("other-ca");
    MakeSigned("server", "ca", "devscope-one", "subjectAltName=IP:127.0.0.1");
    MakeSigned("server-two", "ca", "devscope-two", "subjectAltName=IP:127.0.0.1");
    MakeSigned("client", "ca", "prometheus", "extendedKeyUsage=clientAuth");
    MakeSigned("stranger", "other-ca", "stranger", "extendedKeyUsage=clientAuth");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

  void MakeCa(const std::string& name) {
    RunShell(absl::StrCat(
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2",
        " -subj /CN=", name, " -keyout ", Path(name + ".key"), " -out ", Path(name + ".crt")));
  }
  void MakeSigned(const std::string& name, const std::string& ca, const std::string& cn,
                  const std::string& extension) {
    WriteFile(Path(name + ".ext"), extension + "\n");
    RunShell(absl::StrCat(
        "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=", cn,
        " -keyout ", Path(name + ".key"), " -out ", Path(name + ".csr")));
    RunShell(absl::StrCat("openssl x509 -req -days 2 -in ", Path(name + ".csr"), " -CA ",
                          Path(ca + ".crt"), " -CAkey ", Path(ca + ".key"),
                          " -CAcreateserial -out ", Path(name + ".crt"), " -extfile ",
                          Path(name + ".ext")));
  }

  // devscope with no kubelet and no collectors: only the HTTP side matters here.
  absl::StatusOr<std::unique_ptr<DevscopeProcess>> StartDevscope(const std::string& web_config) {
    WriteFile(Path("web.yaml"), web_config);
    return DevscopeProcess::Start(
        {"--web.listen-address=127.0.0.1:0", "--web.config.file=" + Path("web.yaml"),
         "--kubelet.pod-resources-socket=" + Path("absent.sock"), "--no-device-plugin",
         "--no-collector.nvml", "--no-collector.drm", "--no-collector.netdev"});
  }

  HttpsClientOptions Client(const std::string& cert = "") const {
    HttpsClientOptions options;
    options.ca_file = Path("ca.crt");
    if (!cert.empty()) {
      options.cert_file = Path(cert + ".crt");
      options.key_file = Path(cert + ".key");
    }
    return options;
  }

  std::string dir_;
};

TEST_F(HttpsTest, ServesMetricsOverTlsWithBasicAuthAndConfiguredHeaders) {
  auto process = StartDevscope(absl::StrCat(
      "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n",
      "basic_auth_users:\n  prometheus: ", kHash, "\n",
      "http_server_config:\n  headers:\n    Strict-Transport-Security: max-age=600\n"));
  ASSERT_TRUE(process.ok()) << process.status();
  EXPECT_THAT((*process)->Stderr(), HasSubstr("url=https://127.0.0.1:"));

  HttpsClientOptions client = Client();
  HttpsResponse anonymous = HttpsGetLocal((*process)->port(), "/metrics", client);
  ASSERT_TRUE(anonymous.handshake);
  EXPECT_EQ(anonymous.server_common_name, "devscope-one");
  EXPECT_EQ(anonymous.response.status, 401);
  EXPECT_THAT(anonymous.response.headers, HasSubstr("Strict-Transport-Security: max-age=600"));

  client.extra_headers = "Authorization: Basic cHJvbWV0aGV1czpzZWNyZXQ=\r\n";  // prometheus:secret
  HttpsResponse scrape = HttpsGetLocal((*process)->port(), "/metrics", client);
  EXPECT_EQ(scrape.response.status, 200);
  EXPECT_THAT(scrape.response.body, HasSubstr("devscope_pod_resources_up 0"));
  EXPECT_EQ(PromtoolCheck(scrape.response.body), "");
  // The served certificate's expiry, for the alert that warns before it lapses (made -days 2).
  auto expiry =
      FindSamples(scrape.response.body, "devscope_tls_certificate_expiry_timestamp_seconds");
  ASSERT_EQ(expiry.size(), 1u);
  const double now = absl::ToUnixSeconds(absl::Now());
  EXPECT_GT(expiry[0].value, now + 86400);
  EXPECT_LT(expiry[0].value, now + 3 * 86400);

  // Plain HTTP on the TLS port gets no HTTP answer, and the process stays up.
  EXPECT_NE((*process)->HttpGet("/metrics").status, 200);
  EXPECT_EQ(HttpsGetLocal((*process)->port(), "/healthz", Client()).response.status, 200);
  EXPECT_TRUE((*process)->Alive());
}

TEST_F(HttpsTest, RotatedCertificateIsServedWithoutARestart) {
  auto process =
      StartDevscope("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n");
  ASSERT_TRUE(process.ok()) << process.status();
  EXPECT_EQ(HttpsGetLocal((*process)->port(), "/healthz", Client()).server_common_name,
            "devscope-one");

  // A half-done rotation (new certificate, old key) keeps the old pair in service.
  std::filesystem::copy_file(Path("server-two.crt"), Path("server.crt"),
                             std::filesystem::copy_options::overwrite_existing);
  absl::SleepFor(absl::Milliseconds(1100));
  HttpsResponse half = HttpsGetLocal((*process)->port(), "/healthz", Client());
  EXPECT_EQ(half.response.status, 200);
  EXPECT_EQ(half.server_common_name, "devscope-one");

  std::filesystem::copy_file(Path("server-two.key"), Path("server.key"),
                             std::filesystem::copy_options::overwrite_existing);
  std::string name;
  for (int i = 0; i < 30 && name != "devscope-two"; ++i) {
    absl::SleepFor(absl::Milliseconds(100));
    name = HttpsGetLocal((*process)->port(), "/healthz", Client()).server_common_name;
  }
  EXPECT_EQ(name, "devscope-two");
  EXPECT_THAT((*process)->Stderr(), HasSubstr("keeping the current certificate"));
  EXPECT_THAT((*process)->Stderr(), HasSubstr("certificate reloaded"));
  auto failures = FindSamples(HttpsGetLocal((*process)->port(), "/metrics", Client()).response.body,
                              "devscope_tls_certificate_reload_failures_total");
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_GE(failures[0].value, 1);
}

TEST_F(HttpsTest, ClientCertificatesAreRequiredAndVerifiedAgainstTheClientCa) {
  auto process = StartDevscope(
      "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
      "  client_ca_file: ca.crt\n");  // no type: RequireAndVerifyClientCert, as the toolkit
  ASSERT_TRUE(process.ok()) << process.status();
  EXPECT_EQ(HttpsGetLocal((*process)->port(), "/metrics", Client("client")).response.status, 200);
  EXPECT_EQ(HttpsGetLocal((*process)->port(), "/metrics", Client()).response.status, -1);
  EXPECT_EQ(HttpsGetLocal((*process)->port(), "/metrics", Client("stranger")).response.status, -1);
  EXPECT_TRUE((*process)->Alive());
}

TEST_F(HttpsTest, VerifyClientCertIfGivenLetsAnonymousClientsIn) {
  auto process = StartDevscope(
      "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
      "  client_ca_file: ca.crt\n  client_auth_type: VerifyClientCertIfGiven\n"
      "  min_version: TLS13\n");
  ASSERT_TRUE(process.ok()) << process.status();
  EXPECT_EQ(HttpsGetLocal((*process)->port(), "/metrics", Client()).response.status, 200);
  EXPECT_EQ(HttpsGetLocal((*process)->port(), "/metrics", Client("client")).response.status, 200);
  EXPECT_EQ(HttpsGetLocal((*process)->port(), "/metrics", Client("stranger")).response.status, -1);
}

TEST_F(HttpsTest, UnusableCertificatesStopTheStartWithExitTwo) {
  WriteFile(Path("bad.yaml"),
            "tls_server_config:\n  cert_file: server.crt\n  key_file: client.key\n");
  RunResult mismatch = RunDevscope({"--web.config.file=" + Path("bad.yaml"),
                                    "--web.listen-address=127.0.0.1:0", "--no-device-plugin"});
  EXPECT_EQ(mismatch.exit_code, 2);
  EXPECT_THAT(mismatch.stderr_text, HasSubstr("client.key is not the key of"));

  WriteFile(Path("missing.yaml"), "tls_server_config:\n  cert_file: nope.crt\n  key_file: x.key\n");
  RunResult missing = RunDevscope({"--web.config.file=" + Path("missing.yaml"),
                                   "--web.listen-address=127.0.0.1:0", "--no-device-plugin"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_THAT(missing.stderr_text, HasSubstr("nope.crt"));
}

// Percent-encodes everything but unreserved characters, for a query string.
std::string UrlEncode(const std::string& text) {
  std::string out;
  for (unsigned char c : text) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      absl::StrAppend(&out, "%", absl::Hex(c, absl::kZeroPad2));
    }
  }
  return out;
}

// A free TCP port on loopback (bound and released; good enough for a test on one machine).
int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t length = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length);
  close(fd);
  return ntohs(addr.sin_port);
}

// A dashboard panel's queries, with Grafana's variables given what "All" selects.
struct PanelQuery {
  std::string where;  // dashboard: panel title
  std::string expr;
  bool trouble_only;  // the panel shows only trouble: empty on a healthy node
};

std::vector<PanelQuery> DashboardQueries() {
  std::vector<PanelQuery> queries;
  for (const auto& file : std::filesystem::directory_iterator(DEVSCOPE_DASHBOARDS_DIR)) {
    if (file.path().extension() != ".json") continue;
    const nlohmann::json dashboard = nlohmann::json::parse(std::ifstream(file.path()));
    std::vector<nlohmann::json> panels;
    for (const nlohmann::json& panel : dashboard["panels"]) {
      panels.push_back(panel);
      for (const nlohmann::json& inner : panel.value("panels", nlohmann::json::array())) {
        panels.push_back(inner);
      }
    }
    for (const nlohmann::json& panel : panels) {
      const bool trouble = absl::StrContains(panel.value("description", ""), kTroubleOnly);
      for (const nlohmann::json& target : panel.value("targets", nlohmann::json::array())) {
        std::string expr = target["expr"];
        // A 10 s rate window holds several of the 1 s scrapes; every variable selects all.
        expr = std::regex_replace(expr, std::regex(R"(\$__rate_interval)"), "10s");
        expr = std::regex_replace(expr, std::regex(R"(\$[a-z_]+)"), ".*");
        queries.push_back(
            {absl::StrCat(file.path().filename().string(), ": ", panel.value("title", "")), expr,
             trouble});
      }
    }
  }
  return queries;
}

// Asks Prometheus for an instant query; false when it does not evaluate, else `results` series.
bool Evaluate(int prometheus_port, const std::string& expr, size_t* results) {
  const std::string body =
      HttpGetLocal(prometheus_port, "/api/v1/query?query=" + UrlEncode(expr)).body;
  const nlohmann::json answer = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (answer.is_discarded() || answer.value("status", "") != "success") return false;
  *results = answer["data"]["result"].size();
  return true;
}

TEST_F(HttpsTest, RealPrometheusScrapesTheDemoOverHttpsWithBasicAuth) {
  WriteFile(Path("web.yaml"), absl::StrCat("tls_server_config:\n  cert_file: server.crt\n",
                                           "  key_file: server.key\nbasic_auth_users:\n",
                                           "  prometheus: ", kHash, "\n"));
  auto devscope = DevscopeProcess::Start(
      {"demo", "--web.listen-address=127.0.0.1:0", "--web.config.file=" + Path("web.yaml")});
  ASSERT_TRUE(devscope.ok()) << devscope.status();

  const int prometheus_port = FreePort();
  WriteFile(Path("prometheus.yml"),
            absl::StrCat("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                         "scrape_configs:\n  - job_name: devscope\n    scheme: https\n"
                         "    tls_config:\n      ca_file: ",
                         Path("ca.crt"), "\n",
                         "    basic_auth:\n      username: prometheus\n      password: secret\n"
                         "    static_configs:\n      - targets: ['127.0.0.1:",
                         (*devscope)->port(), "']\n"));
  const std::string command = absl::StrCat(
      "prometheus --config.file=", Path("prometheus.yml"), " --storage.tsdb.path=", Path("tsdb"),
      " --web.listen-address=127.0.0.1:", prometheus_port, " >", Path("prometheus.log"),
      " 2>&1 & echo $! >", Path("prometheus.pid"));
  ASSERT_EQ(std::system(command.c_str()), 0);
  struct StopOnExit {
    std::string pid_file;
    ~StopOnExit() {
      int pid = 0;
      std::ifstream(pid_file) >> pid;
      if (pid > 0) kill(pid, SIGTERM);
    }
  } stop{Path("prometheus.pid")};

  // Prometheus's own view: the target is up and the demo's pods are on their devices.
  std::string up, held;
  for (int i = 0;
       i < 150 && (!absl::StrContains(up, "\"1\"]") || !absl::StrContains(held, "\"pod\":\""));
       ++i) {
    absl::SleepFor(absl::Milliseconds(200));
    up = HttpGetLocal(prometheus_port, "/api/v1/query?query=up%7Bjob%3D%22devscope%22%7D").body;
    held = HttpGetLocal(prometheus_port,
                        "/api/v1/query?query=devscope_container_device_info%7Bpod%21%3D%22%22%7D")
               .body;
  }
  EXPECT_THAT(up, HasSubstr("\"1\"]")) << up;
  EXPECT_THAT(held, HasSubstr("\"namespace\":\"")) << held;
  EXPECT_THAT(held, HasSubstr("\"container\":\"")) << held;

  // The node dashboard's free-devices-by-NUMA query, on real data: the demo has 8 widgets on two
  // NUMA nodes and its pods hold 4 of them, so widgets are free on some node.
  const std::string free_by_numa =
      HttpGetLocal(
          prometheus_port,
          "/api/v1/query?query=" + UrlEncode("count by (resource, numa_node) "
                                             "(devscope_node_allocatable_device_info unless on "
                                             "(instance, resource, device) "
                                             "devscope_container_device_info)"))
          .body;
  EXPECT_THAT(free_by_numa, HasSubstr("\"resource\":\"example.com/widget\"")) << free_by_numa;
  EXPECT_THAT(free_by_numa, HasSubstr("\"numa_node\":\"")) << free_by_numa;

  // Every panel of every dashboard on the demo's data (devicedir devices, NICs, the fake NVML's
  // GPUs, a shared GPU, a DRA claim): each query evaluates, and returns data unless its panel
  // shows only trouble. Some series take a while (rate windows, the first XID, the runtime's
  // first answer): ask again until all have data or 60 s pass.
  const std::vector<PanelQuery> queries = DashboardQueries();
  ASSERT_GT(queries.size(), 60u);
  std::vector<std::string> failed, empty;
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  do {
    failed.clear();
    empty.clear();
    for (const PanelQuery& query : queries) {
      size_t results = 0;
      if (!Evaluate(prometheus_port, query.expr, &results)) {
        failed.push_back(absl::StrCat(query.where, ": ", query.expr));
      } else if (results == 0 && !query.trouble_only) {
        empty.push_back(absl::StrCat(query.where, ": ", query.expr));
      }
    }
    if (failed.empty() && empty.empty()) break;
    absl::SleepFor(absl::Seconds(2));
  } while (absl::Now() < deadline);
  EXPECT_THAT(failed, IsEmpty()) << "do not evaluate:\n" << absl::StrJoin(failed, "\n");
  EXPECT_THAT(empty, IsEmpty()) << "no data:\n" << absl::StrJoin(empty, "\n");
}

}  // namespace
}  // namespace devscope
