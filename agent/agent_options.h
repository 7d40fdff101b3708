// Everything the agent runs with: each module's own options, composed. Each part goes to its
// component alone (the poller gets `pod_resources`, the plugin `device_plugin`, ...).
#ifndef DEVSCOPE_AGENT_AGENT_OPTIONS_H_
#define DEVSCOPE_AGENT_AGENT_OPTIONS_H_

#include "collectors/health.h"
#include "collectors/node_roots.h"
#include "collectors/registry.h"
#include "collectors/runner.h"
#include "common/options.h"
#include "deviceplugin/plugin_options.h"
#include "exporter/dra_match.h"
#include "exporter/metrics_options.h"
#include "exporter/web_options.h"
#include "kubelet/poller.h"
#include "kubelet/process_attribution.h"

namespace devscope {

struct AgentOptions {
  WebOptions web;                 // --web.*
  MetricsOptions metrics;         // --[no-]metrics.holder-labels
  PollerOptions pod_resources;    // --kubelet.pod-resources-socket, --pod-resources.*
  NodeRoots roots;                // --path.*
  RunnerOptions collector_runs;   // collectors.interval, collectors.stale_after
  CollectorSelection collectors;  // --[no-]collector.NAME, --collector.NAME.*, collectors.NAME.*
  HealthOptions health;           // health.*
  // --[no-]device-plugin, --kubelet.device-plugins-dir, device_plugin.*
  PluginOptions device_plugin;
  DraOptions dra;  // dra.*
  // --path.procfs, --container-runtime.*: per-process attribution
  ProcessAttributionOptions attribution;
};

// The one function that declares every option of the agent, module by module.
void DeclareOptions(OptionDeclarer& d, AgentOptions& o);

}  // namespace devscope

#endif  // DEVSCOPE_AGENT_AGENT_OPTIONS_H_
