#include "exporter/http_transport.h"

#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <exception>
#include <future>
#include <memory>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "exporter/http_connection.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"

namespace devscope {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using ErrorCode = boost::system::error_code;

// Descriptors kept for everything else the process opens (gRPC channels and servers, plugin
// sockets, collector files) when the connection limit is fitted to the descriptor limit.
constexpr int kReservedDescriptors = 128;

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
  return limit.rlim_cur == RLIM_INFINITY || limit.rlim_cur > (1 << 20)
             ? 1 << 20
             : static_cast<int>(limit.rlim_cur);
}

}  // namespace

struct HttpTransport::Impl final : HttpConnectionOwner {
  explicit Impl(Options o) : options(std::move(o)) {}

  const HttpLimits& limits() const override { return options.limits; }
  const HttpHandler& handler() const override { return options.handler; }
  const std::string& response_headers() const override { return options.response_headers; }
  // The connection entered a new phase: it becomes the youngest of its list.
  void Touch(HttpConnection& connection, bool busy) override {
    HttpConnectionList* to = busy ? &busy_connections : &waiting_connections;
    to->splice(to->end(), *connection.list, connection.position);
    connection.list = to;
  }
  void Remove(HttpConnection& connection) override {
    connection.list->erase(connection.position);
    if (open_gauge != nullptr) open_gauge->Decrement();
  }
  void Count(HttpDrop drop) override {
    prometheus::Counter* counter = dropped[static_cast<int>(drop)];
    if (counter != nullptr) counter->Increment();
  }

  // Accepts one connection, then the next.
  void Accept();
  void OnAccept(const ErrorCode& error, tcp::socket socket);
  // Closes the connection that has waited longest on its client, or else the one busy longest.
  // False when there is none.
  bool EvictOldest();
  size_t open() const { return waiting_connections.size() + busy_connections.size(); }
  void CloseAll();
  void RegisterMetrics(prometheus::Registry& registry);

  Options options;
  int max_connections = 0;  // options.limits, fitted to TLS and the descriptor limit
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> tls{nullptr, &SSL_CTX_free};
  asio::io_context io{1};
  // The loop runs until Stop(), whatever is pending.
  asio::executor_work_guard<asio::io_context::executor_type> keep_running =
      asio::make_work_guard(io);
  tcp::acceptor acceptor{io};
  asio::steady_timer accept_retry{io};
  // Every open connection, in one of two lists, each ordered by when its connections entered
  // their current phase (oldest first): those waiting on their client (for a handshake, a
  // request, or to go away after a refusal), which make room first when the table is full, and
  // those busy with a whole request (handled or written). Only the event-loop thread touches them.
  HttpConnectionList waiting_connections;
  HttpConnectionList busy_connections;
  bool descriptor_warning_logged = false;
  prometheus::Gauge* open_gauge = nullptr;
  std::array<prometheus::Counter*, 4> dropped{};  // by HttpDrop
  std::thread thread;
  bool stopped = false;  // Stop() ran (caller's thread only)
};

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
        Log().warn("http: out of descriptors with {} connections open; closing the oldest", open());
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
  if (static_cast<int>(open()) >= max_connections) EvictOldest();
  auto connection = std::make_shared<HttpConnection>(*this, std::move(socket), tls.get());
  waiting_connections.push_back(connection);
  connection->list = &waiting_connections;
  connection->position = std::prev(waiting_connections.end());
  if (open_gauge != nullptr) open_gauge->Increment();
  connection->Start();
  Accept();
}

bool HttpTransport::Impl::EvictOldest() {
  HttpConnectionList& from = waiting_connections.empty() ? busy_connections : waiting_connections;
  if (from.empty()) return false;
  std::shared_ptr<HttpConnection> oldest = from.front();  // lives through Close
  Count(HttpDrop::kEvicted);
  oldest->Close();
  return true;
}

void HttpTransport::Impl::CloseAll() {
  ErrorCode ignored;
  acceptor.close(ignored);
  accept_retry.cancel();
  for (HttpConnectionList* list : {&waiting_connections, &busy_connections}) {
    while (!list->empty()) {
      std::shared_ptr<HttpConnection> connection = list->front();
      connection->Close();
    }
  }
}

void HttpTransport::Impl::RegisterMetrics(prometheus::Registry& registry) {
  open_gauge = &prometheus::BuildGauge()
                    .Name("devscope_http_connections")
                    .Help("HTTP connections open now, waiting or not.")
                    .Register(registry)
                    .Add({});
  auto& family = prometheus::BuildCounter()
                     .Name("devscope_http_connections_dropped_total")
                     .Help(
                         "HTTP connections devscope closed on its client: evicted (the "
                         "connection limit was reached and it had waited longest), timeout "
                         "(a phase's deadline passed), refused (a head too large, malformed "
                         "or with a body), tls_handshake (the handshake failed).")
                     .Register(registry);
  dropped = {&family.Add({{"reason", "evicted"}}), &family.Add({{"reason", "timeout"}}),
             &family.Add({{"reason", "refused"}}), &family.Add({{"reason", "tls_handshake"}})};
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
    impl->tls.reset(SSL_CTX_new(TLS_server_method()));
    if (impl->tls == nullptr) return absl::InternalError("tls: OpenSSL cannot make a context");
    // Record buffers go back between records; writes may end mid-buffer and resume from a
    // buffer that has moved on (HttpConnection::WriteTls).
    SSL_CTX_set_mode(impl->tls.get(), SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                                          SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    absl::Status configured = impl->options.tls_setup(impl->tls.get());
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
  if (impl->options.registry != nullptr) impl->RegisterMetrics(*impl->options.registry);
  const int port = impl->acceptor.local_endpoint(error).port();
  Impl* raw = impl.get();
  raw->Accept();
  raw->thread = std::thread([raw] {
    // OpenSSL writes to the socket without MSG_NOSIGNAL: a client that has gone would raise SIGPIPE
    // and end the process. Blocked on this thread (the only one that writes to clients), such a
    // write fails with EPIPE instead, and the signal stays pending here, harmless.
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
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
