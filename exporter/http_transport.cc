#include "exporter/http_transport.h"

#include <openssl/ssl.h>
#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/status.hpp>
#include <cerrno>
#include <exception>
#include <future>
#include <list>
#include <optional>
#include <thread>
#include <type_traits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/log.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"

namespace devscope {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using ErrorCode = boost::system::error_code;

// Descriptors kept for everything else the process opens (gRPC channels and servers, plugin
// sockets, collector files) when the connection limit is fitted to the descriptor limit.
constexpr int kReservedDescriptors = 128;
// Bytes asked for per read while waiting for a request's first byte.
constexpr size_t kFirstRead = 1024;

// Why a connection was closed by devscope rather than by its client or after its answer.
enum class Drop { kEvicted, kTimeout, kRefused, kTlsHandshake };

// The phases of a connection; each has its own deadline (HttpLimits).
enum class Phase { kHandshake, kIdle, kHead, kHandling, kWriting, kLingering };

std::chrono::steady_clock::duration Chrono(absl::Duration d) {
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      absl::ToChronoNanoseconds(d));
}

// Raises the soft descriptor limit to the hard one and returns the soft limit now in force.
int RaiseDescriptorLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 1024;
  if (limit.rlim_cur < limit.rlim_max) {
    const rlim_t before = limit.rlim_cur;
    limit.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &limit) == 0) {
      Log().info("http: descriptor limit raised from {} to {}", before, limit.rlim_cur);
    } else {
      limit.rlim_cur = before;
    }
  }
  return limit.rlim_cur == RLIM_INFINITY ? 1 << 20 : static_cast<int>(limit.rlim_cur);
}

std::string ReplyHead(const HttpReply& reply, size_t length, absl::string_view common_headers,
                      absl::string_view connection) {
  const auto reason = http::obsolete_reason(http::int_to_status(reply.status));
  return absl::StrCat(
      "HTTP/1.1 ", reply.status, " ", absl::string_view(reason.data(), reason.size()),
      "\r\nContent-Type: ", reply.content_type, "\r\nContent-Length: ", length,
      "\r\nCache-Control: no-store\r\n", common_headers, reply.headers, connection, "\r\n");
}

class Connection {
 public:
  virtual ~Connection() = default;
  virtual void Start() = 0;
  // Closes the socket and leaves the transport's table; pending operations end with an error.
  // Idempotent.
  virtual void Close() = 0;
  // The table entry, set by the transport.
  std::list<std::shared_ptr<Connection>>::iterator position;
};

}  // namespace

struct HttpTransport::Impl {
  explicit Impl(Options o) : options(std::move(o)) {}

  // Accepts one connection, then the next.
  void Accept();
  void OnAccept(const ErrorCode& error, tcp::socket socket);
  // Closes the connection that has waited longest in its phase. False when there is none.
  bool EvictOldest();
  void Add(std::shared_ptr<Connection> connection);
  // The connection entered a new phase: it becomes the youngest.
  void Touch(Connection* connection) {
    connections.splice(connections.end(), connections, connection->position);
  }
  void Remove(Connection* connection) {
    connections.erase(connection->position);
    if (open_gauge != nullptr) open_gauge->Decrement();
  }
  void Count(Drop drop) {
    prometheus::Counter* counter = dropped[static_cast<int>(drop)];
    if (counter != nullptr) counter->Increment();
  }
  void CloseAll();

  Options options;
  int max_connections = 0;  // options.limits, fitted to TLS and the descriptor limit
  asio::io_context io{1};
  // The loop runs until Stop(), whatever is pending.
  asio::executor_work_guard<asio::io_context::executor_type> keep_running =
      asio::make_work_guard(io);
  std::optional<asio::ssl::context> ssl;
  tcp::acceptor acceptor{io};
  asio::steady_timer accept_retry{io};
  // Every open connection, ordered by when it entered its current phase (oldest first). Only
  // the event-loop thread touches it.
  std::list<std::shared_ptr<Connection>> connections;
  bool descriptor_warning_logged = false;
  prometheus::Gauge* open_gauge = nullptr;
  std::array<prometheus::Counter*, 4> dropped{};
  std::thread thread;
  bool stopped = false;  // Stop() ran (caller's thread only)
};

namespace {

// One connection over `Stream`: beast::tcp_stream, or an OpenSSL stream over one.
template <class Stream>
class Session final : public Connection, public std::enable_shared_from_this<Session<Stream>> {
 public:
  static constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;

  Session(HttpTransport::Impl& transport, Stream stream)
      : transport_(transport),
        limits_(transport.options.limits),
        stream_(std::move(stream)),
        buffer_(transport.options.limits.max_head_bytes + kFirstRead) {}

  void Start() override {
    if constexpr (kTls) {
      Enter(Phase::kHandshake, limits_.handshake_timeout);
      stream_.async_handshake(asio::ssl::stream_base::server, [self = this->shared_from_this()](
                                                                  const ErrorCode& error) {
        if (self->closed_) return;
        if (error) {
          self->transport_.Count(error == beast::error::timeout ? Drop::kTimeout
                                                                : Drop::kTlsHandshake);
          return self->Close();
        }
        self->AwaitRequest();
      });
    } else {
      AwaitRequest();
    }
  }

  void Close() override {
    if (closed_) return;
    closed_ = true;
    ErrorCode ignored;
    Lowest().socket().close(ignored);
    transport_.Remove(this);
  }

 private:
  beast::tcp_stream& Lowest() { return beast::get_lowest_layer(stream_); }

  void Enter(Phase phase, std::optional<absl::Duration> deadline) {
    phase_ = phase;
    transport_.Touch(this);
    if (deadline.has_value()) {
      Lowest().expires_after(Chrono(*deadline));
    } else {
      Lowest().expires_never();
    }
  }

  // Waits for the first byte of the next request (none of it may be buffered yet).
  void AwaitRequest() {
    if (buffer_.size() > 0) return ReadHead();  // pipelined
    buffer_.shrink_to_fit();
    Enter(Phase::kIdle, served_ == 0 ? limits_.first_byte_timeout : limits_.keep_alive_timeout);
    stream_.async_read_some(buffer_.prepare(kFirstRead),
                            [self = this->shared_from_this()](const ErrorCode& error, size_t n) {
                              if (self->closed_) return;
                              if (error) return self->Fail(error);
                              self->buffer_.commit(n);
                              self->ReadHead();
                            });
  }

  void ReadHead() {
    Enter(Phase::kHead, limits_.request_head_timeout);
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(limits_.max_head_bytes));
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = this->shared_from_this()](const ErrorCode& error, size_t) {
                              if (self->closed_) return;
                              self->OnHead(error);
                            });
  }

  // An error while waiting or reading: a timeout or a client that left is closed quietly, a head
  // that breaks the rules is answered.
  void Fail(const ErrorCode& error) {
    if (error == http::error::header_limit || error == http::error::buffer_overflow) {
      return Refuse(431, absl::StrCat("request head over ", limits_.max_head_bytes, " bytes\n"));
    }
    if (error.category() == http::make_error_code(http::error::bad_method).category() &&
        error != http::error::end_of_stream && error != http::error::partial_message) {
      return Refuse(400, "malformed request\n");
    }
    // A kept-alive connection that stays idle is ordinary; any other deadline is a client's fault.
    if (error == beast::error::timeout && !(phase_ == Phase::kIdle && served_ > 0)) {
      transport_.Count(Drop::kTimeout);
    }
    Close();
  }

  void OnHead(const ErrorCode& error) {
    if (error) return Fail(error);
    const auto& request = parser_->get();
    if (parser_->chunked() || parser_->content_length().value_or(0) > 0) {
      return Refuse(413, "no endpoint takes a request body\n");
    }
    keep_alive_ = request.keep_alive();
    http10_ = request.version() < 11;
    head_only_ = request.method() == http::verb::head;
    HttpRequest out;
    out.method = std::string(request.method_string());
    const beast::string_view target = request.target();
    out.path = std::string(target.substr(0, target.find('?')));
    if (auto it = request.find(http::field::authorization); it != request.end()) {
      out.authorization = std::string(it->value());
    }
    if (auto it = request.find(http::field::accept_encoding); it != request.end()) {
      out.accept_encoding = std::string(it->value());
    }
    parser_.reset();
    Enter(Phase::kHandling, std::nullopt);
    asio::io_context& io = transport_.io;
    HttpRespond respond = [self = this->shared_from_this(), &io](HttpReply reply) {
      asio::post(io, [self, reply = std::move(reply)]() mutable { self->Write(std::move(reply)); });
    };
    try {
      transport_.options.handler(std::move(out), std::move(respond));
    } catch (const std::exception& e) {
      Log().error("http handler failed: {}", e.what());
      Close();
    } catch (...) {
      Log().error("http handler failed with an unknown exception");
      Close();
    }
  }

  void Refuse(int status, std::string text) {
    transport_.Count(Drop::kRefused);
    keep_alive_ = false;
    head_only_ = false;
    HttpReply reply;
    reply.status = status;
    reply.body = std::move(text);
    Write(std::move(reply));
  }

  void Write(HttpReply reply) {
    if (closed_) return;
    reply_ = std::move(reply);
    const size_t length =
        reply_.body.size() + (reply_.shared_body ? reply_.shared_body->size() : 0);
    const bool close = !keep_alive_;
    reply_head_ = ReplyHead(reply_, length, transport_.options.response_headers,
                            close     ? "Connection: close\r\n"
                            : http10_ ? "Connection: keep-alive\r\n"
                                      : "");
    std::array<asio::const_buffer, 3> buffers = {asio::buffer(reply_head_), asio::const_buffer(),
                                                 asio::const_buffer()};
    if (!head_only_) {
      if (reply_.shared_body) buffers[1] = asio::buffer(*reply_.shared_body);
      buffers[2] = asio::buffer(reply_.body);
    }
    Enter(Phase::kWriting, limits_.response_timeout);
    asio::async_write(stream_, buffers,
                      [self = this->shared_from_this(), close](const ErrorCode& error, size_t) {
                        if (self->closed_) return;
                        if (error) {
                          if (error == beast::error::timeout)
                            self->transport_.Count(Drop::kTimeout);
                          return self->Close();
                        }
                        self->reply_ = HttpReply();
                        self->reply_head_.clear();
                        ++self->served_;
                        if (close) return self->Linger();
                        self->AwaitRequest();
                      });
  }

  // Half-closes, then reads and drops what the client still sends until it closes too or the
  // linger time is up: closing with unread bytes would reset the connection, and the client could
  // lose the answer.
  void Linger() {
    Enter(Phase::kLingering, limits_.linger_timeout);
    ErrorCode ignored;
    Lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
    if (!linger_buffer_) linger_buffer_ = std::make_unique<std::array<char, 1024>>();
    Drain();
  }

  void Drain() {
    Lowest().async_read_some(asio::buffer(*linger_buffer_),
                             [self = this->shared_from_this()](const ErrorCode& error, size_t) {
                               if (self->closed_) return;
                               if (error) return self->Close();  // closed, or the time is up
                               self->Drain();
                             });
  }

  HttpTransport::Impl& transport_;
  const HttpLimits& limits_;
  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::empty_body>> parser_;
  Phase phase_ = Phase::kIdle;
  bool closed_ = false;
  bool keep_alive_ = true;
  bool http10_ = false;
  bool head_only_ = false;
  int served_ = 0;   // requests answered on this connection
  HttpReply reply_;  // kept alive while it is written
  std::string reply_head_;
  std::unique_ptr<std::array<char, 1024>> linger_buffer_;
};

}  // namespace

void HttpTransport::Impl::Accept() {
  acceptor.async_accept(
      [this](const ErrorCode& error, tcp::socket socket) { OnAccept(error, std::move(socket)); });
}

void HttpTransport::Impl::OnAccept(const ErrorCode& error, tcp::socket socket) {
  if (error == asio::error::operation_aborted || !acceptor.is_open()) return;
  if (error) {
    // Out of descriptors: make room, and try again shortly rather than spin.
    if (error.value() == EMFILE || error.value() == ENFILE) {
      if (!descriptor_warning_logged) {
        Log().warn("http: out of descriptors with {} connections open; closing the oldest",
                   connections.size());
        descriptor_warning_logged = true;
      }
      EvictOldest();
    }
    accept_retry.expires_after(std::chrono::milliseconds(10));
    accept_retry.async_wait([this](const ErrorCode& e) {
      if (!e) Accept();
    });
    return;
  }
  if (static_cast<int>(connections.size()) >= max_connections) EvictOldest();
  ErrorCode ignored;
  // Answers leave in one write; Nagle would hold back the last segment of a large one.
  socket.set_option(tcp::no_delay(true), ignored);
  if (ssl.has_value()) {
    Add(std::make_shared<Session<asio::ssl::stream<beast::tcp_stream>>>(
        *this, asio::ssl::stream<beast::tcp_stream>(beast::tcp_stream(std::move(socket)), *ssl)));
  } else {
    Add(std::make_shared<Session<beast::tcp_stream>>(*this, beast::tcp_stream(std::move(socket))));
  }
  Accept();
}

void HttpTransport::Impl::Add(std::shared_ptr<Connection> connection) {
  Connection* raw = connection.get();
  connections.push_back(std::move(connection));
  raw->position = std::prev(connections.end());
  if (open_gauge != nullptr) open_gauge->Increment();
  raw->Start();
}

bool HttpTransport::Impl::EvictOldest() {
  if (connections.empty()) return false;
  std::shared_ptr<Connection> oldest = connections.front();  // lives through Close
  Count(Drop::kEvicted);
  oldest->Close();
  return true;
}

void HttpTransport::Impl::CloseAll() {
  ErrorCode ignored;
  acceptor.close(ignored);
  accept_retry.cancel();
  while (!connections.empty()) {
    std::shared_ptr<Connection> connection = connections.front();
    connection->Close();
  }
}

absl::StatusOr<std::unique_ptr<HttpTransport>> HttpTransport::Start(Options options) {
  ErrorCode error;
  const asio::ip::address address = options.host.empty()
                                        ? asio::ip::address(asio::ip::address_v4::any())
                                        : asio::ip::make_address(options.host, error);
  if (error) {
    return absl::InvalidArgumentError(
        absl::StrCat("--web.listen-address: \"", options.host, "\" is not an IP address"));
  }
  auto impl = std::make_unique<Impl>(std::move(options));
  const HttpLimits& limits = impl->options.limits;
  const int descriptors = RaiseDescriptorLimit();
  impl->max_connections =
      std::min(limits.max_connections, std::max(16, descriptors - kReservedDescriptors));
  if (impl->max_connections < limits.max_connections) {
    Log().info("http: at most {} connections (descriptor limit {})", impl->max_connections,
               descriptors);
  }
  if (impl->options.tls_setup) {
    impl->ssl.emplace(asio::ssl::context::tls_server);
    SSL_CTX* ctx = impl->ssl->native_handle();
    // Idle connections give their record buffers back to OpenSSL.
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    absl::Status configured = impl->options.tls_setup(ctx);
    if (!configured.ok()) return configured;
    impl->max_connections = std::min(impl->max_connections, limits.max_tls_connections);
  }
  const tcp::endpoint endpoint(address, static_cast<unsigned short>(impl->options.port));
  impl->acceptor.open(endpoint.protocol(), error);
  if (!error) impl->acceptor.set_option(tcp::acceptor::reuse_address(true), error);
  if (!error) impl->acceptor.bind(endpoint, error);
  if (!error) impl->acceptor.listen(asio::socket_base::max_listen_connections, error);
  if (error) {
    return absl::UnavailableError(absl::StrCat("--web.listen-address: cannot listen on ",
                                               impl->options.host.empty() ? "" : impl->options.host,
                                               ":", impl->options.port, ": ", error.message()));
  }
  if (impl->options.registry != nullptr) {
    prometheus::Registry& registry = *impl->options.registry;
    impl->open_gauge = &prometheus::BuildGauge()
                            .Name("devscope_http_connections")
                            .Help("HTTP connections open now, waiting or not.")
                            .Register(registry)
                            .Add({});
    auto& dropped = prometheus::BuildCounter()
                        .Name("devscope_http_connections_dropped_total")
                        .Help(
                            "HTTP connections devscope closed on its client: evicted (the "
                            "connection limit was reached and it had waited longest), timeout "
                            "(a phase's deadline passed), refused (a head too large, malformed "
                            "or with a body), tls_handshake (the handshake failed).")
                        .Register(registry);
    impl->dropped = {&dropped.Add({{"reason", "evicted"}}), &dropped.Add({{"reason", "timeout"}}),
                     &dropped.Add({{"reason", "refused"}}),
                     &dropped.Add({{"reason", "tls_handshake"}})};
  }
  const int port = impl->acceptor.local_endpoint(error).port();
  Impl* raw = impl.get();
  raw->Accept();
  raw->thread = std::thread([raw] {
    // Handlers catch what they call; should anything escape anyway, the loop goes on (run() may
    // be called again after an exception), so Stop() still finds it running.
    for (;;) {
      try {
        raw->io.run();
        return;
      } catch (const std::exception& e) {
        Log().error("http: event loop handler failed: {}", e.what());
      } catch (...) {
        Log().error("http: event loop handler failed");
      }
    }
  });
  return std::unique_ptr<HttpTransport>(new HttpTransport(std::move(impl), port));
}

HttpTransport::HttpTransport(std::unique_ptr<Impl> impl, int port)
    : impl_(std::move(impl)), port_(port) {}

HttpTransport::~HttpTransport() { Stop(); }

void HttpTransport::Stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  std::promise<void> closed;
  asio::post(impl_->io, [this, &closed] {
    impl_->CloseAll();
    closed.set_value();
  });
  closed.get_future().wait();
  impl_->io.stop();
  impl_->thread.join();
}

}  // namespace devscope
