/* Compiles the system copy of llhttp (node-llhttp). */
#include "/usr/share/llhttp/llhttp.c"
