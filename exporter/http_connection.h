// One client connection of the HTTP transport (exporter/http_transport.h), on the transport's
// event loop: the TLS handshake (OpenSSL, driven on the non-blocking socket), the wait for a
// request, its head read into Boost.Beast's parser, the handler's answer written back, and a
// lingering close after a refusal. Each phase has its own deadline (HttpLimits); the connection
// tells its owner when it enters one, so that the owner can close the one that waited longest
// when the table is full.
//
// TLS state is made only once the client's whole ClientHello record is in the socket, and
// OpenSSL gives its record buffers back between records (SSL_MODE_RELEASE_BUFFERS): a silent
// connection or one that sent half a ClientHello costs what a plain one does, and an idle TLS one
// about 16 KiB (measured; with Asio's ssl::stream each connection cost 52 KiB before a byte
// arrived, and 46 KiB more once half a ClientHello had).
//
// Internal to the transport; everything here runs on its event-loop thread.
#ifndef DEVSCOPE_EXPORTER_HTTP_CONNECTION_H_
#define DEVSCOPE_EXPORTER_HTTP_CONNECTION_H_

#include <array>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <cstdint>
#include <list>
#include <memory>
#include <optional>
#include <string>

#include "absl/time/time.h"
#include "exporter/http_transport.h"

typedef struct ssl_st SSL;

namespace devscope {

// Why devscope closed a connection on its client (devscope_http_connections_dropped_total).
enum class HttpDrop { kEvicted, kTimeout, kRefused, kTlsHandshake };

class HttpConnection;
using HttpConnectionList = std::list<std::shared_ptr<HttpConnection>>;

// What a connection needs from the transport that holds it.
class HttpConnectionOwner {
 public:
  virtual ~HttpConnectionOwner() = default;
  virtual const HttpLimits& limits() const = 0;
  virtual const HttpHandler& handler() const = 0;
  virtual const std::string& response_headers() const = 0;  // header lines for every response
  // The connection entered a phase: waiting on its client, or busy with a whole request.
  virtual void Touch(HttpConnection& connection, bool busy) = 0;
  // The connection is closed.
  virtual void Remove(HttpConnection& connection) = 0;
  virtual void Count(HttpDrop drop) = 0;
};

class HttpConnection : public std::enable_shared_from_this<HttpConnection> {
 public:
  // `tls`: the OpenSSL context for HTTPS, or null for HTTP.
  HttpConnection(HttpConnectionOwner& owner, boost::asio::ip::tcp::socket socket, SSL_CTX* tls);
  ~HttpConnection();
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;

  void Start();
  // Closes the socket and tells the owner; what is pending ends quietly. Idempotent.
  void Close();

  // Where the owner keeps it.
  HttpConnectionList* list = nullptr;
  HttpConnectionList::iterator position;

 private:
  enum class Phase { kHandshake, kIdle, kHead, kHandling, kWriting, kLingering };
  // What a non-blocking read or write on the socket (or through OpenSSL) came to.
  enum class Io { kDone, kWantRead, kWantWrite, kClosed, kError };
  using Step = void (HttpConnection::*)();

  // Enters `phase` and arms its deadline (none: no deadline).
  void Enter(Phase phase, std::optional<absl::Duration> deadline);
  void OnDeadline();
  // Runs `next` once the socket is readable (kWantRead) or writable (kWantWrite).
  void Wait(Io want, Step next);
  Io TlsResult(int result);
  // Appends what can be read now to in_.
  Io ReadSome();

  bool FirstRecordArrived();
  void Handshake();
  void AwaitRequest();
  void ReadFirst();
  void ReadHead();
  void OnHead();
  // A read error or a head that breaks the rules: answered (431, 400) or closed quietly.
  void Fail(const boost::system::error_code& error);
  void Refuse(int status, std::string text);
  void Write(HttpReply reply);
  void WriteTls();
  void Written();
  void Linger();
  void Drain();

  HttpConnectionOwner& owner_;
  const HttpLimits& limits_;
  boost::asio::ip::tcp::socket socket_;
  boost::asio::steady_timer deadline_;
  uint64_t deadline_generation_ = 0;  // a deadline that fired after being re-armed is stale
  SSL_CTX* const tls_;
  SSL* ssl_ = nullptr;  // made on the first byte of a TLS connection
  Phase phase_ = Phase::kIdle;
  bool closed_ = false;
  std::string in_;  // read, not yet parsed
  std::optional<boost::beast::http::request_parser<boost::beast::http::empty_body>> parser_;
  bool keep_alive_ = true;
  bool http10_ = false;
  bool head_only_ = false;
  int served_ = 0;   // requests answered on this connection
  HttpReply reply_;  // kept alive while it is written
  std::string reply_head_;
  std::array<std::string_view, 3> unwritten_;  // what is left of head, shared body, body (TLS)
  bool close_after_write_ = false;
};

}  // namespace devscope

#endif  // DEVSCOPE_EXPORTER_HTTP_CONNECTION_H_
