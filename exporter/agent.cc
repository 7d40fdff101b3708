#include "exporter/agent.h"

#include <csignal>
#include <functional>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "collectors/registry.h"
#include "collectors/runner.h"
#include "common/log.h"
#include "deviceplugin/plugin_manager.h"
#include "exporter/flags.h"
#include "exporter/http_server.h"
#include "exporter/metrics_renderer.h"
#include "kubelet/poller.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"

namespace devscope {

// Members are destroyed in reverse order of declaration: the HTTP server first, the registry
// that everything registers into last.
struct Agent::Parts {
  Config config;
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  std::unique_ptr<PodResourcesPoller> poller;
  std::unique_ptr<CollectorRunner> collectors;
  std::unique_ptr<DevicePluginManager> plugin;
  std::unique_ptr<MetricsRenderer> renderer;
  std::unique_ptr<HttpServer> http;

  ~Parts() {
    http.reset();
    if (plugin) plugin->Stop();
    if (collectors) collectors->Stop();
    if (poller) poller->Stop();
  }
};

Agent::Agent(std::unique_ptr<Parts> parts) : parts_(std::move(parts)) {}
Agent::~Agent() = default;

absl::StatusOr<std::unique_ptr<Agent>> Agent::Start(const Config& config) {
  auto parts = std::make_unique<Parts>();
  Parts& p = *parts;
  p.config = config;
  prometheus::BuildGauge()
      .Name("devscope_build_info")
      .Help("devscope's version and revision (always 1).")
      .Register(*p.registry)
      .Add({{"version", Version()}, {"revision", Revision()}})
      .Set(1);

  WebConfig web_config;
  const std::vector<std::pair<const char*, std::function<absl::Status()>>> steps = {
      {"load web config",
       [&]() -> absl::Status {
         if (p.config.web_config_file.empty()) return absl::OkStatus();
         auto loaded = LoadWebConfig(p.config.web_config_file);
         if (!loaded.ok()) return loaded.status();
         web_config = *std::move(loaded);
         return absl::OkStatus();
       }},
      {"start collectors",
       [&]() -> absl::Status {
         p.collectors =
             std::make_unique<CollectorRunner>(MakeEnabledCollectors(p.config), p.config);
         p.collectors->Start();
         return absl::OkStatus();
       }},
      {"start pod-resources poller",
       [&]() -> absl::Status {
         PollerOptions options;
         options.socket_path = p.config.pod_resources_socket;
         options.interval = p.config.pod_resources_interval;
         options.max_message_size = p.config.pod_resources_max_message_size;
         // A device that appears, vanishes or changes health changes the kubelet's allocatable.
         CollectorRunner* collectors = p.collectors.get();
         options.last_device_change = [collectors] { return collectors->last_device_change(); };
         p.poller = std::make_unique<PodResourcesPoller>(options, *p.registry);
         p.poller->Start();
         return absl::OkStatus();
       }},
      {"start HTTP server",
       [&]() -> absl::Status {
         p.renderer = std::make_unique<MetricsRenderer>(
             &p.poller->store(), &p.collectors->store(),
             std::vector<std::shared_ptr<prometheus::Collectable>>{p.registry});
         HttpServerOptions options;
         options.listen_address = p.config.listen_address;
         options.telemetry_path = p.config.telemetry_path;
         options.web_config = web_config;
         options.registry = p.registry.get();
         MetricsRenderer* renderer = p.renderer.get();
         options.render_metrics = [renderer] { return renderer->RenderParts(); };
         PodResourcesPoller* poller = p.poller.get();
         CollectorRunner* collectors = p.collectors.get();
         options.ready = [poller, collectors] {
           return poller->first_poll_done() && collectors->first_pass_done();
         };
         auto server = HttpServer::Start(std::move(options));
         if (!server.ok()) return server.status();
         p.http = *std::move(server);
         Log().info("listening address={} url={}://{}{}", p.http->bound_address(), p.http->scheme(),
                    p.http->bound_address(), p.config.telemetry_path);
         return absl::OkStatus();
       }},
      {"start device plugin",
       [&]() -> absl::Status {
         if (!p.config.device_plugin) return absl::OkStatus();
         p.plugin =
             std::make_unique<DevicePluginManager>(p.config, p.collectors->store(), *p.registry);
         return p.plugin->Start();
       }},
  };
  for (const auto& [name, step] : steps) {
    const absl::Status status = step();
    if (!status.ok()) {
      // `parts` goes out of scope here: the teardown of whatever started.
      return absl::Status(status.code(), absl::StrCat(name, ": ", status.message()));
    }
  }
  Log().info("started version={} revision={}", Version(), Revision());
  return std::unique_ptr<Agent>(new Agent(std::move(parts)));
}

std::string Agent::metrics_url() const {
  std::string address = parts_->http->bound_address();
  if (absl::StartsWith(address, "0.0.0.0:")) address = absl::StrCat("127.0.0.1", address.substr(7));
  return absl::StrCat("http://", address, parts_->config.telemetry_path);
}

void BlockTerminationSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int WaitForTerminationSignal() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  int signal = 0;
  sigwait(&set, &signal);
  return signal;
}

}  // namespace devscope
