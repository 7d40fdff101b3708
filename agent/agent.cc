#include "agent/agent.h"

#include <atomic>
#include <functional>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "collectors/registry.h"
#include "collectors/runner.h"
#include "common/log.h"
#include "common/version.h"
#include "deviceplugin/plugin_manager.h"
#include "exporter/http_server.h"
#include "exporter/metrics_renderer.h"
#include "kubelet/poller.h"
#include "kubelet/process_attribution.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"

namespace devscope {

// Members are destroyed in reverse order of declaration: the HTTP server first, the registry
// that everything registers into last.
struct Agent::Parts {
  AgentOptions options;
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  std::unique_ptr<PodResourcesPoller> poller;
  std::unique_ptr<CollectorRunner> collectors;
  std::unique_ptr<ProcessAttributor> attribution;  // reads the collectors' store
  std::unique_ptr<DevicePluginManager> plugin;
  std::unique_ptr<MetricsRenderer> renderer;
  std::unique_ptr<HttpServer> http;

  // The start-up steps, in Agent::Start's order; each builds on the ones before it.
  absl::Status StartCollectors();
  absl::Status StartAttribution();
  absl::Status StartPoller();
  absl::Status StartHttpServer(const WebConfig& web_config);
  absl::Status StartDevicePlugin();

  ~Parts() {
    http.reset();
    if (plugin) plugin->Stop();
    if (attribution) attribution->Stop();
    if (collectors && !collectors->Stop()) KeepForever(std::move(collectors));
    if (poller) poller->Stop();
  }

  // A runner with a thread still inside it must outlive that thread: kept for the rest of the
  // process (reachable from a static, so no leak checker reports it).
  static std::vector<std::unique_ptr<CollectorRunner>>& Kept() {
    static auto* kept = new std::vector<std::unique_ptr<CollectorRunner>>;
    return *kept;
  }
  static void KeepForever(std::unique_ptr<CollectorRunner> runner) {
    static absl::Mutex mu;
    absl::MutexLock lock(&mu);
    Kept().push_back(std::move(runner));
    left_threads_running.store(true);
  }
  static inline std::atomic<bool> left_threads_running{false};
};

bool Agent::LeftThreadsRunning() { return Parts::left_threads_running.load(); }

namespace {

void RegisterBuildInfo(prometheus::Registry& registry) {
  prometheus::BuildGauge()
      .Name("devscope_build_info")
      .Help("devscope's version and revision (always 1).")
      .Register(registry)
      .Add({{"version", Version()}, {"revision", Revision()}})
      .Set(1);
}

}  // namespace

Agent::Agent(std::unique_ptr<Parts> parts) : parts_(std::move(parts)) {}
Agent::~Agent() = default;

absl::StatusOr<std::unique_ptr<Agent>> Agent::Start(const AgentOptions& options) {
  auto parts = std::make_unique<Parts>();
  Parts& p = *parts;
  p.options = options;
  RegisterBuildInfo(*p.registry);

  WebConfig web_config;
  const std::vector<std::pair<const char*, std::function<absl::Status()>>> steps = {
      {"load web config",
       [&]() -> absl::Status {
         if (p.options.web.config_file.empty()) return absl::OkStatus();
         auto loaded = LoadWebConfig(p.options.web.config_file);
         if (!loaded.ok()) return loaded.status();
         web_config = *std::move(loaded);
         return absl::OkStatus();
       }},
      {"start collectors", [&] { return p.StartCollectors(); }},
      {"start process attribution", [&] { return p.StartAttribution(); }},
      {"start pod-resources poller", [&] { return p.StartPoller(); }},
      {"start HTTP server", [&] { return p.StartHttpServer(web_config); }},
      {"start device plugin", [&] { return p.StartDevicePlugin(); }},
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

absl::Status Agent::Parts::StartCollectors() {
  collectors = std::make_unique<CollectorRunner>(
      MakeEnabledCollectors(options.collectors, options.roots), options.collector_runs,
      HealthModel(options.health, options.roots));
  collectors->Start();
  return absl::OkStatus();
}

absl::Status Agent::Parts::StartAttribution() {
  attribution =
      std::make_unique<ProcessAttributor>(options.attribution, collectors->store(), *registry);
  attribution->Start();
  return absl::OkStatus();
}

absl::Status Agent::Parts::StartPoller() {
  PollerOptions poller_options = options.pod_resources;
  // A device that appears, vanishes or changes health changes the kubelet's allocatable.
  CollectorRunner* runner = collectors.get();
  poller_options.last_device_change = [runner] { return runner->last_device_change(); };
  poller = std::make_unique<PodResourcesPoller>(poller_options, *registry);
  poller->Start();
  return absl::OkStatus();
}

absl::Status Agent::Parts::StartHttpServer(const WebConfig& web_config) {
  auto dra = DraMatcher::Create(options.dra);
  if (!dra.ok()) return dra.status();
  renderer = std::make_unique<MetricsRenderer>(
      &poller->store(), &collectors->store(),
      std::vector<std::shared_ptr<prometheus::Collectable>>{registry}, *std::move(dra),
      &attribution->store(), options.metrics);
  HttpServerOptions server_options;
  server_options.listen_address = options.web.listen_address;
  server_options.health_listen_address = options.web.health_listen_address;
  server_options.telemetry_path = options.web.telemetry_path;
  server_options.web_config = web_config;
  server_options.registry = registry.get();
  MetricsRenderer* metrics_renderer = renderer.get();
  server_options.render_metrics = [metrics_renderer] { return metrics_renderer->RenderParts(); };
  PodResourcesPoller* pods = poller.get();
  CollectorRunner* runner = collectors.get();
  server_options.ready = [pods, runner] {
    return pods->first_poll_done() && runner->first_pass_done();
  };
  auto server = HttpServer::Start(std::move(server_options));
  if (!server.ok()) return server.status();
  http = *std::move(server);
  Log().info("listening address={} url={}://{}{}", http->bound_address(), http->scheme(),
             http->bound_address(), options.web.telemetry_path);
  if (!http->bound_health_address().empty()) {
    Log().info("probes listening address={}", http->bound_health_address());
  }
  return absl::OkStatus();
}

absl::Status Agent::Parts::StartDevicePlugin() {
  if (!options.device_plugin.enabled) return absl::OkStatus();
  // The CDI specs give each node's type and numbers, seen through --path.devfs.
  NodeNumbers numbers = [roots = options.roots](const std::string& host_path) {
    return StatDeviceNode(roots.DevfsPath(host_path));
  };
  plugin = std::make_unique<DevicePluginManager>(options.device_plugin, collectors->store(),
                                                 *registry, std::move(numbers));
  return plugin->Start();
}

std::string Agent::metrics_url() const {
  std::string address = parts_->http->bound_address();
  if (absl::StartsWith(address, "0.0.0.0:")) address = absl::StrCat("127.0.0.1", address.substr(7));
  return absl::StrCat("http://", address, parts_->options.web.telemetry_path);
}

}  // namespace devscope
