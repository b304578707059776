internal import CUV
#if canImport(Glibc)
import Glibc
#endif

let SIGINT_VALUE: Int32 = SIGINT
let SIGTERM_VALUE: Int32 = SIGTERM
let UV_EINVAL_VALUE: Int32 = UV_EINVAL.rawValue

/// SIGHUP's default action ends the process. A terminal closing, or an operator's habit of
/// `kill -HUP` to reload, must not end every call: the signal is ignored from the first
/// instruction on, and while the server runs a watcher logs it (`AVRService`).
package func ignoreHangupSignal() { signal(SIGHUP, SIG_IGN) }
let SIGHUP_VALUE: Int32 = SIGHUP
