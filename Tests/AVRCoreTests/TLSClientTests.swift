import AVRCore
import Testing

@Suite struct TLSClientTests {
    @Test func systemTrustStoreLoads() throws {
        let client = try TLSClient(caFile: nil)
        #expect(client.handshakes == 0)
    }

    @Test func aCAFileWithoutCertificatesIsRefusedWithItsPath() {
        do {
            _ = try TLSClient(caFile: "/nonexistent/ca.pem")
            Issue.record("an unreadable TLS_CA_FILE was accepted")
        } catch {
            #expect(error.description.contains("cannot load TLS_CA_FILE"))
            #expect(error.description.contains("/nonexistent/ca.pem"))
        }
    }
}
