#include "exporter/http_server.h"

#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "civetweb.h"
#include "common/log.h"
#include "exporter/gzip.h"

namespace devscope {
namespace {

constexpr char kTextFormat[] = "text/plain; version=0.0.4; charset=utf-8";

bool AcceptsGzip(mg_connection* conn) {
  const char* header = mg_get_header(conn, "Accept-Encoding");
  if (header == nullptr) return false;
  for (absl::string_view coding : absl::StrSplit(header, ',')) {
    std::vector<absl::string_view> params = absl::StrSplit(coding, ';');
    if (absl::StripAsciiWhitespace(params[0]) != "gzip") continue;
    double q = 1;
    for (size_t i = 1; i < params.size(); ++i) {
      absl::string_view param = absl::StripAsciiWhitespace(params[i]);
      if (absl::ConsumePrefix(&param, "q=") && !absl::SimpleAtod(param, &q)) q = 0;
    }
    return q > 0;
  }
  return false;
}

std::string LandingPage(const std::string& telemetry_path) {
  return absl::StrCat(
      "<!DOCTYPE html>\n<html><head><title>devscope</title></head><body>\n"
      "<h1>devscope</h1>\n<p>Which pod holds which device, and how that device is doing.</p>\n"
      "<ul>\n<li><a href=\"",
      telemetry_path, "\">Metrics</a></li>\n",
      "<li><a href=\"/healthz\">Health</a></li>\n<li><a href=\"/readyz\">Readiness</a></li>\n",
      "</ul>\n</body></html>\n");
}

}  // namespace

void HttpServer::Send(mg_connection* conn, int status, absl::string_view content_type,
                      std::initializer_list<absl::string_view> body,
                      absl::string_view extra_headers) const {
  size_t length = 0;
  for (absl::string_view piece : body) length += piece.size();
  const std::string head =
      absl::StrCat("HTTP/1.1 ", status, " ", mg_get_response_code_text(conn, status), "\r\n",
                   "Content-Type: ", content_type, "\r\nContent-Length: ", length, "\r\n",
                   "Cache-Control: no-store\r\n", response_headers_, extra_headers, "\r\n");
  mg_write(conn, head.data(), head.size());
  const mg_request_info* request = mg_get_request_info(conn);
  if (request != nullptr && std::strcmp(request->request_method, "HEAD") == 0) return;
  // mg_write returns early on a closed connection; nothing to do about a client that left.
  for (absl::string_view piece : body) mg_write(conn, piece.data(), piece.size());
}

absl::StatusOr<std::string> CivetListeningPort(const std::string& listen_address) {
  const size_t colon = listen_address.rfind(':');
  if (colon == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("--web.listen-address: \"", listen_address, "\" is not [HOST]:PORT"));
  }
  const std::string host = listen_address.substr(0, colon);
  int port = 0;
  if (!absl::SimpleAtoi(listen_address.substr(colon + 1), &port) || port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--web.listen-address: \"", listen_address, "\" has no valid port"));
  }
  if (host.empty() || host == "0.0.0.0") return absl::StrCat(port);
  if (absl::StartsWith(host, "[") && !mg_check_feature(MG_FEATURES_IPV6)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--web.listen-address: \"", listen_address,
        "\" is IPv6, and this CivetWeb is built without IPv6 (Debian 12's is); use :PORT or an "
        "IPv4 address"));
  }
  if (host == "localhost") return absl::StrCat("127.0.0.1:", port);
  return absl::StrCat(host, ":", port);
}

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(HttpServerOptions options) {
  auto port = CivetListeningPort(options.listen_address);
  if (!port.ok()) return port.status();
  std::unique_ptr<HttpServer> server(new HttpServer(std::move(options)));
  for (const auto& [name, value] : server->options_.web_config.response_headers) {
    absl::StrAppend(&server->response_headers_, name, ": ", value, "\r\n");
  }

  mg_init_library(0);
  mg_callbacks callbacks{};
  std::string listening_ports = *port;
  if (server->options_.web_config.tls.has_value()) {
    absl::Status enabled = EnableCivetWebTls();
    if (!enabled.ok()) return enabled;
    auto tls = TlsServer::Create(*server->options_.web_config.tls, server->options_.registry);
    if (!tls.ok()) return tls.status();
    server->tls_ = *std::move(tls);
    listening_ports += "s";  // CivetWeb's mark for a TLS port
    callbacks.init_ssl = [](void* ssl_ctx, void* user_data) {
      auto* self = static_cast<HttpServer*>(user_data);
      try {
        absl::Status status = self->tls_->Configure(static_cast<SSL_CTX*>(ssl_ctx));
        if (status.ok()) return 1;  // configured: CivetWeb loads no certificate itself
        self->tls_error_ = std::string(status.message());
      } catch (const std::exception& e) {
        self->tls_error_ = e.what();
      } catch (...) {
        self->tls_error_ = "unknown exception";
      }
      return -1;
    };
  }
  // Few threads: a node agent is scraped by one or two Prometheus servers.
  const char* civet_options[] = {"listening_ports",
                                 listening_ports.c_str(),
                                 "num_threads",
                                 "4",
                                 "request_timeout_ms",
                                 "10000",
                                 nullptr};
  // CivetWeb logs a bind failure itself; route it through our logger instead of stderr.
  callbacks.log_message = [](const mg_connection*, const char* message) {
    Log().warn("http server: {}", message);
    return 1;
  };
  server->context_ = mg_start(&callbacks, server.get(), civet_options);
  if (server->context_ == nullptr && !server->tls_error_.empty()) {
    return absl::InvalidArgumentError(server->tls_error_);
  }
  if (server->context_ == nullptr) {
    return absl::UnavailableError(absl::StrCat("--web.listen-address: cannot listen on ",
                                               server->options_.listen_address,
                                               " (address in use or not local?)"));
  }
  mg_set_request_handler(server->context_, "/", &HttpServer::Handle, server.get());

  mg_server_port ports[4];
  const int n = mg_get_server_ports(server->context_, 4, ports);
  const size_t colon = server->options_.listen_address.rfind(':');
  std::string host = server->options_.listen_address.substr(0, colon);
  if (host.empty()) host = "0.0.0.0";
  server->bound_address_ = absl::StrCat(host, ":", n > 0 ? ports[0].port : 0);
  return server;
}

HttpServer::~HttpServer() {
  if (context_ != nullptr) mg_stop(context_);
}

int HttpServer::Handle(mg_connection* conn, void* self) {
  auto* server = static_cast<HttpServer*>(self);
  // The C boundary: nothing may escape.
  try {
    server->Dispatch(conn);
  } catch (const std::exception& e) {
    Log().error("http handler failed: {}", e.what());
    server->Send(conn, 500, "text/plain", "internal error\n");
  } catch (...) {
    Log().error("http handler failed with an unknown exception");
    server->Send(conn, 500, "text/plain", "internal error\n");
  }
  return 1;
}

void HttpServer::Dispatch(mg_connection* conn) {
  const mg_request_info* request = mg_get_request_info(conn);
  const std::string path = request->local_uri != nullptr ? request->local_uri : "/";
  const std::string method = request->request_method;
  if (method != "GET" && method != "HEAD") {
    Send(conn, 405, "text/plain", "only GET and HEAD\n", "Allow: GET, HEAD\r\n");
    return;
  }
  // Probes stay open so a kubelet can check liveness without credentials.
  if (path == "/healthz") {
    Send(conn, 200, "text/plain", "ok\n");
    return;
  }
  if (path == "/readyz") {
    const bool ready = options_.ready == nullptr || options_.ready();
    Send(conn, ready ? 200 : 503, "text/plain", ready ? "ready\n" : "not ready\n");
    return;
  }
  if (options_.web_config.auth_required()) {
    const char* auth = mg_get_header(conn, "Authorization");
    if (auth == nullptr || !options_.web_config.Authorized(auth)) {
      Send(conn, 401, "text/plain", "unauthorized\n",
           "WWW-Authenticate: Basic realm=\"devscope\"\r\n");
      return;
    }
  }
  if (path == options_.telemetry_path) {
    const Exposition text = options_.render_metrics();
    if (AcceptsGzip(conn)) {
      // The view's gzip is made once per text, from pieces compressed once per change.
      const GzipPrefix& prefix = text.stable->Gzip();
      const std::string end = GzipEnd(prefix, text.fresh);
      if (!end.empty()) {
        Send(conn, 200, kTextFormat, {prefix.bytes, end},
             "Content-Encoding: gzip\r\nVary: Accept-Encoding\r\n");
        return;
      }
    }
    Send(conn, 200, kTextFormat, {text.stable->text(), text.fresh});
    return;
  }
  if (path == "/") {
    Send(conn, 200, "text/html; charset=utf-8", LandingPage(options_.telemetry_path));
    return;
  }
  Send(conn, 404, "text/plain", "not found\n");
}

}  // namespace devscope
