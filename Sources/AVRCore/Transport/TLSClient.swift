internal import CTLS

/// TLS client settings for one loop: the trust store (the system's plus `TLS_CA_FILE`) and
/// the resumable sessions, kept per origin (`host:port`) so that later connections to the
/// same STS or webhook receiver resume instead of paying for a full handshake.
///
/// Verification is always on: chain against the trust store, host name or IP address
/// against the certificate, TLS 1.2 at least. Confined to its loop's thread.
package final class TLSClient {
    package struct SetupError: Error, CustomStringConvertible {
        package let reason: String
        package var description: String { reason }
    }

    let context: OpaquePointer
    /// Where ciphertext goes between OpenSSL and the socket (shared by the loop's streams).
    let output: UnsafeMutableRawBufferPointer
    private var tickets: [String: OpaquePointer] = [:]
    private let maxOrigins = 1024
    /// Handshakes completed, and how many of them resumed a session (tests, bench).
    package private(set) var handshakes = 0
    package private(set) var resumedHandshakes = 0
    /// Where handshakes are counted (`avr_tls_handshakes_total`), when the server has metrics.
    var metrics: ServerMetrics?

    package init(caFile: String?) throws(SetupError) {
        var error = [CChar](repeating: 0, count: 256)
        guard let context = ctls_context_new(caFile, &error, error.count) else {
            throw SetupError(reason: String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                + (caFile.map { " (\($0))" } ?? ""))
        }
        self.context = context
        output = .allocate(byteCount: 64 * 1024, alignment: 16)
    }

    deinit {
        for ticket in tickets.values { ctls_ticket_free(ticket) }
        ctls_context_free(context)
        output.deallocate()
    }

    /// A new client session for `host`, offering the origin's saved session if any.
    func makeSession(host: String, origin: String) -> Result<OpaquePointer, StreamFailure> {
        var error = [CChar](repeating: 0, count: 256)
        guard let session = ctls_session_new(context, host, tickets[origin], &error, error.count) else {
            return .failure(.tls(String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)))
        }
        return .success(session)
    }

    /// Keeps the session the server just issued (if any) for the origin's next connection.
    func saveTicket(from session: OpaquePointer, origin: String) {
        guard let ticket = ctls_take_ticket(session) else { return }
        if let old = tickets.updateValue(ticket, forKey: origin) {
            ctls_ticket_free(old)
        } else if tickets.count > maxOrigins {
            // Far more origins than any deployment has: start over rather than grow.
            for (key, value) in tickets where key != origin { ctls_ticket_free(value) }
            tickets = [origin: ticket]
        }
    }

    /// Drops the origin's saved session.
    func forgetSession(origin: String) {
        if let ticket = tickets.removeValue(forKey: origin) { ctls_ticket_free(ticket) }
    }

    /// Drops every saved session: the next connection to each origin pays a full handshake.
    package func forgetSessions() {
        for ticket in tickets.values { ctls_ticket_free(ticket) }
        tickets = [:]
    }

    func handshakeCompleted(resumed: Bool) {
        handshakes += 1
        if resumed { resumedHandshakes += 1 }
        metrics?.tlsHandshake(resumed ? "resumed" : "full")
    }

    func handshakeFailed() {
        metrics?.tlsHandshake("failed")
    }
}

@available(*, unavailable)
extension TLSClient: Sendable {}
