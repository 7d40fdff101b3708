/* libdevscope-civetweb-ssl.so, soname libssl.so: what Debian 12's CivetWeb finds when it opens
 * "libssl.so" (see exporter/tls.h). It depends on OpenSSL 3's libssl.so.3, so every other symbol
 * CivetWeb asks for resolves there, and adds the one OpenSSL 1.1 function OpenSSL 3 dropped. */
#include <openssl/ssl.h>

/* OpenSSL 3's header turns the old name into a macro for the new one. */
#undef SSL_get_peer_certificate
X509 *SSL_get_peer_certificate(const SSL *ssl);

/* OpenSSL 1.1's function and 3.0's replacement both return a new reference. */
X509 *SSL_get_peer_certificate(const SSL *ssl) { return SSL_get1_peer_certificate(ssl); }
