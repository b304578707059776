import AVRCore
import Foundation
import Testing

@Suite struct TLSClientTests {
    @Test func systemTrustStoreLoads() throws {
        let client = try TLSClient(caFile: nil)
        #expect(client.handshakes == 0)
    }

    @Test func aMissingCAFileIsRefusedWithItsPath() {
        do {
            _ = try TLSClient(caFile: "/nonexistent/ca.pem")
            Issue.record("a missing TLS_CA_FILE was accepted")
        } catch {
            #expect(error.description.contains("cannot read TLS_CA_FILE as PEM"))
            #expect(error.description.contains("no such file"))
            #expect(error.description.contains("/nonexistent/ca.pem"))
        }
    }

    @Test func aCAFileWithoutCertificatesIsRefusedWithItsPath() throws {
        let path = "/tmp/avr-tls-test-\(getpid())-empty.pem"
        let garbage = "not a certificate\n-----BEGIN NOTHING-----\n"
        #expect(FileManager.default.createFile(atPath: path, contents: Data(garbage.utf8)))
        defer { try? FileManager.default.removeItem(atPath: path) }
        do {
            _ = try TLSClient(caFile: path)
            Issue.record("a TLS_CA_FILE without certificates was accepted")
        } catch {
            #expect(error.description.contains("TLS_CA_FILE"))
            #expect(error.description.contains(path))
        }
    }
}
