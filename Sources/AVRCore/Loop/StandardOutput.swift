internal import CUV
#if canImport(Glibc)
import Glibc
#endif

/// One `write(2)` to standard output (log lines must not interleave or sit in a buffer).
func writeStdout(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> Int {
    write(1, bytes, count)
}
