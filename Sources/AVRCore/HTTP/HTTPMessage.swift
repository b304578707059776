import AVRProtocol

/// A complete HTTP request as the service sees it.
package struct HTTPRequest: Sendable {
    package var method: String
    package var target: String
    package var headers: [(name: String, value: String)]
    package var body: [UInt8]
    package var keepAlive: Bool

    /// The path part of the target (before `?`); an absolute-form target is already turned
    /// into its path by the parser.
    package var path: Substring { target.prefix { $0 != "?" } }

    /// The first header with this name (case-insensitive).
    package func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }
}

/// A response; `Content-Length` and `Connection` are added when it is serialised.
package struct HTTPResponse: Sendable {
    package var status: Int
    package var contentType: String?
    package var headers: [(name: String, value: String)]
    package var body: [UInt8]
    /// Close the connection after this response even if the client wants to keep it.
    package var closesConnection: Bool

    package init(status: Int, contentType: String? = "application/json", headers: [(name: String, value: String)] = [],
                body: [UInt8], closesConnection: Bool = false) {
        self.status = status
        self.contentType = contentType
        self.headers = headers
        self.body = body
        self.closesConnection = closesConnection
    }

    package static func json(_ status: Int, _ text: String) -> HTTPResponse {
        HTTPResponse(status: status, body: Array(text.utf8))
    }

    /// `{"error":"<message>"}` with the message escaped as a JSON string.
    package static func error(_ status: Int, _ message: String, closesConnection: Bool = false,
                             headers: [(name: String, value: String)] = []) -> HTTPResponse {
        HTTPResponse(status: status, headers: headers, body: JSONErrorBody.make(message), closesConnection: closesConnection)
    }

    /// `omittingBody`: the answer to a HEAD request: the same head (Content-Length included),
    /// no body.
    func serialized(keepAlive: Bool, omittingBody: Bool = false) -> [UInt8] {
        HTTPResponseHead.serialize(status: status, contentType: contentType, body: body, keepAlive: keepAlive,
                                   extraHeaders: headers.map { ($0.name, $0.value) }, omittingBody: omittingBody)
    }
}
