#include "bench/peers.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "test/integration/devscope_process.h"

extern char** environ;

namespace devscope {
namespace {

// Writes `text` to `path` through a temporary file renamed over it: a reader never sees half.
void WriteAtomically(const std::string& path, absl::string_view text) {
  const std::string temporary = path + ".tmp";
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
  }
  std::filesystem::rename(temporary, path);
}

}  // namespace

absl::StatusOr<std::unique_ptr<ChildProcess>> ChildProcess::Start(
    const std::vector<std::string>& argv, const std::string& log_path) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot run ", argv[0], " (apt-get install nginx prometheus-node-exporter)"));
  }
  return std::unique_ptr<ChildProcess>(new ChildProcess(pid));
}

ChildProcess::~ChildProcess() {
  kill(pid_, SIGTERM);
  for (int i = 0; i < 100; ++i) {
    if (waitpid(pid_, nullptr, WNOHANG) == pid_) return;
    absl::SleepFor(absl::Milliseconds(50));
  }
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
}

int FreeLocalPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(addr);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

bool WaitForHttp(int port, const std::string& path) {
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (absl::Now() < deadline) {
    if (HttpGetLocal(port, path).status == 200) return true;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return false;
}

absl::StatusOr<std::unique_ptr<NginxPeer>> NginxPeer::Start(const std::string& dir) {
  auto peer = std::make_unique<NginxPeer>();
  peer->dir_ = dir + "/nginx";
  std::filesystem::create_directories(peer->dir_ + "/www");
  peer->port_ = FreeLocalPort();
  peer->Serve("# nothing yet\n", "");
  const std::string& d = peer->dir_;
  std::ofstream(d + "/nginx.conf") << absl::StrCat(
      "daemon off;\nmaster_process off;\nworker_processes 1;\npid ", d, "/nginx.pid;\n",
      "error_log stderr warn;\nevents { worker_connections 64; }\nhttp {\n",
      "  access_log off;\n  sendfile on;\n  tcp_nopush on;\n", "  client_body_temp_path ", d,
      "/body;\n  proxy_temp_path ", d, "/proxy;\n", "  fastcgi_temp_path ", d,
      "/fastcgi;\n  uwsgi_temp_path ", d, "/uwsgi;\n", "  scgi_temp_path ", d, "/scgi;\n",
      "  types { }\n", "  default_type \"text/plain; version=0.0.4; charset=utf-8\";\n",
      "  server {\n", "    listen 127.0.0.1:", peer->port_, ";\n    root ", d, "/www;\n",
      "    location = /metrics.gz { add_header Content-Encoding gzip; }\n  }\n}\n");
  auto process =
      ChildProcess::Start({"/usr/sbin/nginx", "-p", d, "-c", d + "/nginx.conf"}, d + "/nginx.log");
  if (!process.ok()) return process.status();
  peer->process_ = *std::move(process);
  if (!WaitForHttp(peer->port_, "/metrics")) {
    return absl::UnavailableError(absl::StrCat("nginx did not answer; see ", d, "/nginx.log"));
  }
  return peer;
}

void NginxPeer::Serve(absl::string_view text, absl::string_view gzip) {
  WriteAtomically(dir_ + "/www/metrics", text);
  WriteAtomically(dir_ + "/www/metrics.gz", gzip);
}

absl::StatusOr<std::unique_ptr<NodeExporterPeer>> NodeExporterPeer::Start(const std::string& dir) {
  auto peer = std::make_unique<NodeExporterPeer>();
  peer->dir_ = dir + "/node_exporter";
  std::filesystem::create_directories(peer->dir_ + "/textfile");
  peer->port_ = FreeLocalPort();
  peer->Serve("");
  auto process = ChildProcess::Start(
      {"/usr/bin/prometheus-node-exporter", "--collector.disable-defaults", "--collector.textfile",
       "--collector.textfile.directory=" + peer->dir_ + "/textfile",
       "--web.disable-exporter-metrics",
       absl::StrCat("--web.listen-address=127.0.0.1:", peer->port_)},
      peer->dir_ + "/node_exporter.log");
  if (!process.ok()) return process.status();
  peer->process_ = *std::move(process);
  if (!WaitForHttp(peer->port_, "/metrics")) {
    return absl::UnavailableError(
        absl::StrCat("node_exporter did not answer; see ", peer->dir_, "/node_exporter.log"));
  }
  return peer;
}

void NodeExporterPeer::Serve(absl::string_view text) {
  WriteAtomically(dir_ + "/textfile/devscope.prom", text);
}

double CpuSeconds(pid_t pid) {
  std::ifstream stat(absl::StrCat("/proc/", pid, "/stat"));
  std::string line;
  if (!std::getline(stat, line)) return -1;
  // Fields after the command name (which may hold spaces) start at state, field 3.
  const size_t close = line.rfind(')');
  if (close == std::string::npos) return -1;
  const std::vector<std::string> fields = absl::StrSplit(line.substr(close + 2), ' ');
  double utime = 0, stime = 0;
  if (fields.size() < 13 || !absl::SimpleAtod(fields[11], &utime) ||
      !absl::SimpleAtod(fields[12], &stime)) {
    return -1;
  }
  return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double MemoryMiB(pid_t pid, absl::string_view field) {
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  const std::string prefix = absl::StrCat(field, ":");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind(prefix, 0) != 0) continue;
    std::vector<std::string> words =
        absl::StrSplit(line.substr(prefix.size()), absl::ByAnyChar(" \t"), absl::SkipEmpty());
    double kb = 0;
    if (!words.empty() && absl::SimpleAtod(words[0], &kb)) return kb / 1024;
  }
  return -1;
}

}  // namespace devscope
