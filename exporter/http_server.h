// The HTTP endpoints of interface.md on CivetWeb's C API: the telemetry path, /healthz, /readyz
// and a landing page, over HTTPS when the web config asks for TLS. Every handler catches
// everything: an exception escaping into CivetWeb's C callback would abort the process.
#ifndef DEVSCOPE_EXPORTER_HTTP_SERVER_H_
#define DEVSCOPE_EXPORTER_HTTP_SERVER_H_

#include <functional>
#include <initializer_list>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "exporter/exposition.h"
#include "exporter/tls.h"
#include "exporter/web_config.h"

struct mg_context;
struct mg_connection;

namespace devscope {

struct HttpServerOptions {
  std::string listen_address = ":9410";  // [HOST]:PORT; PORT 0 picks a free port
  std::string telemetry_path = "/metrics";
  WebConfig web_config;
  // The exposition text (exporter/exposition.h); called on CivetWeb's worker threads, concurrently.
  std::function<Exposition()> render_metrics;
  // True once the first poll and first collector pass are done.
  std::function<bool()> ready;
  // Where the TLS metrics go; none when null.
  prometheus::Registry* registry = nullptr;
};

class HttpServer {
 public:
  // Binds and starts serving. An unusable or busy address is an error, not an abort.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(HttpServerOptions options);
  ~HttpServer();

  // "HOST:PORT" actually bound (the real port when 0 was asked for).
  const std::string& bound_address() const { return bound_address_; }
  // "http" or "https".
  const char* scheme() const { return tls_ != nullptr ? "https" : "http"; }

 private:
  explicit HttpServer(HttpServerOptions options) : options_(std::move(options)) {}
  static int Handle(mg_connection* conn, void* self);
  void Dispatch(mg_connection* conn);

  // Writes the response: status line, headers, then the body pieces in order.
  void Send(mg_connection* conn, int status, absl::string_view content_type,
            std::initializer_list<absl::string_view> body,
            absl::string_view extra_headers = "") const;
  void Send(mg_connection* conn, int status, absl::string_view content_type, absl::string_view body,
            absl::string_view extra_headers = "") const {
    Send(conn, status, content_type, {body}, extra_headers);
  }
  const HttpServerOptions options_;
  std::string response_headers_;  // http_server_config.headers, as header lines
  std::unique_ptr<TlsServer> tls_;
  std::string tls_error_;  // why CivetWeb's init_ssl failed, for Start's error
  mg_context* context_ = nullptr;
  std::string bound_address_;
};

// CivetWeb's listening_ports value for a --web.listen-address, or InvalidArgument.
absl::StatusOr<std::string> CivetListeningPort(const std::string& listen_address);

}  // namespace devscope

#endif  // DEVSCOPE_EXPORTER_HTTP_SERVER_H_
