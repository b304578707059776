// libspeexdsp's acoustic echo canceller (MDF, Debian libspeexdsp-dev), found through
// pkg-config. Only the EchoCanceller wrapper (Sources/AVRCore/Loop) includes it; the state is an
// opaque pointer.
#include <speex/speex_echo.h>
