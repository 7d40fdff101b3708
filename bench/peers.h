// The peers devscope is measured against in the same run (bench/node_probe): nginx serving the
// very bytes devscope serves, from a file, and Debian's node_exporter serving the same series
// through its textfile collector. Both run as child processes on 127.0.0.1 with a private
// configuration in a temporary directory; neither is needed by the tests (install them with
// `apt-get install nginx prometheus-node-exporter`).
#ifndef DEVSCOPE_BENCH_PEERS_H_
#define DEVSCOPE_BENCH_PEERS_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace devscope {

// A child process, killed (SIGTERM, then SIGKILL) and reaped when destroyed.
class ChildProcess {
 public:
  // Runs `argv` with stdout and stderr to `log_path`.
  static absl::StatusOr<std::unique_ptr<ChildProcess>> Start(const std::vector<std::string>& argv,
                                                             const std::string& log_path);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  pid_t pid() const { return pid_; }

 private:
  explicit ChildProcess(pid_t pid) : pid_(pid) {}
  pid_t pid_;
};

// A TCP port on 127.0.0.1 that was free a moment ago.
int FreeLocalPort();

// Waits until 127.0.0.1:port answers `path` with 200; false after 20 s.
bool WaitForHttp(int port, const std::string& path);

// nginx serving `dir`/metrics (text) and `dir`/metrics.gz (the same text gzipped, sent with
// Content-Encoding: gzip) on a free port: one process, no access log, sendfile.
class NginxPeer {
 public:
  static absl::StatusOr<std::unique_ptr<NginxPeer>> Start(const std::string& dir);
  int port() const { return port_; }
  pid_t pid() const { return process_->pid(); }
  // Replaces what is served (written to a temporary file and renamed over the old one).
  void Serve(absl::string_view text, absl::string_view gzip);

 private:
  std::string dir_;
  int port_ = 0;
  std::unique_ptr<ChildProcess> process_;
};

// node_exporter 1.5 with only the textfile collector and without its own Go metrics, reading
// `dir`/textfile/devscope.prom on every scrape.
class NodeExporterPeer {
 public:
  static absl::StatusOr<std::unique_ptr<NodeExporterPeer>> Start(const std::string& dir);
  int port() const { return port_; }
  pid_t pid() const { return process_->pid(); }
  // Replaces the textfile (written beside and renamed, as the textfile collector asks).
  void Serve(absl::string_view text);

 private:
  std::string dir_;
  int port_ = 0;
  std::unique_ptr<ChildProcess> process_;
};

// CPU time (user + system, all threads) of `pid` so far, in seconds; -1 when unreadable.
double CpuSeconds(pid_t pid);
// VmRSS or VmHWM of `pid` in MiB; -1 when unreadable.
double MemoryMiB(pid_t pid, absl::string_view field);

}  // namespace devscope

#endif  // DEVSCOPE_BENCH_PEERS_H_
