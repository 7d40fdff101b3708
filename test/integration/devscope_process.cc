#include "test/integration/devscope_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

extern char** environ;

namespace devscope {
namespace {

std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

int DecodeWaitStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// The port of the first "listening address=HOST:PORT" in `log`, or 0.
int ListeningPort(const std::string& log) {
  const std::string kMarker = "listening address=";
  const size_t at = log.find(kMarker);
  if (at == std::string::npos) return 0;
  size_t end = at + kMarker.size();
  while (end < log.size() &&
         (std::isalnum(static_cast<unsigned char>(log[end])) || log[end] == '.' ||
          log[end] == ':' || log[end] == '[' || log[end] == ']' || log[end] == '-')) {
    ++end;
  }
  const std::string address = log.substr(at + kMarker.size(), end - at - kMarker.size());
  const size_t colon = address.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(address.substr(colon + 1), &port)) return 0;
  return port;
}

}  // namespace

pid_t Spawn(const std::vector<std::string>& argv, const std::string& stdin_path,
            const std::string& stdout_path, const std::string& stderr_path,
            const std::vector<std::string>& extra_env) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, stdin_path.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  if (stderr_path == stdout_path) {
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
  } else {
    posix_spawn_file_actions_addopen(&actions, 2, stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
  }
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  std::vector<char*> env;
  for (char** e = environ; *e != nullptr; ++e) env.push_back(*e);
  for (const std::string& e : extra_env) env.push_back(const_cast<char*>(e.c_str()));
  env.push_back(nullptr);
  const int rc = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), env.data());
  posix_spawn_file_actions_destroy(&actions);
  return rc == 0 ? pid : -1;
}

std::optional<int> WaitUpTo(pid_t pid, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    int status = 0;
    const pid_t got = waitpid(pid, &status, WNOHANG);
    if (got == pid) return DecodeWaitStatus(status);
    if (got < 0 && errno != EINTR) return -1;
    if (absl::Now() >= deadline) return std::nullopt;
    absl::SleepFor(absl::Milliseconds(10));
  }
}

std::string DevicedirOwnerFlag() { return absl::StrCat("--collector.devicedir.owner=", geteuid()); }

std::string MakeTempDir() {
  char dir[] = "/tmp/dsit-XXXXXX";
  if (mkdtemp(dir) == nullptr) return "";
  return dir;
}

void RemoveTree(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

std::string ScrapeUntil(const DevscopeProcess& p,
                        const std::function<bool(const std::string&)>& done,
                        absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  std::string body;
  do {
    body = p.HttpGet("/metrics").body;
    if (done(body)) break;
    absl::SleepFor(absl::Milliseconds(100));
  } while (absl::Now() < deadline);
  return body;
}

HttpResponse HttpGetLocal(int port, const std::string& path) {
  return HttpRequestLocal(port, "GET", path);
}

HttpResponse HttpRequestLocal(int port, const std::string& method, const std::string& path,
                              const std::string& extra_headers) {
  HttpResponse response;
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return response;
  timeval timeout{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return response;
  }
  const std::string request = absl::StrCat(method, " ", path, " HTTP/1.0\r\nHost: 127.0.0.1:", port,
                                           "\r\nConnection: close\r\n", extra_headers, "\r\n");
  size_t sent = 0;
  while (sent < request.size()) {
    const ssize_t n = send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) {
      close(fd);
      return response;
    }
    sent += static_cast<size_t>(n);
  }
  std::string raw;
  char buf[65536];
  while (true) {
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    raw.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return ParseHttpResponse(raw);
}

HttpResponse ParseHttpResponse(const std::string& raw) {
  HttpResponse response;
  const size_t head_end = raw.find("\r\n\r\n");
  if (!absl::StartsWith(raw, "HTTP/1.") || head_end == std::string::npos) return response;
  const size_t space = raw.find(' ');
  int status = -1;
  if (space == std::string::npos || !absl::SimpleAtoi(raw.substr(space + 1, 3), &status)) {
    return response;
  }
  response.status = status;
  response.headers = raw.substr(0, head_end);
  response.body = raw.substr(head_end + 4);
  return response;
}

HttpsResponse HttpsGetLocal(int port, const std::string& path, const HttpsClientOptions& options) {
  // A server that refuses the client closes the connection; writing to it must not kill us.
  signal(SIGPIPE, SIG_IGN);
  HttpsResponse result;
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  SSL_CTX_load_verify_locations(ctx, options.ca_file.c_str(), nullptr);
  if (!options.cert_file.empty()) {
    SSL_CTX_use_certificate_chain_file(ctx, options.cert_file.c_str());
    SSL_CTX_use_PrivateKey_file(ctx, options.key_file.c_str(), SSL_FILETYPE_PEM);
  }
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  timeval timeout{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  SSL* ssl = SSL_new(ctx);
  SSL_set1_host(ssl, "127.0.0.1");
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      SSL_set_fd(ssl, fd) == 1 && SSL_connect(ssl) == 1) {
    result.handshake = true;
    if (X509* peer = SSL_get1_peer_certificate(ssl)) {
      char name[256] = {};
      X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, name, sizeof(name));
      result.server_common_name = name;
      X509_free(peer);
    }
    const std::string request = absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: 127.0.0.1\r\n",
                                             options.extra_headers, "\r\n");
    std::string raw;
    if (SSL_write(ssl, request.data(), static_cast<int>(request.size())) > 0) {
      char buffer[65536];
      int n;
      while ((n = SSL_read(ssl, buffer, sizeof(buffer))) > 0) raw.append(buffer, n);
    }
    // With TLS 1.3 a refused client certificate shows only here, as no response.
    result.response = ParseHttpResponse(raw);
  }
  ERR_clear_error();
  SSL_free(ssl);
  close(fd);
  SSL_CTX_free(ctx);
  return result;
}

absl::StatusOr<std::unique_ptr<DevscopeProcess>> DevscopeProcess::Start(
    std::vector<std::string> args, absl::Duration timeout, std::vector<std::string> env) {
  std::unique_ptr<DevscopeProcess> process(new DevscopeProcess());
  process->dir_ = MakeTempDir();
  if (process->dir_.empty()) return absl::InternalError("mkdtemp failed");
  std::vector<std::string> argv = {DEVSCOPE_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  // CDI specs go to the process's own directory unless the test chooses: tests run side by side,
  // and as root the default (/var/run/cdi) is the host's, which the container runtimes read.
  const bool cdi_chosen = std::any_of(args.begin(), args.end(), [](const std::string& a) {
    return absl::StartsWith(a, "--device-plugin.cdi-spec-dir") ||
           absl::StartsWith(a, "--no-device-plugin") || a == "demo";
  });
  if (!cdi_chosen) argv.push_back("--device-plugin.cdi-spec-dir=" + process->dir_);
  process->pid_ =
      Spawn(argv, "/dev/null", process->dir_ + "/stdout", process->dir_ + "/stderr", env);
  if (process->pid_ < 0) return absl::InternalError(absl::StrCat("cannot run ", DEVSCOPE_BINARY));
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    const int port = ListeningPort(process->Stderr());
    if (port > 0) {
      process->port_ = port;
      return process;
    }
    if (!process->Alive()) {
      return absl::FailedPreconditionError(
          absl::StrCat("devscope exited with status ", *process->exit_status_,
                       " before listening; stderr:\n", process->Stderr()));
    }
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          "devscope did not log 'listening address=' in time; stderr:\n", process->Stderr()));
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
}

DevscopeProcess::~DevscopeProcess() {
  Stop();
  RemoveTree(dir_);
}

std::string DevscopeProcess::Stderr() const { return ReadWholeFile(dir_ + "/stderr"); }

bool DevscopeProcess::Alive() {
  if (exit_status_.has_value() || pid_ < 0) return false;
  if (std::optional<int> status = WaitUpTo(pid_, absl::ZeroDuration())) {
    exit_status_ = *status;
    return false;
  }
  return true;
}

int DevscopeProcess::Stop(absl::Duration timeout) {
  if (!Alive()) return exit_status_.value_or(-1);
  kill(pid_, SIGTERM);
  std::optional<int> status = WaitUpTo(pid_, timeout);
  if (!status.has_value()) {
    kill(pid_, SIGKILL);
    status = WaitUpTo(pid_, absl::Seconds(10));
  }
  exit_status_ = status.value_or(-1);
  return *exit_status_;
}

RunResult RunCommand(const std::vector<std::string>& argv, absl::Duration timeout) {
  RunResult result;
  const std::string dir = MakeTempDir();
  const pid_t pid = Spawn(argv, "/dev/null", dir + "/stdout", dir + "/stderr");
  if (pid >= 0) {
    std::optional<int> status = WaitUpTo(pid, timeout);
    if (!status.has_value()) {
      kill(pid, SIGKILL);
      status = WaitUpTo(pid, absl::Seconds(10));
    }
    result.exit_code = status.value_or(-1);
  }
  result.stdout_text = ReadWholeFile(dir + "/stdout");
  result.stderr_text = ReadWholeFile(dir + "/stderr");
  RemoveTree(dir);
  return result;
}

RunResult RunDevscope(const std::vector<std::string>& args, absl::Duration timeout) {
  std::vector<std::string> argv = {DEVSCOPE_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, timeout);
}

std::string PromtoolCheck(const std::string& metrics_text) {
  constexpr char kPromtool[] = "/usr/bin/promtool";
  if (access(kPromtool, X_OK) != 0) {
    return "promtool not found at /usr/bin/promtool (Debian package prometheus)";
  }
  const std::string dir = MakeTempDir();
  {
    std::ofstream out(dir + "/metrics.txt", std::ios::binary);
    out << metrics_text;
  }
  const pid_t pid = Spawn({kPromtool, "check", "metrics"}, dir + "/metrics.txt", dir + "/output",
                          dir + "/output");
  std::string output;
  if (pid < 0) {
    output = "cannot run promtool";
  } else {
    std::optional<int> status = WaitUpTo(pid, absl::Seconds(60));
    if (!status.has_value()) {
      kill(pid, SIGKILL);
      WaitUpTo(pid, absl::Seconds(10));
    }
    output = ReadWholeFile(dir + "/output");
    if (status.value_or(-1) != 0 && output.empty()) {
      output = absl::StrCat("promtool exited with status ", status.value_or(-1));
    }
  }
  RemoveTree(dir);
  return output;
}

std::vector<ExpositionSample> ParseSamples(const std::string& text) {
  std::vector<ExpositionSample> samples;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    ExpositionSample sample;
    size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
    sample.name = line.substr(0, i);
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        const size_t eq = line.find('=', i);
        if (eq == std::string::npos || eq + 1 >= line.size() || line[eq + 1] != '"') break;
        std::string key = line.substr(i, eq - i);
        std::string value;
        size_t j = eq + 2;
        for (; j < line.size() && line[j] != '"'; ++j) {
          if (line[j] == '\\' && j + 1 < line.size()) {
            ++j;
            value += line[j] == 'n' ? '\n' : line[j];
          } else {
            value += line[j];
          }
        }
        sample.labels[key] = value;
        i = j + 1;
        if (i < line.size() && line[i] == ',') ++i;
      }
      ++i;  // '}'
    }
    while (i < line.size() && line[i] == ' ') ++i;
    const size_t end = line.find(' ', i);
    sample.value = std::strtod(line.substr(i, end - i).c_str(), nullptr);
    samples.push_back(std::move(sample));
  }
  return samples;
}

std::vector<ExpositionSample> FindSamples(const std::string& text, const std::string& name,
                                          const std::map<std::string, std::string>& labels) {
  std::vector<ExpositionSample> found;
  for (ExpositionSample& sample : ParseSamples(text)) {
    if (sample.name != name) continue;
    bool match = true;
    for (const auto& [key, value] : labels) {
      auto it = sample.labels.find(key);
      // An empty value matches an absent label: the exposition format treats them alike.
      if (it == sample.labels.end() ? !value.empty() : it->second != value) {
        match = false;
        break;
      }
    }
    if (match) found.push_back(std::move(sample));
  }
  return found;
}

}  // namespace devscope
