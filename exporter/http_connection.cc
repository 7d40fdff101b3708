#include "exporter/http_connection.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <algorithm>
#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/status.hpp>
#include <chrono>
#include <exception>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/log.h"

namespace devscope {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using ErrorCode = boost::system::error_code;

// Bytes read per call.
constexpr size_t kReadChunk = 4096;
// The content type of a TLS record that carries handshake messages.
constexpr unsigned char kTlsHandshakeRecord = 0x16;
// A TLS record's header and the longest body TLS allows (2^14 plus expansion).
constexpr int kMaxTlsRecord = 5 + (1 << 14) + 2048;
// Bytes handed to OpenSSL per write: a few records.
constexpr size_t kTlsWriteChunk = 64 * 1024;

std::chrono::steady_clock::duration Chrono(absl::Duration d) {
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      absl::ToChronoNanoseconds(d));
}

std::string ReplyHead(const HttpReply& reply, size_t length, absl::string_view common_headers,
                      absl::string_view connection) {
  const auto reason = http::obsolete_reason(http::int_to_status(reply.status));
  return absl::StrCat(
      "HTTP/1.1 ", reply.status, " ", absl::string_view(reason.data(), reason.size()),
      "\r\nContent-Type: ", reply.content_type, "\r\nContent-Length: ", length,
      "\r\nCache-Control: no-store\r\n", common_headers, reply.headers, connection, "\r\n");
}

bool IsParseError(const ErrorCode& error) {
  return error.category() == http::make_error_code(http::error::bad_method).category() &&
         error != http::error::need_more && error != http::error::end_of_stream &&
         error != http::error::partial_message;
}

}  // namespace

HttpConnection::HttpConnection(HttpConnectionOwner& owner, tcp::socket socket, SSL_CTX* tls)
    : owner_(owner),
      limits_(owner.limits()),
      socket_(std::move(socket)),
      deadline_(socket_.get_executor()),
      tls_(tls) {
  ErrorCode ignored;
  socket_.non_blocking(true, ignored);
  // Answers leave in one write; Nagle would hold back the last segment of a large one.
  socket_.set_option(tcp::no_delay(true), ignored);
}

HttpConnection::~HttpConnection() { SSL_free(ssl_); }

void HttpConnection::Start() {
  if (tls_ == nullptr) return AwaitRequest();
  Enter(Phase::kHandshake, limits_.handshake_timeout);
  Wait(Io::kWantRead, &HttpConnection::Handshake);  // no TLS state before the client speaks
}

void HttpConnection::Close() {
  if (closed_) return;
  closed_ = true;
  deadline_.cancel();
  ErrorCode ignored;
  socket_.close(ignored);
  owner_.Remove(*this);
}

void HttpConnection::Enter(Phase phase, std::optional<absl::Duration> deadline) {
  phase_ = phase;
  owner_.Touch(*this, phase == Phase::kHandling || phase == Phase::kWriting);
  const uint64_t generation = ++deadline_generation_;
  if (!deadline.has_value()) {
    deadline_.cancel();
    return;
  }
  deadline_.expires_after(Chrono(*deadline));
  deadline_.async_wait([self = shared_from_this(), generation](const ErrorCode& error) {
    if (error || self->closed_ || generation != self->deadline_generation_) return;
    self->OnDeadline();
  });
}

void HttpConnection::OnDeadline() {
  // A kept-alive connection that stays idle, or a refused one that lingers, is ordinary.
  const bool ordinary = (phase_ == Phase::kIdle && served_ > 0) || phase_ == Phase::kLingering;
  if (!ordinary) owner_.Count(HttpDrop::kTimeout);
  Close();
}

void HttpConnection::Wait(Io want, Step next) {
  socket_.async_wait(want == Io::kWantWrite ? tcp::socket::wait_write : tcp::socket::wait_read,
                     [self = shared_from_this(), next](const ErrorCode& error) {
                       if (self->closed_) return;
                       if (error) return self->Close();
                       ((*self).*next)();
                     });
}

HttpConnection::Io HttpConnection::TlsResult(int result) {
  const int error = SSL_get_error(ssl_, result);
  ERR_clear_error();
  switch (error) {
    case SSL_ERROR_WANT_READ:
      return Io::kWantRead;
    case SSL_ERROR_WANT_WRITE:
      return Io::kWantWrite;
    case SSL_ERROR_ZERO_RETURN:
      return Io::kClosed;
    default:
      return Io::kError;
  }
}

HttpConnection::Io HttpConnection::ReadSome() {
  char buffer[kReadChunk];
  if (ssl_ != nullptr) {
    size_t got = 0;
    ERR_clear_error();
    const int result = SSL_read_ex(ssl_, buffer, sizeof(buffer), &got);
    if (result != 1) return TlsResult(result);
    in_.append(buffer, got);
    return Io::kDone;
  }
  ErrorCode error;
  const size_t got = socket_.read_some(asio::buffer(buffer), error);
  if (error == asio::error::would_block || error == asio::error::try_again) return Io::kWantRead;
  if (error == asio::error::eof) return Io::kClosed;
  if (error) return Io::kError;
  in_.append(buffer, got);
  return Io::kDone;
}

// True once the client's first TLS record (its ClientHello) is whole in the socket, without
// reading it; until then the socket is made readable only when enough bytes are there
// (SO_RCVLOWAT), so a half-sent ClientHello costs no TLS state and no busy loop.
bool HttpConnection::FirstRecordArrived() {
  const int fd = socket_.native_handle();
  unsigned char header[5];
  const ssize_t n = recv(fd, header, sizeof(header), MSG_PEEK);
  int need = sizeof(header);
  if (n == static_cast<ssize_t>(sizeof(header))) {
    if (header[0] != kTlsHandshakeRecord) return true;  // not TLS: OpenSSL will say so
    need += (header[3] << 8) | header[4];
    int available = 0;
    // A record longer than TLS allows is OpenSSL's to refuse, not ours to wait for.
    if (need > kMaxTlsRecord || ioctl(fd, FIONREAD, &available) != 0 || available >= need) {
      need = 1;
    }
  } else if (n <= 0) {
    need = 1;  // closed or failed: OpenSSL finds out
  }
  setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &need, sizeof(need));
  return need == 1;
}

void HttpConnection::Handshake() {
  if (ssl_ == nullptr) {
    if (!FirstRecordArrived()) return Wait(Io::kWantRead, &HttpConnection::Handshake);
    ssl_ = SSL_new(tls_);
    if (ssl_ == nullptr || SSL_set_fd(ssl_, socket_.native_handle()) != 1) {
      ERR_clear_error();
      owner_.Count(HttpDrop::kTlsHandshake);
      return Close();
    }
    SSL_set_accept_state(ssl_);
  }
  ERR_clear_error();
  const int result = SSL_do_handshake(ssl_);
  if (result == 1) return AwaitRequest();
  const Io io = TlsResult(result);
  if (io == Io::kWantRead || io == Io::kWantWrite) return Wait(io, &HttpConnection::Handshake);
  owner_.Count(HttpDrop::kTlsHandshake);
  Close();
}

void HttpConnection::AwaitRequest() {
  if (!in_.empty()) return ReadHead();  // pipelined
  in_.shrink_to_fit();
  Enter(Phase::kIdle, served_ == 0 ? limits_.first_byte_timeout : limits_.keep_alive_timeout);
  ReadFirst();
}

void HttpConnection::ReadFirst() {
  const Io io = ReadSome();
  if (io == Io::kDone) return ReadHead();
  if (io == Io::kWantRead || io == Io::kWantWrite) return Wait(io, &HttpConnection::ReadFirst);
  Close();  // the client left
}

void HttpConnection::ReadHead() {
  if (phase_ != Phase::kHead) {
    Enter(Phase::kHead, limits_.request_head_timeout);
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(limits_.max_head_bytes));
  }
  for (;;) {
    if (!in_.empty()) {
      ErrorCode error;
      // The parser takes nothing until it has the whole head, then the head alone.
      const size_t used = parser_->put(asio::buffer(in_), error);
      in_.erase(0, used);
      if (!error && parser_->is_header_done()) return OnHead();
      if (error && error != http::error::need_more) return Fail(error);
    }
    const Io io = ReadSome();
    if (io == Io::kDone) continue;
    if (io == Io::kWantRead || io == Io::kWantWrite) return Wait(io, &HttpConnection::ReadHead);
    return Close();  // the client left mid-head
  }
}

void HttpConnection::Fail(const ErrorCode& error) {
  if (error == http::error::header_limit || error == http::error::buffer_overflow) {
    return Refuse(431, absl::StrCat("request head over ", limits_.max_head_bytes, " bytes\n"));
  }
  if (IsParseError(error)) return Refuse(400, "malformed request\n");
  Close();
}

void HttpConnection::OnHead() {
  const auto& request = parser_->get();
  if (parser_->chunked() || parser_->content_length().value_or(0) > 0) {
    return Refuse(413, "no endpoint takes a request body\n");
  }
  keep_alive_ = request.keep_alive();
  http10_ = request.version() < 11;
  head_only_ = request.method() == http::verb::head;
  HttpRequest out;
  out.method = std::string(request.method_string());
  const auto target = request.target();
  out.path = std::string(target.substr(0, target.find('?')));
  if (auto it = request.find(http::field::authorization); it != request.end()) {
    out.authorization = std::string(it->value());
  }
  if (auto it = request.find(http::field::accept_encoding); it != request.end()) {
    out.accept_encoding = std::string(it->value());
  }
  parser_.reset();
  Enter(Phase::kHandling, std::nullopt);
  HttpRespond respond = [self = shared_from_this()](HttpReply reply) {
    auto executor = self->socket_.get_executor();
    asio::post(executor,
               [self, reply = std::move(reply)]() mutable { self->Write(std::move(reply)); });
  };
  try {
    owner_.handler()(std::move(out), std::move(respond));
  } catch (const std::exception& e) {
    Log().error("http handler failed: {}", e.what());
    Close();
  } catch (...) {
    Log().error("http handler failed with an unknown exception");
    Close();
  }
}

void HttpConnection::Refuse(int status, std::string text) {
  owner_.Count(HttpDrop::kRefused);
  keep_alive_ = false;
  head_only_ = false;
  HttpReply reply;
  reply.status = status;
  reply.body = std::move(text);
  Write(std::move(reply));
}

void HttpConnection::Write(HttpReply reply) {
  if (closed_) return;
  reply_ = std::move(reply);
  const std::string_view shared =
      reply_.shared_body ? std::string_view(*reply_.shared_body) : std::string_view();
  close_after_write_ = !keep_alive_;
  reply_head_ = ReplyHead(reply_, shared.size() + reply_.body.size(), owner_.response_headers(),
                          close_after_write_ ? "Connection: close\r\n"
                          : http10_          ? "Connection: keep-alive\r\n"
                                             : "");
  unwritten_ = {reply_head_, head_only_ ? std::string_view() : shared,
                head_only_ ? std::string_view() : std::string_view(reply_.body)};
  Enter(Phase::kWriting, limits_.response_timeout);
  if (ssl_ != nullptr) return WriteTls();
  const std::array<asio::const_buffer, 3> buffers = {
      asio::buffer(unwritten_[0]), asio::buffer(unwritten_[1]), asio::buffer(unwritten_[2])};
  asio::async_write(socket_, buffers, [self = shared_from_this()](const ErrorCode& error, size_t) {
    if (self->closed_) return;
    if (error) return self->Close();
    self->Written();
  });
}

void HttpConnection::WriteTls() {
  for (std::string_view& piece : unwritten_) {
    while (!piece.empty()) {
      size_t written = 0;
      ERR_clear_error();
      const int result =
          SSL_write_ex(ssl_, piece.data(), std::min(piece.size(), kTlsWriteChunk), &written);
      if (result == 1) {
        piece.remove_prefix(written);
        continue;
      }
      const Io io = TlsResult(result);
      if (io == Io::kWantRead || io == Io::kWantWrite) return Wait(io, &HttpConnection::WriteTls);
      return Close();
    }
  }
  Written();
}

void HttpConnection::Written() {
  reply_ = HttpReply();
  reply_head_.clear();
  ++served_;
  if (close_after_write_) return Linger();
  AwaitRequest();
}

// Half-closes, then reads and drops what the client still sends until it closes too or the
// linger time is up: closing with unread bytes would reset the connection, and the client could
// lose the answer.
void HttpConnection::Linger() {
  Enter(Phase::kLingering, limits_.linger_timeout);
  if (ssl_ != nullptr) {
    ERR_clear_error();
    SSL_shutdown(ssl_);  // close_notify, if the socket takes it now
    ERR_clear_error();
  }
  ErrorCode ignored;
  socket_.shutdown(tcp::socket::shutdown_send, ignored);
  in_.clear();
  Drain();
}

void HttpConnection::Drain() {
  char buffer[kReadChunk];
  for (;;) {
    ErrorCode error;
    socket_.read_some(asio::buffer(buffer), error);
    if (error == asio::error::would_block || error == asio::error::try_again) {
      return Wait(Io::kWantRead, &HttpConnection::Drain);
    }
    if (error) return Close();  // the client closed too
  }
}

}  // namespace devscope
