// The --web.* flags: where and how the HTTP server listens (exporter/http_server.h).
#ifndef DEVSCOPE_EXPORTER_WEB_OPTIONS_H_
#define DEVSCOPE_EXPORTER_WEB_OPTIONS_H_

#include <string>

#include "common/options.h"

namespace devscope {

struct WebOptions {
  std::string listen_address = ":9410";     // --web.listen-address: [HOST]:PORT
  std::string health_listen_address;        // --web.health-listen-address; empty: none
  std::string telemetry_path = "/metrics";  // --web.telemetry-path
  std::string config_file;                  // --web.config.file (exporter/web_config.h)
};
void DeclareOptions(OptionDeclarer& d, WebOptions& o);

}  // namespace devscope

#endif  // DEVSCOPE_EXPORTER_WEB_OPTIONS_H_
