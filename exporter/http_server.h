// The HTTP endpoints of interface.md: the telemetry path, /healthz, /readyz and a landing page,
// over HTTPS when the web config asks for TLS, behind basic auth when it names users.
// Connections are exporter/http_transport.h's (one event loop, deadlines, limits); what takes
// time runs on two worker threads: rendering the exposition, and bcrypt, one at a time so that a
// flood of wrong passwords costs at most one core and never delays /healthz or a scrape whose
// credentials are remembered (exporter/basic_auth.h). docs/security.md has the whole design.
#ifndef DEVSCOPE_EXPORTER_HTTP_SERVER_H_
#define DEVSCOPE_EXPORTER_HTTP_SERVER_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "exporter/basic_auth.h"
#include "exporter/exposition.h"
#include "exporter/http_transport.h"
#include "exporter/tls.h"
#include "exporter/web_config.h"

namespace prometheus {
class Registry;
}  // namespace prometheus

namespace devscope {

struct HttpServerOptions {
  std::string listen_address = ":9410";  // [HOST]:PORT; PORT 0 picks a free port
  // [HOST]:PORT of a second listener, plain HTTP without credentials whatever the web config says,
  // that serves /healthz and /readyz only: for probes that can present neither credentials nor a
  // client certificate (the kubelet's). Empty: none.
  std::string health_listen_address;
  std::string telemetry_path = "/metrics";
  WebConfig web_config;
  HttpLimits limits;
  // The exposition text (exporter/exposition.h); called on a worker thread, possibly while an
  // earlier call still runs on the other.
  std::function<Exposition()> render_metrics;
  // True once the first poll and first collector pass are done. Called on the event loop: must
  // not block.
  std::function<bool()> ready;
  // Where the connection and TLS metrics go; none when null.
  prometheus::Registry* registry = nullptr;
};

// A listen address ([HOST]:PORT, as --web.listen-address) taken apart: HOST is an IP address (IPv6
// in brackets), empty for every IPv4 address; "localhost" is 127.0.0.1.
struct ListenAddress {
  std::string host;
  int port = 0;
};
absl::StatusOr<ListenAddress> ParseListenAddress(const std::string& listen_address);

class HttpServer {
 public:
  // Binds and starts serving. An unusable or busy address is an error, not an abort.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(HttpServerOptions options);
  ~HttpServer();

  // "HOST:PORT" actually bound (the real port when 0 was asked for).
  const std::string& bound_address() const { return bound_address_; }
  // "http" or "https".
  const char* scheme() const { return tls_ != nullptr ? "https" : "http"; }
  // "HOST:PORT" of the health listener; empty without one.
  const std::string& bound_health_address() const { return bound_health_address_; }

 private:
  struct Workers;
  explicit HttpServer(HttpServerOptions options);
  // On the event loop: answers what is quick, hands the rest to the workers.
  void Handle(HttpRequest request, HttpRespond respond);
  // The health listener's requests: the probes, nothing else.
  void HandleHealth(const HttpRequest& request, const HttpRespond& respond) const;
  // The probes' answer, or none when `request` is not a probe.
  std::optional<HttpReply> Probe(const HttpRequest& request) const;
  // What an allowed request gets (the metrics are made on a worker).
  void Serve(const HttpRequest& request, HttpRespond respond);
  HttpReply Metrics(const HttpRequest& request) const;

  const HttpServerOptions options_;
  std::string landing_page_;
  std::unique_ptr<BasicAuth> auth_;  // null without basic_auth_users
  std::unique_ptr<TlsServer> tls_;
  std::string bound_address_;
  std::string bound_health_address_;
  // Declared before the workers so that they stop and go first: their answers are posted to the
  // transport's loop.
  std::unique_ptr<HttpTransport> transport_;
  std::unique_ptr<HttpTransport> health_transport_;  // null without a health listener
  std::unique_ptr<Workers> workers_;
};

}  // namespace devscope

#endif  // DEVSCOPE_EXPORTER_HTTP_SERVER_H_
