// The HTTP transport on real sockets, with shortened deadlines: keep-alive and pipelining, what a
// head that breaks the rules gets (431, 400, 413, then a close), the deadlines of each phase,
// the connection cap (the connection that waited longest makes room), and a handler that answers
// later from another thread without holding up anyone else.
#include "exporter/http_transport.h"

#include <netinet/in.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"

namespace devscope {
namespace {

using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::StartsWith;

int Connect(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

void Send(int fd, const std::string& data) {
  size_t sent = 0;
  while (sent < data.size()) {
    const ssize_t n = send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return;
    sent += static_cast<size_t>(n);
  }
}

struct Received {
  std::string data;
  bool closed = false;  // the server closed (or reset) the connection
  absl::Duration waited;
};

// Reads until the server closes the connection, `stop_after` bytes arrived, or `timeout`.
Received Read(int fd, absl::Duration timeout, size_t stop_after = std::string::npos) {
  Received r;
  const absl::Time start = absl::Now();
  while (r.data.size() < stop_after) {
    const absl::Duration left = timeout - (absl::Now() - start);
    if (left <= absl::ZeroDuration()) break;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1) <= 0) continue;
    char buf[65536];
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) {
      r.closed = true;
      break;
    }
    r.data.append(buf, static_cast<size_t>(n));
  }
  r.waited = absl::Now() - start;
  return r;
}

// A directory with a self-signed certificate for 127.0.0.1: tls.crt, tls.key.
std::string MakeCertificate() {
  char dir[] = "/tmp/devscope-transport.XXXXXX";
  const std::string path = mkdtemp(dir);
  const std::string command = absl::StrCat(
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 "
      "-subj /CN=devscope -keyout ",
      path, "/tls.key -out ", path, "/tls.crt >/dev/null 2>&1");
  EXPECT_EQ(std::system(command.c_str()), 0);
  return path;
}

// A TLS client connection (certificate not checked: the transport is what is tested), or null.
struct TlsClient {
  explicit TlsClient(int port) : fd(Connect(port)) {
    ctx = SSL_CTX_new(TLS_client_method());
    ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    connected = fd >= 0 && SSL_connect(ssl) == 1;
  }
  ~TlsClient() {
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(fd);
  }
  void Send(const std::string& data) { SSL_write(ssl, data.data(), static_cast<int>(data.size())); }
  // Everything until the server closes.
  std::string ReadAll() {
    std::string all;
    char buf[65536];
    int n;
    while ((n = SSL_read(ssl, buf, sizeof(buf))) > 0) all.append(buf, static_cast<size_t>(n));
    return all;
  }
  int fd;
  SSL_CTX* ctx;
  SSL* ssl;
  bool connected = false;
};

class HttpTransportTest : public ::testing::Test {
 protected:
  void Start(HttpLimits limits = {}, bool tls = false) {
    HttpTransport::Options options;
    options.host = "127.0.0.1";
    options.limits = limits;
    if (tls) {
      dir_ = MakeCertificate();
      options.tls_setup = [this](SSL_CTX* ctx) {
        if (SSL_CTX_use_certificate_chain_file(ctx, (dir_ + "/tls.crt").c_str()) != 1 ||
            SSL_CTX_use_PrivateKey_file(ctx, (dir_ + "/tls.key").c_str(), SSL_FILETYPE_PEM) != 1) {
          return absl::InvalidArgumentError("no certificate");
        }
        return absl::OkStatus();
      };
    }
    options.registry = &registry_;
    options.handler = [this](HttpRequest request, HttpRespond respond) {
      ++requests_;
      if (request.path == "/later") {
        // Answered from another thread, 300 ms later.
        later_.emplace_back([respond] {
          absl::SleepFor(absl::Milliseconds(300));
          HttpReply reply;
          reply.body = "later\n";
          respond(reply);
        });
        return;
      }
      HttpReply reply;
      if (request.path == "/big") {
        reply.shared_body = big_;
      } else {
        reply.shared_body = std::make_shared<const std::string>(request.method + " ");
        reply.body = request.path + "\n";
      }
      respond(reply);
    };
    auto transport = HttpTransport::Start(std::move(options));
    ASSERT_TRUE(transport.ok()) << transport.status();
    transport_ = *std::move(transport);
  }
  void TearDown() override {
    // Answers given after Stop are dropped; the transport must outlive every answer.
    if (transport_ != nullptr) transport_->Stop();
    for (std::thread& t : later_) t.join();
    transport_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  double Dropped(const std::string& reason) {
    for (const auto& family : registry_.Collect()) {
      if (family.name != "devscope_http_connections_dropped_total") continue;
      for (const auto& metric : family.metric) {
        if (metric.label.at(0).value == reason) return metric.counter.value;
      }
    }
    return -1;
  }
  double Open() {
    for (const auto& family : registry_.Collect()) {
      if (family.name == "devscope_http_connections") return family.metric.at(0).gauge.value;
    }
    return -1;
  }

  prometheus::Registry registry_;
  std::atomic<int> requests_{0};
  std::unique_ptr<HttpTransport> transport_;
  std::vector<std::thread> later_;  // touched on the transport's thread, joined after it stops
  std::string dir_;                 // the TLS certificate's
  const std::shared_ptr<const std::string> big_ = std::make_shared<const std::string>(4 << 20, 'x');
};

TEST_F(HttpTransportTest, KeepsConnectionsAliveAndAnswersPipelinedRequestsInOrder) {
  Start();
  const int fd = Connect(transport_->port());
  Send(fd, "GET /one HTTP/1.1\r\nHost: x\r\n\r\n");
  Received first = Read(fd, absl::Milliseconds(300));
  EXPECT_THAT(first.data, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(first.data, HasSubstr("Content-Length: 9\r\n"));
  EXPECT_THAT(first.data, EndsWith("\r\n\r\nGET /one\n"));
  EXPECT_FALSE(first.closed);
  // Two requests in one packet, the second asking to close.
  Send(fd,
       "HEAD /two?x=1 HTTP/1.1\r\nHost: x\r\n\r\nGET /three HTTP/1.1\r\nConnection: close\r\n\r\n");
  Received rest = Read(fd, absl::Seconds(5));
  EXPECT_TRUE(rest.closed);
  const size_t second = rest.data.find("HTTP/1.1 200");
  const size_t third = rest.data.find("HTTP/1.1 200", second + 1);
  ASSERT_NE(third, std::string::npos) << rest.data;
  // HEAD: the length of what GET would send, and no body.
  EXPECT_THAT(rest.data.substr(second, third - second), HasSubstr("Content-Length: 10\r\n"));
  EXPECT_THAT(rest.data.substr(second, third - second), EndsWith("\r\n\r\n"));
  EXPECT_THAT(rest.data.substr(third), HasSubstr("Connection: close\r\n\r\nGET /three\n"));
  close(fd);
  EXPECT_EQ(requests_.load(), 3);
}

TEST_F(HttpTransportTest, HeadsThatBreakTheRulesAreAnsweredAndClosed) {
  Start();
  struct Case {
    std::string request;
    std::string status;
  };
  const std::vector<Case> cases = {
      {absl::StrCat("GET /", std::string(9000, 'a'), " HTTP/1.1\r\nHost: x\r\n\r\n"), "431"},
      {absl::StrCat("GET / HTTP/1.1\r\nX-Big: ", std::string(9000, 'b'), "\r\n\r\n"), "431"},
      {"GARBAGE\r\n\r\n", "400"},
      {"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", "400"},
      {"GET /metrics HTTP/1.1\r\nContent-Length: 100000\r\n\r\nabc", "413"},
      {"GET /metrics HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n", "413"},
  };
  for (const Case& c : cases) {
    const int fd = Connect(transport_->port());
    Send(fd, c.request);
    Received r = Read(fd, absl::Seconds(5));
    EXPECT_THAT(r.data, StartsWith("HTTP/1.1 " + c.status)) << c.request.substr(0, 60);
    EXPECT_THAT(r.data, HasSubstr("Connection: close\r\n"));
    EXPECT_TRUE(r.closed) << c.status;
    close(fd);
  }
  EXPECT_EQ(requests_.load(), 0);
  EXPECT_EQ(Dropped("refused"), cases.size());
}

TEST_F(HttpTransportTest, ATrickledHeadIsCutAtItsDeadline) {
  HttpLimits limits;
  limits.request_head_timeout = absl::Milliseconds(300);
  Start(limits);
  const int fd = Connect(transport_->port());
  const absl::Time start = absl::Now();
  Send(fd, "GET /metrics HTTP/1.1\r\n");
  bool closed = false;
  for (int i = 0; i < 40 && !closed; ++i) {  // one byte every 50 ms, for up to 2 s
    Send(fd, "X");
    closed = Read(fd, absl::Milliseconds(50)).closed;
  }
  EXPECT_TRUE(closed);
  EXPECT_LT(absl::Now() - start, absl::Seconds(1.5));
  EXPECT_EQ(requests_.load(), 0);
  EXPECT_EQ(Dropped("timeout"), 1);
  close(fd);
}

TEST_F(HttpTransportTest, SilentAndIdleConnectionsAreClosedAtTheirDeadlines) {
  HttpLimits limits;
  limits.first_byte_timeout = absl::Milliseconds(300);
  limits.keep_alive_timeout = absl::Milliseconds(600);
  Start(limits);
  const int silent = Connect(transport_->port());
  Received r = Read(silent, absl::Seconds(5));
  EXPECT_TRUE(r.closed);
  EXPECT_EQ(r.data, "");
  EXPECT_LT(r.waited, absl::Seconds(2));
  close(silent);

  const int kept = Connect(transport_->port());
  Send(kept, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
  Received answered = Read(kept, absl::Seconds(5), 60);
  EXPECT_THAT(answered.data, StartsWith("HTTP/1.1 200"));
  // Kept longer than a new connection's first-byte deadline, then closed.
  Received idle = Read(kept, absl::Seconds(5));
  EXPECT_TRUE(idle.closed);
  EXPECT_GT(idle.waited, absl::Milliseconds(450));
  close(kept);
  EXPECT_EQ(Dropped("timeout"), 1);  // the silent one; an idle kept-alive one is ordinary
}

TEST_F(HttpTransportTest, AFullTableMakesRoomByClosingTheLongestWaiting) {
  HttpLimits limits;
  limits.max_connections = 8;
  Start(limits);
  // The oldest connection has a whole request in (answered 300 ms later): it is not pushed out.
  const int busy = Connect(transport_->port());
  Send(busy, "GET /later HTTP/1.1\r\nConnection: close\r\n\r\n");
  std::vector<int> waiting;
  for (int i = 0; i < 7; ++i) {
    absl::SleepFor(absl::Milliseconds(20));  // accepted in this order
    waiting.push_back(Connect(transport_->port()));
  }
  absl::SleepFor(absl::Milliseconds(20));
  const int fd = Connect(transport_->port());
  Send(fd, "GET /scrape HTTP/1.1\r\nConnection: close\r\n\r\n");
  Received r = Read(fd, absl::Seconds(5));
  EXPECT_THAT(r.data, HasSubstr("GET /scrape"));
  close(fd);
  // The first of the waiting made room; the others still wait, and the busy one is answered.
  EXPECT_TRUE(Read(waiting[0], absl::Seconds(2)).closed);
  for (size_t i = 1; i < waiting.size(); ++i) {
    EXPECT_FALSE(Read(waiting[i], absl::Milliseconds(10)).closed) << i;
  }
  EXPECT_THAT(Read(busy, absl::Seconds(5)).data, HasSubstr("later\n"));
  EXPECT_EQ(Dropped("evicted"), 1);
  // The answered one lingers until its client closes too; then the six still waiting remain.
  close(busy);
  for (int i = 0; i < 100 && Open() != 6; ++i) absl::SleepFor(absl::Milliseconds(20));
  EXPECT_EQ(Open(), 6);
  for (int w : waiting) close(w);
}

TEST_F(HttpTransportTest, AHandlerThatAnswersLaterHoldsUpNoOne) {
  Start();
  const int slow = Connect(transport_->port());
  Send(slow, "GET /later HTTP/1.1\r\nConnection: close\r\n\r\n");
  const int fast = Connect(transport_->port());
  Send(fast, "GET /now HTTP/1.1\r\nConnection: close\r\n\r\n");
  Received now = Read(fast, absl::Seconds(5));
  EXPECT_THAT(now.data, HasSubstr("GET /now"));
  EXPECT_LT(now.waited, absl::Milliseconds(250));
  Received later = Read(slow, absl::Seconds(5));
  EXPECT_THAT(later.data, HasSubstr("later\n"));
  close(slow);
  close(fast);
}

TEST_F(HttpTransportTest, StopClosesEveryConnection) {
  Start();
  const int fd = Connect(transport_->port());
  Send(fd, "GET /partial HTTP/1.1\r\n");
  absl::SleepFor(absl::Milliseconds(50));
  transport_->Stop();
  EXPECT_TRUE(Read(fd, absl::Seconds(2)).closed);
  close(fd);
  EXPECT_EQ(Connect(transport_->port()), -1);
}

TEST_F(HttpTransportTest, ServesTlsAndSurvivesClientsThatLeaveMidway) {
  Start({}, /*tls=*/true);
  {
    TlsClient client(transport_->port());
    ASSERT_TRUE(client.connected);
    client.Send("GET /big HTTP/1.1\r\nConnection: close\r\n\r\n");
    const std::string answer = client.ReadAll();
    EXPECT_THAT(answer, StartsWith("HTTP/1.1 200 OK\r\n"));
    EXPECT_EQ(answer.size() - answer.find("\r\n\r\n") - 4, big_->size());
  }
  // Clients that leave right after the handshake (while session tickets are being written) and in
  // the middle of a large answer: writes to them fail, nothing raises SIGPIPE.
  for (int i = 0; i < 20; ++i) {
    TlsClient gone(transport_->port());
    EXPECT_TRUE(gone.connected);
  }
  for (int i = 0; i < 5; ++i) {
    TlsClient reader(transport_->port());
    reader.Send("GET /big HTTP/1.1\r\n\r\n");
    char first[100];
    EXPECT_GT(SSL_read(reader.ssl, first, sizeof(first)), 0);
  }
  TlsClient after(transport_->port());
  ASSERT_TRUE(after.connected);
  after.Send("GET /still-here HTTP/1.1\r\nConnection: close\r\n\r\n");
  EXPECT_THAT(after.ReadAll(), HasSubstr("GET /still-here\n"));
}

TEST_F(HttpTransportTest, SilentAndHalfHelloTlsConnectionsAreClosedAtTheHandshakeDeadline) {
  HttpLimits limits;
  limits.handshake_timeout = absl::Milliseconds(300);
  Start(limits, /*tls=*/true);
  const int silent = Connect(transport_->port());
  const int half = Connect(transport_->port());
  // A handshake record announcing 512 bytes, and the first few of them.
  Send(half, std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11));
  for (int fd : {silent, half}) {
    Received r = Read(fd, absl::Seconds(5));
    EXPECT_TRUE(r.closed);
    EXPECT_LT(r.waited, absl::Seconds(2));
    close(fd);
  }
  EXPECT_EQ(Dropped("timeout"), 2);
  // Bytes that are not TLS at all: the handshake fails at once.
  const int plain = Connect(transport_->port());
  Send(plain, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_LT(Read(plain, absl::Seconds(5)).waited, absl::Seconds(1));
  close(plain);
  EXPECT_EQ(Dropped("tls_handshake"), 1);
}

}  // namespace
}  // namespace devscope
