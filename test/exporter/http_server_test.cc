// The HTTP server on a real socket: endpoints, gzip, readiness, basic auth, and a renderer that
// throws (the process must answer 500, not abort inside CivetWeb).
#include "exporter/http_server.h"

#include <zlib.h>

#include <atomic>
#include <stdexcept>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "civetweb.h"
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
  void StartServer(WebConfig web_config = {}) {
    HttpServerOptions options;
    options.listen_address = "127.0.0.1:0";
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

TEST(HttpServerAddressTest, ListenAddressForms) {
  EXPECT_EQ(*CivetListeningPort(":9410"), "9410");
  EXPECT_EQ(*CivetListeningPort("127.0.0.1:0"), "127.0.0.1:0");
  // Debian 12's CivetWeb has no IPv6: a clear refusal, not a bind failure blamed on the address.
  if (mg_check_feature(MG_FEATURES_IPV6)) {
    EXPECT_EQ(*CivetListeningPort("[::1]:9410"), "[::1]:9410");
  } else {
    EXPECT_THAT(CivetListeningPort("[::1]:9410").status().message(), HasSubstr("without IPv6"));
  }
  EXPECT_FALSE(CivetListeningPort("9410").ok());
  EXPECT_FALSE(CivetListeningPort(":99999").ok());
  EXPECT_FALSE(CivetListeningPort(":http").ok());
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
}

}  // namespace
}  // namespace devscope
