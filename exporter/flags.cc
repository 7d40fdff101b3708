#include "exporter/flags.h"

#include <sys/stat.h>

#include <exception>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/units.h"

namespace devscope {
namespace {

// Flags whose value needs parsing after CLI11 has split the line, kept as text until then.
struct RawValues {
  std::string interval = "1s";
  std::string max_message_size = "64MiB";
};

bool IsDirectory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string ParentDirectory(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// --collector.NAME / --no-collector.NAME: CLI11 hands a negative count for the "!" form.
void AddCollectorToggle(CLI::App& app, const std::string& name, CollectorToggle& toggle) {
  app.add_flag_function(
         absl::StrCat("--collector.", name, ",!--no-collector.", name),
         [&toggle](int64_t count) {
           toggle = count > 0 ? CollectorToggle::kOn : CollectorToggle::kOff;
         },
         absl::StrCat("Enable (or, with --no-, disable) the ", name,
                      " collector; default: on when its hardware is present"))
      ->group("Collectors");
}

// The checks that need more than one flag, or the file system. Returns the error line or "".
std::string Validate(const CLI::App& app, CommandLine& cl, const RawValues& raw) {
  Config& c = cl.config;
  auto interval = ParsePositiveDuration(raw.interval);
  if (!interval.ok()) return absl::StrCat("--pod-resources.interval: ", interval.status().message());
  // The kubelet's rate limit (100 QPS, burst 10) is shared by every client on the node; polling
  // faster than 10 times a second would take a large share of it.
  if (*interval < absl::Milliseconds(100)) {
    return "--pod-resources.interval: must be at least 100ms (the kubelet's rate limit is shared)";
  }
  c.pod_resources_interval = *interval;
  auto size = ParseByteSize(raw.max_message_size);
  if (!size.ok()) {
    return absl::StrCat("--pod-resources.max-message-size: ", size.status().message());
  }
  if (*size > (1ULL << 31) - 1) {
    return "--pod-resources.max-message-size: gRPC accepts at most 2GiB - 1 byte";
  }
  c.pod_resources_max_message_size = *size;
  if (c.telemetry_path.empty() || c.telemetry_path[0] != '/' || c.telemetry_path == "/") {
    return absl::StrCat("--web.telemetry-path: \"", c.telemetry_path,
                        "\" must start with / and not be / itself");
  }
  // Paths given explicitly must exist: a typo should fail now, not look like an absent kubelet.
  // Defaults may be absent (the kubelet may start after devscope).
  if (app.count("--kubelet.pod-resources-socket") > 0 &&
      !IsDirectory(ParentDirectory(c.pod_resources_socket))) {
    return absl::StrCat("--kubelet.pod-resources-socket: directory ",
                        ParentDirectory(c.pod_resources_socket), " does not exist");
  }
  if (app.count("--kubelet.device-plugins-dir") > 0 && !IsDirectory(c.device_plugins_dir)) {
    return absl::StrCat("--kubelet.device-plugins-dir: ", c.device_plugins_dir,
                        " is not a directory");
  }
  for (const auto& [flag, path] : {std::pair<const char*, const std::string&>{"--path.sysfs", c.sysfs},
                                   {"--path.devfs", c.devfs},
                                   {"--collector.devicedir.path", c.devicedir_path}}) {
    if (app.count(flag) > 0 && !IsDirectory(path)) {
      return absl::StrCat(flag, ": ", path, " is not a directory");
    }
  }
  // Logging is configured here so that a bad level or format is reported like any other flag.
  if (absl::Status logging = ConfigureLogging(c.log_level, c.log_format); !logging.ok()) {
    return std::string(logging.message());
  }
  if (!c.config_file.empty()) {
    absl::Status loaded = LoadConfigFile(c.config_file, c);
    if (!loaded.ok()) return std::string(loaded.message());
  }
  if (cl.command == CommandLine::Command::kPod) {
    const size_t slash = cl.pod.find('/');
    if (slash == std::string::npos || slash == 0 || slash + 1 == cl.pod.size() ||
        cl.pod.find('/', slash + 1) != std::string::npos) {
      return absl::StrCat("pod: \"", cl.pod, "\" is not NAMESPACE/NAME");
    }
  }
  return "";
}

}  // namespace

const char* Version() { return DEVSCOPE_VERSION; }
const char* Revision() { return DEVSCOPE_REVISION; }

std::string VersionString() {
  return absl::StrCat("devscope ", Version(), " (revision ", Revision(), ")");
}

ParseResult ParseCommandLine(int argc, const char* const* argv, std::ostream& out,
                             std::ostream& err) {
  ParseResult result;
  CommandLine& cl = result.command_line;
  Config& c = cl.config;
  RawValues raw;
  bool version = false;

  CLI::App app(
      "devscope: which pod holds which device, and how that device is doing.\n"
      "Polls the kubelet's pod-resources API, collects device telemetry, serves Prometheus\n"
      "metrics and a kubelet device plugin.",
      "devscope");
  app.fallthrough();
  app.get_formatter()->column_width(44);
  app.add_flag("--version", version, "Print the version and exit");

  app.add_option("--web.listen-address", c.listen_address, "HTTP listen address, [HOST]:PORT")
      ->capture_default_str()->group("Web");
  app.add_option("--web.telemetry-path", c.telemetry_path, "Path of the metrics endpoint")
      ->capture_default_str()->group("Web");
  app.add_option("--web.config.file", c.web_config_file,
                 "Web config, exporter-toolkit style: basic_auth_users (bcrypt), tls_server_config, "
                 "http_server_config.headers")
      ->group("Web");
  app.add_option("--kubelet.pod-resources-socket", c.pod_resources_socket,
                 "The kubelet's pod-resources socket")
      ->capture_default_str()->group("Kubelet");
  app.add_option("--kubelet.device-plugins-dir", c.device_plugins_dir,
                 "Where kubelet.sock is and plugin sockets go")
      ->capture_default_str()->group("Kubelet");
  app.add_option("--pod-resources.interval", raw.interval, "How often List is polled")
      ->capture_default_str()->group("Kubelet");
  app.add_option("--pod-resources.max-message-size", raw.max_message_size,
                 "gRPC receive limit for pod-resources replies")
      ->capture_default_str()->group("Kubelet");
  app.add_option("--path.sysfs", c.sysfs, "sysfs root")->capture_default_str()->group("Paths");
  app.add_option("--path.devfs", c.devfs, "devfs root")->capture_default_str()->group("Paths");
  app.add_option("--collector.devicedir.path", c.devicedir_path,
                 "Enable the devicedir collector on this directory")
      ->group("Collectors");
  AddCollectorToggle(app, "nvml", c.nvml.toggle);
  AddCollectorToggle(app, "drm", c.drm.toggle);
  AddCollectorToggle(app, "netdev", c.netdev.toggle);
  app.add_flag("--device-plugin,!--no-device-plugin", c.device_plugin,
               "Serve the kubelet device plugin for advertised devices (default: on)")
      ->group("Device plugin");
  app.add_option("--config.file", c.config_file,
                 "YAML for plugin settings, health thresholds and collector options")
      ->group("General");
  app.add_option("--log.level", c.log_level, "debug, info, warn or error")
      ->capture_default_str()->group("General");
  app.add_option("--log.format", c.log_format, "logfmt or json")
      ->capture_default_str()->group("General");

  CLI::App* demo = app.add_subcommand(
      "demo", "Run a simulated node: a kubelet stand-in, devices, pods and devscope on top");
  CLI::App* pod = app.add_subcommand("pod", "Print one pod's resources (Get, falling back to List)");
  pod->add_option("NAMESPACE/NAME", cl.pod, "The pod")->required();
  app.require_subcommand(0, 1);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    out << app.help();
    result.exit_code = 0;
    return result;
  } catch (const CLI::CallForAllHelp&) {
    out << app.help("", CLI::AppFormatMode::All);
    result.exit_code = 0;
    return result;
  } catch (const CLI::ParseError& e) {
    err << "devscope: " << e.what() << " (see devscope --help)\n";
    result.exit_code = 2;
    return result;
  }
  if (version) {
    out << VersionString() << "\n";
    result.exit_code = 0;
    return result;
  }
  if (demo->parsed()) cl.command = CommandLine::Command::kDemo;
  if (pod->parsed()) cl.command = CommandLine::Command::kPod;

  try {
    const std::string problem = Validate(app, cl, raw);
    if (!problem.empty()) {
      err << "devscope: " << problem << "\n";
      result.exit_code = 2;
    }
  } catch (const std::exception& e) {
    err << "devscope: " << e.what() << "\n";
    result.exit_code = 2;
  }
  return result;
}

}  // namespace devscope
