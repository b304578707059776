import Testing
@testable import AVRCore
import AVRProtocol

/// The `/media` endpoint's reading of the request target: the dial string's `v(uuid=…)`.
@Suite struct MediaEndpointTests {
    @Test func uuidParameterOfTheTarget() {
        let uuid = "935652e3-7c59-4edc-b17f-9646a9c2a265"
        #expect(AVRService.uuidParameter("/media?uuid=\(uuid)")?.description == uuid)
        #expect(AVRService.uuidParameter("/media?a=1&uuid=\(uuid.uppercased())&b=2")?.description == uuid)
        #expect(AVRService.uuidParameter("/media") == nil)
        #expect(AVRService.uuidParameter("/media?uuid=") == nil)
        #expect(AVRService.uuidParameter("/media?uuid=not-a-uuid") == nil)
        #expect(AVRService.uuidParameter("/media?xuuid=\(uuid)") == nil)
    }
}
