// The connection side of devscope's HTTP server, built so that no client can take the metrics
// away by holding connections: one event-loop thread (Boost.Asio) accepts, does TLS handshakes
// (OpenSSL), reads request heads into Boost.Beast's parser and writes responses
// (exporter/http_connection.h).
// A connection that waits costs a descriptor and a few KiB, never a thread; every phase has a
// deadline; a request head has a size limit; a request with a body is refused; and when the
// connection limit is reached, the connection that has waited longest on its client is closed to
// make room (one busy with a whole request only when none waits), so a scrape always gets in and
// is not pushed out once its request is in. docs/security.md gives the limits and why.
//
// What a request asks for is decided by the handler (exporter/http_server.h), which may answer
// from any thread; the transport writes the answer on its own thread.
#ifndef DEVSCOPE_EXPORTER_HTTP_TRANSPORT_H_
#define DEVSCOPE_EXPORTER_HTTP_TRANSPORT_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

typedef struct ssl_ctx_st SSL_CTX;

namespace prometheus {
class Registry;
}  // namespace prometheus

namespace devscope {

// Deliberate limits (docs/security.md). Tests shorten the times.
struct HttpLimits {
  // Connections open at once, waiting or not, lowered to what the descriptor limit allows.
  // Beyond it, the connection that has waited longest on its client is closed.
  int max_connections = 4096;
  // The same over HTTPS, lower: a TLS connection that has sent its ClientHello holds OpenSSL's
  // state, about 16 KiB, for as long as it is open (HttpConnection): 8 MiB at most.
  int max_tls_connections = 512;
  // From accept to the end of the TLS handshake.
  absl::Duration handshake_timeout = absl::Seconds(5);
  // From accept (or the handshake) to a new connection's first request byte.
  absl::Duration first_byte_timeout = absl::Seconds(10);
  // Between a response and the next request's first byte on a kept-alive connection (Prometheus
  // keeps its connections between scrapes; such a connection costs only a descriptor).
  absl::Duration keep_alive_timeout = absl::Minutes(2);
  // From a request's first byte to the end of its head: a client that trickles its head is cut.
  absl::Duration request_head_timeout = absl::Seconds(5);
  // For writing a whole response (1.7 MB at 250 pods and 1,024 devices, uncompressed).
  absl::Duration response_timeout = absl::Seconds(30);
  // After a refusal (431, 400, 413): how long what the client still sends is read and dropped
  // before closing, so that the close does not reset the connection under the answer.
  absl::Duration linger_timeout = absl::Seconds(1);
  // Request line and headers together; more is answered 431.
  size_t max_head_bytes = 8192;
};

struct HttpRequest {
  std::string method;
  std::string path;  // the request target without its query
  std::string authorization;
  std::string accept_encoding;
};

struct HttpReply {
  int status = 200;
  std::string content_type = "text/plain";
  std::string headers;  // extra header lines, each ending in \r\n
  // The body: `shared_body` (when set) then `body`. Shared so that the cached exposition is
  // written from where it is, however slowly the client reads.
  std::shared_ptr<const std::string> shared_body;
  std::string body;
};

// Called on the transport's thread for every request head. `respond` must be called exactly
// once, from any thread, at any later time; it must not throw (it does not block).
using HttpRespond = std::function<void(HttpReply)>;
using HttpHandler = std::function<void(HttpRequest, HttpRespond)>;

class HttpTransport {
 public:
  struct Options {
    std::string host;  // an IP address; empty: every IPv4 address
    int port = 0;      // 0: a free port
    // HTTPS when set: configures the transport's OpenSSL context (versions, suites, certificate,
    // client verification); an error fails Start.
    std::function<absl::Status(SSL_CTX*)> tls_setup;
    HttpLimits limits;
    HttpHandler handler;
    std::string response_headers;              // header lines added to every response
    prometheus::Registry* registry = nullptr;  // connection metrics, when set
  };

  // Binds, listens and starts the event loop. An address that is busy or not local is
  // Unavailable; one that is not an IP address is InvalidArgument.
  static absl::StatusOr<std::unique_ptr<HttpTransport>> Start(Options options);
  ~HttpTransport();  // Stop(), then frees what remains

  // Closes the listener and every connection and ends the thread. Replies given after this are
  // dropped. Idempotent.
  void Stop();

  // The port bound (the real one when 0 was asked for).
  int port() const { return port_; }

  struct Impl;  // defined in http_transport.cc

 private:
  HttpTransport(std::unique_ptr<Impl> impl, int port);
  std::unique_ptr<Impl> impl_;
  const int port_;
};

}  // namespace devscope

#endif  // DEVSCOPE_EXPORTER_HTTP_TRANSPORT_H_
