// OpenSSL 3 from Debian (libssl-dev), found through pkg-config. Only the CTLS wrapper
// includes it; no OpenSSL type reaches Swift.
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
