internal import CUV

/// A libuv error code with libuv's own name and message ("ECONNREFUSED: connection refused").
public struct UVError: Error, CustomStringConvertible, Equatable, Sendable {
    public let code: Int32

    public init(_ code: Int32) { self.code = code }

    public var name: String { String(cString: uv_err_name(code)) }
    public var description: String { "\(name): \(String(cString: uv_strerror(code)))" }

    public var isEndOfFile: Bool { code == cuv_errno_eof() }
    public var isCancelled: Bool { code == cuv_errno_ecanceled() }
    public static var timedOut: UVError { UVError(cuv_errno_etimedout()) }

    /// Throws for a negative libuv status.
    @inline(__always)
    static func check(_ status: Int32) throws(UVError) {
        if status < 0 { throw UVError(status) }
    }
}
