#include "exporter/http_server.h"

#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <exception>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/log.h"
#include "exporter/gzip.h"

namespace devscope {
namespace {

constexpr char kTextFormat[] = "text/plain; version=0.0.4; charset=utf-8";

bool AcceptsGzip(absl::string_view header) {
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

HttpReply Reply(int status, std::string body, std::string headers = "") {
  HttpReply reply;
  reply.status = status;
  reply.body = std::move(body);
  reply.headers = std::move(headers);
  return reply;
}

// "HOST:PORT" as bound, IPv6 hosts in brackets, every IPv4 address as 0.0.0.0.
std::string BoundAddress(const std::string& host, int port) {
  if (host.empty()) return absl::StrCat("0.0.0.0:", port);
  if (absl::StrContains(host, ':')) return absl::StrCat("[", host, "]:", port);
  return absl::StrCat(host, ":", port);
}

HttpReply Unauthorized() {
  return Reply(401, "unauthorized\n", "WWW-Authenticate: Basic realm=\"devscope\"\r\n");
}

// Runs `make` and answers what it returns, or 500 when it throws: nothing escapes a worker.
void AnswerWith(const HttpRespond& respond, const std::function<HttpReply()>& make) {
  HttpReply reply;
  try {
    reply = make();
  } catch (const std::exception& e) {
    Log().error("http handler failed: {}", e.what());
    reply = Reply(500, "internal error\n");
  } catch (...) {
    Log().error("http handler failed with an unknown exception");
    reply = Reply(500, "internal error\n");
  }
  respond(std::move(reply));
}

}  // namespace

// The two worker threads; bcrypt goes through a strand, so at most one runs at a time and the
// other thread is always free to render.
struct HttpServer::Workers {
  boost::asio::thread_pool pool{2};
  boost::asio::strand<boost::asio::thread_pool::executor_type> bcrypt =
      boost::asio::make_strand(pool.get_executor());
};

absl::StatusOr<ListenAddress> ParseListenAddress(const std::string& listen_address) {
  const size_t colon = listen_address.rfind(':');
  if (colon == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("\"", listen_address, "\" is not [HOST]:PORT"));
  }
  ListenAddress address;
  address.host = listen_address.substr(0, colon);
  if (!absl::SimpleAtoi(listen_address.substr(colon + 1), &address.port) || address.port < 0 ||
      address.port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("\"", listen_address, "\" has no valid port"));
  }
  if (address.host == "0.0.0.0") address.host.clear();
  if (address.host == "localhost") address.host = "127.0.0.1";
  if (absl::StartsWith(address.host, "[")) {
    if (!absl::EndsWith(address.host, "]")) {
      return absl::InvalidArgumentError(absl::StrCat("\"", listen_address, "\" has no closing ]"));
    }
    address.host = address.host.substr(1, address.host.size() - 2);
  }
  return address;
}

HttpServer::HttpServer(HttpServerOptions options)
    : options_(std::move(options)),
      landing_page_(LandingPage(options_.telemetry_path)),
      workers_(std::make_unique<Workers>()) {}

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(HttpServerOptions options) {
  auto address = ParseListenAddress(options.listen_address);
  if (!address.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--web.listen-address: ", address.status().message()));
  }
  std::unique_ptr<HttpServer> server(new HttpServer(std::move(options)));
  const HttpServerOptions& o = server->options_;
  if (o.web_config.auth_required()) {
    server->auth_ = std::make_unique<BasicAuth>(o.web_config.basic_auth_users);
  }
  HttpTransport::Options transport;
  transport.host = address->host;
  transport.port = address->port;
  transport.limits = o.limits;
  transport.registry = o.registry;
  for (const auto& [name, value] : o.web_config.response_headers) {
    absl::StrAppend(&transport.response_headers, name, ": ", value, "\r\n");
  }
  if (o.web_config.tls.has_value()) {
    auto tls = TlsServer::Create(*o.web_config.tls, o.registry);
    if (!tls.ok()) return tls.status();
    server->tls_ = *std::move(tls);
    TlsServer* tls_server = server->tls_.get();
    transport.tls_setup = [tls_server](SSL_CTX* ctx) { return tls_server->Configure(ctx); };
  }
  HttpServer* self = server.get();
  transport.handler = [self](HttpRequest request, HttpRespond respond) {
    self->Handle(std::move(request), std::move(respond));
  };
  auto started = HttpTransport::Start(std::move(transport));
  if (!started.ok()) return started.status();
  server->transport_ = *std::move(started);
  server->bound_address_ = BoundAddress(address->host, server->transport_->port());
  if (!o.health_listen_address.empty()) {
    auto health_address = ParseListenAddress(o.health_listen_address);
    if (!health_address.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--web.health-listen-address: ", health_address.status().message()));
    }
    // No TLS, no credentials, no response headers of the web config: a probe's answer is two
    // words, and the kubelet has nothing to present.
    HttpTransport::Options health;
    health.host = health_address->host;
    health.port = health_address->port;
    health.limits = o.limits;
    health.handler = [self](HttpRequest request, HttpRespond respond) {
      self->HandleHealth(request, respond);
    };
    auto health_started = HttpTransport::Start(std::move(health));
    if (!health_started.ok()) {
      return absl::Status(
          health_started.status().code(),
          absl::StrCat("--web.health-listen-address: ", health_started.status().message()));
    }
    server->health_transport_ = *std::move(health_started);
    server->bound_health_address_ =
        BoundAddress(health_address->host, server->health_transport_->port());
  }
  return server;
}

HttpServer::~HttpServer() {
  // No new requests, then no work in flight: the workers' answers would go to a stopped loop.
  if (health_transport_ != nullptr) health_transport_->Stop();
  if (transport_ != nullptr) transport_->Stop();
  workers_->pool.stop();
  workers_->pool.join();
}

std::optional<HttpReply> HttpServer::Probe(const HttpRequest& request) const {
  if (request.method != "GET" && request.method != "HEAD") {
    return Reply(405, "only GET and HEAD\n", "Allow: GET, HEAD\r\n");
  }
  if (request.path == "/healthz") return Reply(200, "ok\n");
  if (request.path == "/readyz") {
    const bool ready = options_.ready == nullptr || options_.ready();
    return ready ? Reply(200, "ready\n") : Reply(503, "not ready\n");
  }
  return std::nullopt;
}

void HttpServer::HandleHealth(const HttpRequest& request, const HttpRespond& respond) const {
  std::optional<HttpReply> probe = Probe(request);
  respond(probe.has_value() ? *std::move(probe)
                            : Reply(404, "only /healthz and /readyz are served here\n"));
}

void HttpServer::Handle(HttpRequest request, HttpRespond respond) {
  // Probes stay open so a kubelet can check liveness without credentials.
  if (std::optional<HttpReply> probe = Probe(request)) return respond(*std::move(probe));
  if (auth_ == nullptr) return Serve(request, std::move(respond));
  switch (auth_->CheckRemembered(request.authorization)) {
    case BasicAuth::Verdict::kAllowed:
      return Serve(request, std::move(respond));
    case BasicAuth::Verdict::kDenied:
      return respond(Unauthorized());
    case BasicAuth::Verdict::kNeedsBcrypt:
      boost::asio::post(workers_->bcrypt, [this, request = std::move(request),
                                           respond = std::move(respond)]() mutable {
        bool allowed = false;
        try {
          allowed = auth_->Verify(request.authorization);
        } catch (const std::exception& e) {
          Log().error("basic auth failed: {}", e.what());
        } catch (...) {
          Log().error("basic auth failed with an unknown exception");
        }
        if (!allowed) return respond(Unauthorized());
        try {
          Serve(request, respond);
        } catch (...) {  // nothing escapes a worker
          respond(Reply(500, "internal error\n"));
        }
      });
      return;
  }
}

void HttpServer::Serve(const HttpRequest& request, HttpRespond respond) {
  if (request.path == options_.telemetry_path) {
    boost::asio::post(workers_->pool, [this, request, respond = std::move(respond)] {
      AnswerWith(respond, [&] { return Metrics(request); });
    });
    return;
  }
  if (request.path == "/") {
    HttpReply reply = Reply(200, landing_page_);
    reply.content_type = "text/html; charset=utf-8";
    return respond(std::move(reply));
  }
  respond(Reply(404, "not found\n"));
}

HttpReply HttpServer::Metrics(const HttpRequest& request) const {
  Exposition text = options_.render_metrics();
  HttpReply reply;
  reply.content_type = kTextFormat;
  // Both written from the text itself (or its gzip, made once per text), which the reply keeps
  // alive.
  if (AcceptsGzip(request.accept_encoding)) {
    const GzipPrefix& prefix = text.stable->Gzip();
    std::string end = GzipEnd(prefix, text.fresh);
    if (!end.empty()) {
      reply.shared_body = std::shared_ptr<const std::string>(text.stable, &prefix.bytes);
      reply.body = std::move(end);
      reply.headers = "Content-Encoding: gzip\r\nVary: Accept-Encoding\r\n";
      return reply;
    }
  }
  reply.shared_body = std::shared_ptr<const std::string>(text.stable, &text.stable->text());
  reply.body = std::move(text.fresh);
  return reply;
}

}  // namespace devscope
