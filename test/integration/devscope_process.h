// Runs the real devscope binary (DEVSCOPE_BINARY) for integration tests: a long-running server
// scraped over HTTP, or a short-lived command whose output is captured. Plus `promtool check
// metrics` and a small exposition-format reader so that tests assert on series, not on text.
#ifndef DEVSCOPE_TEST_INTEGRATION_DEVSCOPE_PROCESS_H_
#define DEVSCOPE_TEST_INTEGRATION_DEVSCOPE_PROCESS_H_

#include <sys/types.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace devscope {

struct HttpResponse {
  int status = -1;  // -1: no connection or no parsable answer
  std::string headers;
  std::string body;
};

// A blocking HTTP/1.0 request on 127.0.0.1:port (10 s timeout). `extra_headers` are whole
// header lines, each ending in \r\n.
HttpResponse HttpRequestLocal(int port, const std::string& method, const std::string& path,
                              const std::string& extra_headers = "");
// GET of `path`.
HttpResponse HttpGetLocal(int port, const std::string& path);
// A whole HTTP/1.x response as read off a connection closed by the server.
HttpResponse ParseHttpResponse(const std::string& raw);

struct HttpsClientOptions {
  std::string ca_file;              // the server's certificate must verify against it
  std::string cert_file, key_file;  // a client certificate, when set
  std::string extra_headers;        // whole header lines, each ending in \r\n
};

struct HttpsResponse {
  bool handshake = false;  // the client's side of the handshake completed
  std::string server_common_name;
  HttpResponse response;  // status -1 when the server closed without an answer
};

// One HTTPS GET (HTTP/1.0, a new connection) on 127.0.0.1:port with OpenSSL.
HttpsResponse HttpsGetLocal(int port, const std::string& path, const HttpsClientOptions& options);

class DevscopeProcess {
 public:
  // Starts DEVSCOPE_BINARY with `args` (stdout and stderr to temporary files; `env`, NAME=VALUE
  // each, added to the environment) and waits until it logs `listening address=HOST:PORT`. Error
  // when it exits first or does not log it in time.
  static absl::StatusOr<std::unique_ptr<DevscopeProcess>> Start(
      std::vector<std::string> args, absl::Duration timeout = absl::Seconds(20),
      std::vector<std::string> env = {});
  ~DevscopeProcess();  // Stop()s a process still running
  DevscopeProcess(const DevscopeProcess&) = delete;
  DevscopeProcess& operator=(const DevscopeProcess&) = delete;

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  HttpResponse HttpGet(const std::string& path) const { return HttpGetLocal(port_, path); }
  std::string Stderr() const;
  bool Alive();
  // SIGTERM, wait up to `timeout`, then SIGKILL. Returns the exit status (128+N for signal N);
  // later calls return the same.
  int Stop(absl::Duration timeout = absl::Seconds(10));

 private:
  DevscopeProcess() = default;
  pid_t pid_ = -1;
  int port_ = 0;
  std::optional<int> exit_status_;
  std::string dir_;  // holds the output files
};

struct RunResult {
  int exit_code = -1;
  std::string stdout_text;
  std::string stderr_text;
};

// Runs DEVSCOPE_BINARY with `args` to completion (killed after `timeout`).
RunResult RunDevscope(const std::vector<std::string>& args,
                      absl::Duration timeout = absl::Seconds(30));
// Runs `argv` (argv[0] a path) to completion (killed after `timeout`).
RunResult RunCommand(const std::vector<std::string>& argv,
                     absl::Duration timeout = absl::Seconds(30));

// Starts `argv` (argv[0] a path) with stdin, stdout and stderr redirected to the given files
// (stderr joins stdout when both name the same file) and `extra_env` (NAME=VALUE each) added to
// the environment; -1 on failure.
pid_t Spawn(const std::vector<std::string>& argv, const std::string& stdin_path,
            const std::string& stdout_path, const std::string& stderr_path,
            const std::vector<std::string>& extra_env = {});
// Waits for the child `pid` up to `timeout`: its exit status (128+N for signal N), or nullopt
// while it still runs.
std::optional<int> WaitUpTo(pid_t pid, absl::Duration timeout);

// Polls `p`'s /metrics until `done` holds for the body or `timeout` passes; the last body.
std::string ScrapeUntil(const DevscopeProcess& p,
                        const std::function<bool(const std::string&)>& done,
                        absl::Duration timeout);

// `promtool check metrics` on `metrics_text`: its combined output, empty when clean.
std::string PromtoolCheck(const std::string& metrics_text);

// One sample of the text exposition format.
struct ExpositionSample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

// The samples of `text` (comments skipped).
std::vector<ExpositionSample> ParseSamples(const std::string& text);

// The samples named `name` whose labels include every pair of `labels`.
std::vector<ExpositionSample> FindSamples(const std::string& text, const std::string& name,
                                          const std::map<std::string, std::string>& labels = {});

// --collector.devicedir.owner= the user running the tests: devicedir fixtures are theirs, and
// devscope trusts only root's by default (docs/security.md). Every test that gives devscope a
// devicedir passes it, so the tests pass as root (CI) and as a user alike.
std::string DevicedirOwnerFlag();

// A fresh directory under /tmp with a short name (unix socket paths are limited to 108 bytes).
std::string MakeTempDir();
void RemoveTree(const std::string& path);

}  // namespace devscope

#endif  // DEVSCOPE_TEST_INTEGRATION_DEVSCOPE_PROCESS_H_
