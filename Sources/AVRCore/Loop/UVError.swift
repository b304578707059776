internal import CUV

/// A libuv error code with libuv's own name and message ("ECONNREFUSED: connection refused").
package struct UVError: Error, CustomStringConvertible, Equatable, Sendable {
    package let code: Int32

    package init(_ code: Int32) { self.code = code }

    package var name: String { String(cString: uv_err_name(code)) }
    package var description: String { "\(name): \(message)" }
    /// libuv's message alone ("address already in use").
    package var message: String { String(cString: uv_strerror(code)) }

    package var isEndOfFile: Bool { code == cuv_errno_eof() }
    package var isCancelled: Bool { code == cuv_errno_ecanceled() }
    package static var timedOut: UVError { UVError(cuv_errno_etimedout()) }

    /// Throws for a negative libuv status.
    @inline(__always)
    static func check(_ status: Int32) throws(UVError) {
        if status < 0 { throw UVError(status) }
    }
}
