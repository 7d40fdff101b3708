// The HTTP server on a real socket: endpoints, gzip, readiness, basic auth (an unknown user takes
// as long as a wrong password; bcrypt waits hold up neither probes nor remembered credentials), a
// renderer that throws (500, not an abort), listen addresses. The transport's limits:
// http_transport_test.
#include "exporter/http_server.h"

#include <crypt.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/integration/devscope_process.h"

namespace devscope {
namespace {

using ::testing::HasSubstr;

// Every request goes over a real TCP connection to the server.
HttpResponse Request(int port, const std::string& method, const std::string& path,
                     const std::string& extra_headers = "") {
  return HttpRequestLocal(port, method, path, extra_headers);
}

std::string Gunzip(const std::string& data) {
  z_stream stream{};
  inflateInit2(&stream, 15 + 16);
  std::string out(1 << 20, '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  stream.avail_in = static_cast<uInt>(data.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  // Z_STREAM_END only when the trailer's CRC-32 and length match what was inflated.
  const bool whole = inflate(&stream, Z_FINISH) == Z_STREAM_END;
  out.resize(stream.total_out);
  inflateEnd(&stream);
  return whole ? out : "(not a whole, valid gzip member)";
}

class HttpServerTest : public ::testing::Test {
 protected:
  void StartServer(WebConfig web_config = {}, std::string health_listen_address = "") {
    HttpServerOptions options;
    options.listen_address = "127.0.0.1:0";
    options.health_listen_address = std::move(health_listen_address);
    options.web_config = std::move(web_config);
    options.render_metrics = [this] {
      if (throw_.load()) throw std::runtime_error("renderer broke");
      return Exposition{stable_, kFresh};
    };
    options.ready = [this] { return ready_.load(); };
    auto server = HttpServer::Start(std::move(options));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    const std::string& bound = server_->bound_address();
    ASSERT_TRUE(absl::SimpleAtoi(bound.substr(bound.rfind(':') + 1), &port_)) << bound;
    ASSERT_GT(port_, 0);
    const std::string& health = server_->bound_health_address();
    if (!health.empty()) {
      ASSERT_TRUE(absl::SimpleAtoi(health.substr(health.rfind(':') + 1), &health_port_)) << health;
    }
  }

  static constexpr char kStable[] =
      "# HELP devscope_build_info x\n# TYPE devscope_build_info gauge\ndevscope_build_info 1\n";
  static constexpr char kFresh[] = "devscope_scrapes 1\n";
  static std::string Metrics() { return std::string(kStable) + kFresh; }
  // What a renderer hands out until its snapshot changes: one object, whose gzip is made once.
  std::shared_ptr<const StableText> stable_ = MakeStableText(kStable);
  std::atomic<bool> throw_{false};
  std::atomic<bool> ready_{false};
  std::unique_ptr<HttpServer> server_;
  int port_ = 0;
  int health_port_ = 0;
};

TEST_F(HttpServerTest, ServesEveryEndpoint) {
  StartServer();
  HttpResponse metrics = Request(port_, "GET", "/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_EQ(metrics.body, Metrics());
  EXPECT_THAT(metrics.headers, HasSubstr("text/plain; version=0.0.4"));

  EXPECT_EQ(Request(port_, "GET", "/healthz").status, 200);
  HttpResponse landing = Request(port_, "GET", "/");
  EXPECT_EQ(landing.status, 200);
  EXPECT_THAT(landing.body, HasSubstr("href=\"/metrics\""));
  EXPECT_EQ(Request(port_, "GET", "/nothing-here").status, 404);
  EXPECT_EQ(Request(port_, "POST", "/metrics").status, 405);
  HttpResponse head = Request(port_, "HEAD", "/metrics");
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.body, "");
}

TEST_F(HttpServerTest, ReadinessFollowsTheAgent) {
  StartServer();
  EXPECT_EQ(Request(port_, "GET", "/readyz").status, 503);
  ready_ = true;
  EXPECT_EQ(Request(port_, "GET", "/readyz").status, 200);
}

TEST_F(HttpServerTest, GzipWhenAsked) {
  StartServer();
  for (int scrape = 0; scrape < 2; ++scrape) {  // the second reuses the stable part's gzip
    HttpResponse zipped = Request(port_, "GET", "/metrics", "Accept-Encoding: gzip, deflate\r\n");
    EXPECT_EQ(zipped.status, 200);
    EXPECT_THAT(zipped.headers, HasSubstr("Content-Encoding: gzip"));
    EXPECT_EQ(Gunzip(zipped.body), Metrics());
  }
  HttpResponse refused = Request(port_, "GET", "/metrics", "Accept-Encoding: gzip;q=0\r\n");
  EXPECT_EQ(refused.body, Metrics());
}

TEST_F(HttpServerTest, ARendererThatThrowsGivesFiveHundredAndTheServerLives) {
  StartServer();
  throw_ = true;
  EXPECT_EQ(Request(port_, "GET", "/metrics").status, 500);
  throw_ = false;
  EXPECT_EQ(Request(port_, "GET", "/metrics").status, 200);
}

TEST_F(HttpServerTest, BasicAuthWithBcrypt) {
  WebConfig web;
  // bcrypt of "secret" at cost 4, made with Python's crypt module (libcrypt).
  web.basic_auth_users["prometheus"] =
      "$2b$04$bK/WuQTajV.OYHjXQxavSu5LWpmDoxzhXv5fJy8uLlwt79pQC.Qn.";
  StartServer(web);
  EXPECT_EQ(Request(port_, "GET", "/metrics").status, 401);
  EXPECT_EQ(Request(port_, "GET", "/healthz").status, 200);  // probes stay open
  const std::string wrong =
      absl::StrCat("Authorization: Basic ", absl::Base64Escape("prometheus:wrong"), "\r\n");
  EXPECT_EQ(Request(port_, "GET", "/metrics", wrong).status, 401);
  const std::string right =
      absl::StrCat("Authorization: Basic ", absl::Base64Escape("prometheus:secret"), "\r\n");
  EXPECT_EQ(Request(port_, "GET", "/metrics", right).status, 200);
}

// The health listener answers the probes without credentials, whatever the web config asks of the
// main one, and nothing else: not the metrics, not with the right credentials either.
TEST_F(HttpServerTest, TheHealthListenerServesTheProbesOnly) {
  WebConfig web;
  web.basic_auth_users["prometheus"] =
      "$2b$04$bK/WuQTajV.OYHjXQxavSu5LWpmDoxzhXv5fJy8uLlwt79pQC.Qn.";
  StartServer(web, "127.0.0.1:0");
  ASSERT_GT(health_port_, 0);
  ASSERT_NE(health_port_, port_);
  EXPECT_EQ(Request(health_port_, "GET", "/healthz").status, 200);
  EXPECT_EQ(Request(health_port_, "GET", "/readyz").status, 503);
  ready_ = true;
  EXPECT_EQ(Request(health_port_, "GET", "/readyz").status, 200);
  EXPECT_EQ(Request(health_port_, "HEAD", "/readyz").status, 200);
  const std::string right =
      absl::StrCat("Authorization: Basic ", absl::Base64Escape("prometheus:secret"), "\r\n");
  EXPECT_EQ(Request(health_port_, "GET", "/metrics", right).status, 404);
  EXPECT_EQ(Request(health_port_, "GET", "/").status, 404);
  EXPECT_EQ(Request(health_port_, "POST", "/healthz").status, 405);
  // The main listener is as it was.
  EXPECT_EQ(Request(port_, "GET", "/metrics").status, 401);
  EXPECT_EQ(Request(port_, "GET", "/metrics", right).status, 200);
  EXPECT_EQ(Request(port_, "GET", "/readyz").status, 200);
}

TEST(HttpServerAddressTest, ABadOrBusyHealthAddressNamesItsFlag) {
  HttpServerOptions options;
  options.listen_address = "127.0.0.1:0";
  options.health_listen_address = "9411";
  absl::StatusOr<std::unique_ptr<HttpServer>> bad = HttpServer::Start(options);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("--web.health-listen-address"));
  options.health_listen_address = "127.0.0.1:0";
  auto first = HttpServer::Start(options);
  ASSERT_TRUE(first.ok()) << first.status();
  options.health_listen_address = (*first)->bound_health_address();
  absl::StatusOr<std::unique_ptr<HttpServer>> busy = HttpServer::Start(options);
  EXPECT_FALSE(busy.ok());
  EXPECT_THAT(busy.status().message(), HasSubstr("--web.health-listen-address"));
}

// A bcrypt hash of `password` at `cost`, made here (libcrypt).
std::string BcryptHash(const std::string& password, int cost) {
  char setting[CRYPT_GENSALT_OUTPUT_SIZE];
  crypt_data data{};
  crypt_gensalt_rn("$2b$", cost, nullptr, 0, setting, sizeof(setting));
  return crypt_r(password.c_str(), setting, &data);
}

std::string AuthHeader(const std::string& user_and_password) {
  return absl::StrCat("Authorization: Basic ", absl::Base64Escape(user_and_password), "\r\n");
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// The time of one GET /metrics with these credentials, in ms; the answer must be 401.
double UnauthorizedMs(int port, const std::string& user_and_password) {
  const absl::Time start = absl::Now();
  const HttpResponse r = Request(port, "GET", "/metrics", AuthHeader(user_and_password));
  const double ms = absl::ToDoubleMilliseconds(absl::Now() - start);
  EXPECT_EQ(r.status, 401) << user_and_password;
  return ms;
}

// Time must not tell user names apart. Before, an unknown user was answered before any bcrypt
// (about 0.1 ms against 56 ms for a wrong password at cost 10). Interleaved medians, and a bound
// loose enough for a loaded machine: the difference it catches is a factor of hundreds.
TEST_F(HttpServerTest, AnUnknownUserTakesAsLongAsAWrongPassword) {
  WebConfig web;
  web.basic_auth_users["prometheus"] = BcryptHash("secret", 10);
  StartServer(web);
  std::vector<double> unknown, wrong;
  for (int i = 0; i < 7; ++i) {
    unknown.push_back(UnauthorizedMs(port_, "nobody:secret"));
    wrong.push_back(UnauthorizedMs(port_, "prometheus:wrong"));
  }
  const double ratio = Median(unknown) / Median(wrong);
  std::printf("unknown user %.1f ms, wrong password %.1f ms (medians of 7), ratio %.2f\n",
              Median(unknown), Median(wrong), ratio);
  EXPECT_GT(ratio, 0.5);
  EXPECT_LT(ratio, 2.0);
}

// bcrypt runs on its own worker, one at a time: a flood of wrong passwords queues there, while
// /healthz and a scrape with remembered credentials are answered at once.
TEST_F(HttpServerTest, ProbesAndRememberedCredentialsDoNotWaitBehindBcrypt) {
  WebConfig web;
  web.basic_auth_users["prometheus"] = BcryptHash("secret", 10);
  StartServer(web);
  const std::string right = AuthHeader("prometheus:secret");
  ASSERT_EQ(Request(port_, "GET", "/metrics", right).status, 200);  // now remembered
  const absl::Time flood_start = absl::Now();
  std::vector<std::thread> flood;
  for (int i = 0; i < 16; ++i) {
    flood.emplace_back([this] { UnauthorizedMs(port_, "prometheus:wrong"); });
  }
  absl::SleepFor(absl::Milliseconds(50));
  absl::Time start = absl::Now();
  EXPECT_EQ(Request(port_, "GET", "/healthz").status, 200);
  const absl::Duration probe = absl::Now() - start;
  start = absl::Now();
  HttpResponse scrape = Request(port_, "GET", "/metrics", right);
  const absl::Duration remembered = absl::Now() - start;
  for (std::thread& t : flood) t.join();
  const absl::Duration whole_flood = absl::Now() - flood_start;
  EXPECT_EQ(scrape.status, 200);
  EXPECT_EQ(scrape.body, Metrics());
  std::printf("during 16 wrong passwords (%.0f ms in all): /healthz %.1f ms, remembered %.1f ms\n",
              absl::ToDoubleMilliseconds(whole_flood), absl::ToDoubleMilliseconds(probe),
              absl::ToDoubleMilliseconds(remembered));
  EXPECT_LT(probe, whole_flood / 4);
  EXPECT_LT(remembered, whole_flood / 4);
}

TEST(HttpServerAddressTest, ListenAddressForms) {
  auto any = ParseListenAddress(":9410");
  ASSERT_TRUE(any.ok());
  EXPECT_EQ(any->host, "");
  EXPECT_EQ(any->port, 9410);
  EXPECT_EQ(ParseListenAddress("0.0.0.0:9410")->host, "");
  EXPECT_EQ(ParseListenAddress("localhost:0")->host, "127.0.0.1");
  EXPECT_EQ(ParseListenAddress("127.0.0.1:0")->host, "127.0.0.1");
  EXPECT_EQ(ParseListenAddress("[::1]:9410")->host, "::1");
  EXPECT_FALSE(ParseListenAddress("[::1:9410").ok());
  EXPECT_FALSE(ParseListenAddress("9410").ok());
  EXPECT_FALSE(ParseListenAddress(":99999").ok());
  EXPECT_FALSE(ParseListenAddress(":http").ok());
}

TEST(HttpServerAddressTest, BusyPortIsAnErrorNotAnAbort) {
  HttpServerOptions first;
  first.listen_address = "127.0.0.1:0";
  first.render_metrics = [] { return Exposition{MakeStableText(""), ""}; };
  auto a = HttpServer::Start(first);
  ASSERT_TRUE(a.ok());
  HttpServerOptions second = first;
  second.listen_address = (*a)->bound_address();
  auto b = HttpServer::Start(second);
  EXPECT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), absl::StatusCode::kUnavailable);
  second.listen_address = "example.com:0";
  EXPECT_EQ(HttpServer::Start(second).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(HttpServerAddressTest, ServesIpv6WhenTheHostHasIt) {
  HttpServerOptions options;
  options.listen_address = "[::1]:0";
  options.render_metrics = [] { return Exposition{MakeStableText(""), ""}; };
  auto server = HttpServer::Start(options);
  if (!server.ok()) GTEST_SKIP() << "no IPv6 loopback here: " << server.status();
  EXPECT_THAT((*server)->bound_address(), ::testing::StartsWith("[::1]:"));
}

}  // namespace
}  // namespace devscope
