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
      {"start collectors",
       [&]() -> absl::Status {
         const AgentOptions& o = p.options;
         p.collectors =
             std::make_unique<CollectorRunner>(MakeEnabledCollectors(o.collectors, o.roots),
                                               o.collector_runs, HealthModel(o.health, o.roots));
         p.collectors->Start();
         return absl::OkStatus();
       }},
      {"start process attribution",
       [&]() -> absl::Status {
         p.attribution = std::make_unique<ProcessAttributor>(
             p.options.attribution, p.collectors->store(), *p.registry);
         p.attribution->Start();
         return absl::OkStatus();
       }},
      {"start pod-resources poller",
       [&]() -> absl::Status {
         PollerOptions options = p.options.pod_resources;
         // A device that appears, vanishes or changes health changes the kubelet's allocatable.
         CollectorRunner* collectors = p.collectors.get();
         options.last_device_change = [collectors] { return collectors->last_device_change(); };
         p.poller = std::make_unique<PodResourcesPoller>(options, *p.registry);
         p.poller->Start();
         return absl::OkStatus();
       }},
      {"start HTTP server",
       [&]() -> absl::Status {
         auto dra = DraMatcher::Create(p.options.dra);
         if (!dra.ok()) return dra.status();
         p.renderer = std::make_unique<MetricsRenderer>(
             &p.poller->store(), &p.collectors->store(),
             std::vector<std::shared_ptr<prometheus::Collectable>>{p.registry}, *std::move(dra),
             &p.attribution->store(), p.options.metrics);
         HttpServerOptions options;
         options.listen_address = p.options.web.listen_address;
         options.health_listen_address = p.options.web.health_listen_address;
         options.telemetry_path = p.options.web.telemetry_path;
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
                    p.http->bound_address(), p.options.web.telemetry_path);
         if (!p.http->bound_health_address().empty()) {
           Log().info("probes listening address={}", p.http->bound_health_address());
         }
         return absl::OkStatus();
       }},
      {"start device plugin",
       [&]() -> absl::Status {
         if (!p.options.device_plugin.enabled) return absl::OkStatus();
         // The CDI specs give each node's type and numbers, seen through --path.devfs.
         NodeNumbers numbers = [roots = p.options.roots](const std::string& host_path) {
           return StatDeviceNode(roots.DevfsPath(host_path));
         };
         p.plugin = std::make_unique<DevicePluginManager>(
             p.options.device_plugin, p.collectors->store(), *p.registry, std::move(numbers));
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
  return absl::StrCat("http://", address, parts_->options.web.telemetry_path);
}

}  // namespace devscope
