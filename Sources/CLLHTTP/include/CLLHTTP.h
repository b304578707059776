#ifndef AVR_CLLHTTP_H
#define AVR_CLLHTTP_H
/* The system's llhttp (Debian package node-llhttp, version 8.1). Nothing of llhttp is
   copied into this repository: the header and the sources are included from the system. */
#include "llhttp.h"
#endif
