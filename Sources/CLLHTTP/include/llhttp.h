/* Forwards to the system llhttp header; llhttp's own sources include "llhttp.h". */
#include "/usr/share/include/llhttp/llhttp.h"
