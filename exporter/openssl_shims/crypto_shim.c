/* libdevscope-civetweb-crypto.so, soname libcrypto.so: what Debian 12's CivetWeb finds when it
 * opens "libcrypto.so" (see exporter/tls.h). It defines nothing; it depends on OpenSSL 3's
 * libcrypto.so.3, where CivetWeb's symbol lookups through it resolve. */
typedef int devscope_iso_c_needs_a_declaration;
