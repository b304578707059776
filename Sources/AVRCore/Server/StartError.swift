/// Why the server could not start, in words that name the setting to change.
///
/// A listener that cannot bind says which variable chose the port and which address it tried:
/// `Cannot listen on HTTP_PORT=6001 (0.0.0.0): address already in use`. Anything else keeps
/// libuv's name and message after `Cannot start: `.
package struct StartError: Error, CustomStringConvertible, Sendable {
    /// The listener being bound when it failed: its variable, port and address.
    package struct Listener: Sendable, Equatable {
        package let variable: String
        package let port: Int
        package let address: String
    }

    package let listener: Listener?
    /// Set when the failure is not libuv's (a TLS trust store that cannot be loaded).
    package let message: String?
    package let cause: UVError

    package init(listener: Listener? = nil, message: String? = nil, cause: UVError) {
        self.listener = listener
        self.message = message
        self.cause = cause
    }

    package var description: String {
        if let message { return "Cannot start: \(message)" }
        guard let listener else { return "Cannot start: \(cause)" }
        return "Cannot listen on \(listener.variable)=\(listener.port) (\(listener.address)): \(cause.message)"
    }
}
