// TLS for the HTTP server, from the web config's tls_server_config.
//
// The HTTP transport (exporter/http_transport.h) does the handshakes with OpenSSL 3 through
// Boost.Asio; this configures its SSL_CTX with what the exporter toolkit can say (a separate key
// file, client certificate modes, versions, suites, curves). The certificate and key are read
// again when their files change, so a rotated certificate (a cert-manager Secret, say) is served
// on the next connection without a restart.
#ifndef DEVSCOPE_EXPORTER_TLS_H_
#define DEVSCOPE_EXPORTER_TLS_H_

#include <sys/stat.h>

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "exporter/web_config.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"

typedef struct ssl_st SSL;
typedef struct ssl_ctx_st SSL_CTX;

namespace devscope {

class TlsServer {
 public:
  // Loads the certificate, key and client CA once to report problems before serving. With a
  // registry, exports the served certificate's expiry and the failed reloads.
  static absl::StatusOr<std::unique_ptr<TlsServer>> Create(const TlsServerConfig& config,
                                                           prometheus::Registry* registry);
  ~TlsServer();

  // Sets versions, suites, curves, client verification and the per-connection certificate
  // callback on the transport's context.
  absl::Status Configure(SSL_CTX* ctx);

 private:
  struct KeyPair;
  struct FileStamp {
    ino_t inode = 0;
    off_t size = 0;
    timespec modified{};
    bool operator==(const FileStamp& other) const;
  };

  explicit TlsServer(const TlsServerConfig& config) : config_(config) {}
  // Installs `pair` as the one to serve and records its expiry.
  void Install(std::shared_ptr<const KeyPair> pair) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static FileStamp Stamp(const std::string& path);
  static absl::StatusOr<std::shared_ptr<const KeyPair>> LoadKeyPair(const TlsServerConfig& config);
  static int CertificateCallback(SSL* ssl, void* self);
  // The pair to serve, reloaded first when a file changed (checked at most once a second).
  std::shared_ptr<const KeyPair> Current() ABSL_LOCKS_EXCLUDED(mu_);

  const TlsServerConfig config_;
  absl::Mutex mu_;
  std::shared_ptr<const KeyPair> pair_ ABSL_GUARDED_BY(mu_);  // never null after Create
  FileStamp cert_stamp_ ABSL_GUARDED_BY(mu_);
  FileStamp key_stamp_ ABSL_GUARDED_BY(mu_);
  absl::Time last_check_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  // To log a failing reload once, not per connection.
  bool reload_failing_ ABSL_GUARDED_BY(mu_) = false;
  prometheus::Gauge* expiry_ = nullptr;  // devscope_tls_certificate_expiry_timestamp_seconds
  prometheus::Counter* reload_failures_ =
      nullptr;  // devscope_tls_certificate_reload_failures_total
};

}  // namespace devscope

#endif  // DEVSCOPE_EXPORTER_TLS_H_
