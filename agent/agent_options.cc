#include "agent/agent_options.h"

namespace devscope {

void DeclareOptions(OptionDeclarer& d, AgentOptions& o) {
  DeclareOptions(d, o.web);
  DeclareOptions(d, o.metrics);
  DeclareOptions(d, o.pod_resources);
  DeclareOptions(d, o.roots);
  DeclareOptions(d, o.collector_runs);
  DeclareOptions(d, o.collectors);
  DeclareOptions(d, o.health);
  DeclareOptions(d, o.device_plugin);
  DeclareOptions(d, o.dra);
  DeclareOptions(d, o.attribution);
}

}  // namespace devscope
