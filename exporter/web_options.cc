#include "exporter/web_options.h"

#include "absl/strings/str_cat.h"

namespace devscope {

void DeclareOptions(OptionDeclarer& d, WebOptions& o) {
  d.Flag(
       "web.listen-address", o.listen_address,
       "HTTP listen address, [HOST]:PORT (HOST an IPv4 address, or IPv6 in brackets; empty: every "
       "IPv4 address)")
      .Group("Web");
  d.Flag("web.health-listen-address", o.health_listen_address,
         "Plain-HTTP listen address, [HOST]:PORT, serving /healthz and /readyz alone and without "
         "credentials, for probes that present none (the kubelet's); empty: none")
      .Group("Web")
      .DocNote(
          "what the Helm chart's probes use: they work with every web config, client "
          "certificates included");
  d.Flag("web.telemetry-path", o.telemetry_path, "Path of the metrics endpoint")
      .Group("Web")
      .Check([&o] {
        const std::string& path = o.telemetry_path;
        if (!path.empty() && path[0] == '/' && path != "/") return absl::OkStatus();
        return absl::InvalidArgumentError(
            absl::StrCat("\"", path, "\" must start with / and not be / itself"));
      });
  d.Flag("web.config.file", o.config_file,
         "Web config, exporter-toolkit style: basic_auth_users (bcrypt), tls_server_config, "
         "http_server_config.headers")
      .Group("Web")
      .DocNote("devscope's reading: [the web config](#the-web-config)");
}

}  // namespace devscope
