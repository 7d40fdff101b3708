#include "exporter/tls.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <ctime>
#include <exception>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/log.h"

namespace devscope {
namespace {

// OpenSSL's queued errors as one line, and the queue cleared.
std::string OpenSslErrors() {
  std::string text;
  while (unsigned long code = ERR_get_error()) {
    char buffer[256];
    ERR_error_string_n(code, buffer, sizeof(buffer));
    absl::StrAppend(&text, text.empty() ? "" : "; ", buffer);
  }
  return text.empty() ? "no detail from OpenSSL" : text;
}

// A private key protected by a passphrase is refused rather than prompted for on a terminal.
int NoPassphrase(char*, int, int, void*) { return 0; }

// Accepts whatever certificate a client sends (RequestClientCert, RequireAnyClientCert).
int AcceptAnyCertificate(int, X509_STORE_CTX*) { return 1; }

}  // namespace

struct TlsServer::KeyPair {
  X509* certificate = nullptr;
  STACK_OF(X509) * chain = nullptr;
  EVP_PKEY* key = nullptr;
  KeyPair() = default;
  KeyPair(const KeyPair&) = delete;
  KeyPair& operator=(const KeyPair&) = delete;
  ~KeyPair() {
    X509_free(certificate);
    sk_X509_pop_free(chain, X509_free);
    EVP_PKEY_free(key);
  }
};

namespace {

using BioPtr = std::unique_ptr<BIO, decltype(&BIO_free)>;

absl::StatusOr<BioPtr> ReadPem(const std::string& path) {
  auto text = ReadSmallFile(path, 1 << 20);
  if (!text.ok())
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", text.status().message()));
  // BIO_new_mem_buf does not copy: the text goes into a memory BIO that owns its copy.
  BioPtr bio(BIO_new(BIO_s_mem()), &BIO_free);
  if (bio == nullptr || BIO_write(bio.get(), text->data(), static_cast<int>(text->size())) !=
                            static_cast<int>(text->size())) {
    return absl::ResourceExhaustedError(absl::StrCat(path, ": ", OpenSslErrors()));
  }
  return bio;
}

}  // namespace

bool TlsServer::FileStamp::operator==(const FileStamp& other) const {
  return inode == other.inode && size == other.size && modified.tv_sec == other.modified.tv_sec &&
         modified.tv_nsec == other.modified.tv_nsec;
}

TlsServer::FileStamp TlsServer::Stamp(const std::string& path) {
  FileStamp stamp;
  struct stat info;
  if (stat(path.c_str(), &info) == 0) stamp = {info.st_ino, info.st_size, info.st_mtim};
  return stamp;
}

absl::StatusOr<std::shared_ptr<const TlsServer::KeyPair>> TlsServer::LoadKeyPair(
    const TlsServerConfig& config) {
  auto pair = std::make_shared<KeyPair>();
  auto cert_pem = ReadPem(config.cert_file);
  if (!cert_pem.ok()) return cert_pem.status();
  // The server's certificate first, then its chain.
  pair->certificate = PEM_read_bio_X509(cert_pem->get(), nullptr, NoPassphrase, nullptr);
  if (pair->certificate == nullptr) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat(config.cert_file, ": no PEM certificate in it"));
  }
  pair->chain = sk_X509_new_null();
  while (X509* link = PEM_read_bio_X509(cert_pem->get(), nullptr, NoPassphrase, nullptr)) {
    sk_X509_push(pair->chain, link);
  }
  ERR_clear_error();  // the end of the file
  auto key_pem = ReadPem(config.key_file);
  if (!key_pem.ok()) return key_pem.status();
  pair->key = PEM_read_bio_PrivateKey(key_pem->get(), nullptr, NoPassphrase, nullptr);
  if (pair->key == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        config.key_file, ": no unencrypted PEM private key in it (", OpenSslErrors(), ")"));
  }
  if (X509_check_private_key(pair->certificate, pair->key) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        absl::StrCat(config.key_file, " is not the key of ", config.cert_file));
  }
  return std::shared_ptr<const KeyPair>(std::move(pair));
}

TlsServer::~TlsServer() = default;

absl::StatusOr<std::unique_ptr<TlsServer>> TlsServer::Create(const TlsServerConfig& config,
                                                             prometheus::Registry* registry) {
  std::unique_ptr<TlsServer> server(new TlsServer(config));
  if (registry != nullptr) {
    server->expiry_ = &prometheus::BuildGauge()
                           .Name("devscope_tls_certificate_expiry_timestamp_seconds")
                           .Help(
                               "Unix time at which the certificate devscope serves HTTPS with "
                               "expires (tls_server_config.cert_file, as last loaded).")
                           .Register(*registry)
                           .Add({});
    server->reload_failures_ =
        &prometheus::BuildCounter()
             .Name("devscope_tls_certificate_reload_failures_total")
             .Help(
                 "Failed loads of changed certificate or key files (tried again at most once "
                 "a second); the previous pair stays in service.")
             .Register(*registry)
             .Add({});
  }
  // Stamped before reading: a file that changes in between is read again on the next check.
  const FileStamp cert_stamp = Stamp(config.cert_file), key_stamp = Stamp(config.key_file);
  auto pair = LoadKeyPair(config);
  if (!pair.ok()) return pair.status();
  {
    absl::MutexLock lock(&server->mu_);
    server->cert_stamp_ = cert_stamp;
    server->key_stamp_ = key_stamp;
    server->Install(*std::move(pair));
    server->last_check_ = absl::Now();
  }
  if (!config.client_ca_file.empty()) {
    auto ca = ReadPem(config.client_ca_file);
    if (!ca.ok()) return ca.status();
    X509* first = PEM_read_bio_X509(ca->get(), nullptr, NoPassphrase, nullptr);
    if (first == nullptr) {
      ERR_clear_error();
      return absl::InvalidArgumentError(
          absl::StrCat(config.client_ca_file, ": no PEM certificate in it"));
    }
    X509_free(first);
  }
  return server;
}

void TlsServer::Install(std::shared_ptr<const KeyPair> pair) {
  pair_ = std::move(pair);
  if (expiry_ == nullptr) return;
  std::tm expires{};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(pair_->certificate), &expires) == 1) {
    expiry_->Set(static_cast<double>(timegm(&expires)));
  }
}

std::shared_ptr<const TlsServer::KeyPair> TlsServer::Current() {
  absl::MutexLock lock(&mu_);
  const absl::Time now = absl::Now();
  if (now - last_check_ < absl::Seconds(1)) return pair_;
  last_check_ = now;
  const FileStamp cert = Stamp(config_.cert_file), key = Stamp(config_.key_file);
  if (cert == cert_stamp_ && key == key_stamp_) return pair_;
  auto loaded = LoadKeyPair(config_);
  if (!loaded.ok()) {
    // Keep serving the pair that worked; a half-written rotation is retried a second later.
    if (!reload_failing_) {
      Log().warn("tls: keeping the current certificate, the new one does not load: {}",
                 loaded.status().message());
    }
    reload_failing_ = true;
    if (reload_failures_ != nullptr) reload_failures_->Increment();
    return pair_;
  }
  Log().info("tls: certificate reloaded from {}", config_.cert_file);
  Install(*std::move(loaded));
  cert_stamp_ = cert;
  key_stamp_ = key;
  reload_failing_ = false;
  return pair_;
}

int TlsServer::CertificateCallback(SSL* ssl, void* self) {
  // Called by OpenSSL on the HTTP event loop: nothing may escape.
  try {
    std::shared_ptr<const KeyPair> pair = static_cast<TlsServer*>(self)->Current();
    // Takes its own references: the pair may be replaced while this connection lives.
    return SSL_use_cert_and_key(ssl, pair->certificate, pair->key, pair->chain, 1) == 1 ? 1 : 0;
  } catch (const std::exception& e) {
    Log().error("tls: certificate callback failed: {}", e.what());
  } catch (...) {
    Log().error("tls: certificate callback failed");
  }
  return 0;
}

absl::Status TlsServer::Configure(SSL_CTX* ctx) {
  auto fail = [](absl::string_view what) {
    return absl::InvalidArgumentError(
        absl::StrCat("tls_server_config: ", what, ": ", OpenSslErrors()));
  };
  if (SSL_CTX_set_min_proto_version(ctx, config_.min_version) != 1 ||
      SSL_CTX_set_max_proto_version(ctx, config_.max_version) != 1) {
    return fail("TLS versions");
  }
  if (!config_.cipher_list.empty() &&
      SSL_CTX_set_cipher_list(ctx, config_.cipher_list.c_str()) != 1) {
    return fail("cipher_suites");
  }
  if (!config_.groups.empty() && SSL_CTX_set1_groups_list(ctx, config_.groups.c_str()) != 1) {
    return fail("curve_preferences");
  }
  if (config_.prefer_server_cipher_suites) {
    SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
  } else {
    SSL_CTX_clear_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
  }
  std::shared_ptr<const KeyPair> pair = Current();
  if (SSL_CTX_use_cert_and_key(ctx, pair->certificate, pair->key, pair->chain, 1) != 1) {
    return fail("certificate");
  }
  SSL_CTX_set_cert_cb(ctx, &TlsServer::CertificateCallback, this);

  using ClientAuth = TlsServerConfig::ClientAuth;
  // Sessions resumed with client verification on need a context id, or OpenSSL fails them.
  static constexpr unsigned char kSessionContext[] = "devscope";
  SSL_CTX_set_session_id_context(ctx, kSessionContext, sizeof(kSessionContext) - 1);
  switch (config_.client_auth) {
    case ClientAuth::kNone:
      SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
      break;
    case ClientAuth::kRequest:
      SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, &AcceptAnyCertificate);
      break;
    case ClientAuth::kRequireAny:
      SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                         &AcceptAnyCertificate);
      break;
    case ClientAuth::kVerifyIfGiven:
    case ClientAuth::kRequireAndVerify: {
      const char* ca = config_.client_ca_file.c_str();
      STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(ca);
      if (names == nullptr || SSL_CTX_load_verify_locations(ctx, ca, nullptr) != 1) {
        sk_X509_NAME_pop_free(names, X509_NAME_free);
        return fail("client_ca_file");
      }
      SSL_CTX_set_client_CA_list(ctx, names);  // takes ownership
      int mode = SSL_VERIFY_PEER;
      if (config_.client_auth == ClientAuth::kRequireAndVerify) {
        mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
      }
      SSL_CTX_set_verify(ctx, mode, nullptr);
      break;
    }
  }
  return absl::OkStatus();
}

}  // namespace devscope
