internal import CUV
#if canImport(Glibc)
import Glibc
#endif

let SIGINT_VALUE: Int32 = SIGINT
let SIGTERM_VALUE: Int32 = SIGTERM
