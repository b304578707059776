import Testing
@testable import AVRProtocol

@Suite struct WebhookSignatureTests {
    private let body = Array(#"{"uuid":"u","type":"call_started","timestamp":"2026-01-01T12:00:00.000Z","payload":{}}"#.utf8)

    /// The expected HMACs were computed with Python's `hmac` over `b"1767268800." + body`.
    @Test func headerValueIsTimestampAndHexHMACOfTimestampDotBody() {
        #expect(WebhookSignature(secret: "s3cr3t").headerValue(body: body, unixSeconds: 1_767_268_800)
            == "t=1767268800,v1=33e5dd7e70d820acf0145668241b6a5e6092fcb7c021006594cf7b3117011e24")
        // The secret's UTF-8 bytes are the key.
        #expect(WebhookSignature(secret: "clé").headerValue(body: body, unixSeconds: 1_767_268_800)
            == "t=1767268800,v1=141a699d8e569ca343a17296ad6fc1066e8335c5fa366256e66543448f9a3235")
    }

    @Test func aRetryLaterIsSignedWithItsOwnTimestamp() {
        let signer = WebhookSignature(secret: "s3cr3t")
        let first = signer.headerValue(body: body, unixSeconds: 1_767_268_800)
        let retry = signer.headerValue(body: body, unixSeconds: 1_767_268_805)
        #expect(first != retry)
        #expect(retry.hasPrefix("t=1767268805,v1="))
        #expect((try? signer.verify(headerValue: retry, body: body, nowSeconds: 1_767_268_805)) != nil)
    }

    @Test func verifyAcceptsTheHeaderItMadeWithinTheTolerance() throws {
        let signer = WebhookSignature(secret: "s3cr3t")
        let header = signer.headerValue(body: body, unixSeconds: 1_000)
        try signer.verify(headerValue: header, body: body, nowSeconds: 1_000)
        try signer.verify(headerValue: header, body: body, nowSeconds: 1_300)
        try signer.verify(headerValue: header, body: body, nowSeconds: 700)
        // Spaces after commas, and an unknown scheme beside v1, are tolerated.
        try signer.verify(headerValue: header.replacingOccurrences(",", ", ") + ",v0=abc", body: body, nowSeconds: 1_000)
    }

    @Test func verifyRefusesTamperingStalenessAndOtherSecrets() {
        let signer = WebhookSignature(secret: "s3cr3t")
        let header = signer.headerValue(body: body, unixSeconds: 1_000)
        var tampered = body
        tampered[tampered.count - 3] = UInt8(ascii: " ")
        #expect(throws: WebhookSignature.Rejection.mismatch) {
            try signer.verify(headerValue: header, body: tampered, nowSeconds: 1_000)
        }
        #expect(throws: WebhookSignature.Rejection.staleTimestamp) {
            try signer.verify(headerValue: header, body: body, nowSeconds: 1_301)
        }
        #expect(throws: WebhookSignature.Rejection.staleTimestamp) {
            try signer.verify(headerValue: header, body: body, nowSeconds: 699)
        }
        #expect(throws: WebhookSignature.Rejection.mismatch) {
            try WebhookSignature(secret: "other").verify(headerValue: header, body: body, nowSeconds: 1_000)
        }
        // The timestamp is signed: moving it breaks the signature.
        #expect(throws: WebhookSignature.Rejection.mismatch) {
            try signer.verify(headerValue: header.replacingOccurrences("t=1000", "t=1001"), body: body, nowSeconds: 1_000)
        }
        for malformed in ["", "v1=abc", "t=1000", "t=abc,v1=00", "t=-5,v1=00", "garbage"] {
            #expect(throws: WebhookSignature.Rejection.malformedHeader) {
                try signer.verify(headerValue: malformed, body: body, nowSeconds: 1_000)
            }
        }
    }
}

extension String {
    fileprivate func replacingOccurrences(_ target: String, _ replacement: String) -> String {
        split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
