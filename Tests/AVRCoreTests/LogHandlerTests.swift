import Logging
import Testing
@testable import AVRCore

@Suite struct LogHandlerTests {
    @Test func textLineKeepsTheAVRShapeWithTheUUIDInBrackets() {
        let line = AVRLogHandler.textLine(level: .warning, message: "Playback ran late",
                                          context: ["uuid": "935652e3-7c59-4edc-b17f-9646a9c2a265", "loop": "1"],
                                          fields: [:])
        #expect(String(decoding: line, as: UTF8.self)
            == "[WARN]: [935652e3-7c59-4edc-b17f-9646a9c2a265] Playback ran late\n")
        let plain = AVRLogHandler.textLine(level: .info, message: "AVR server stopped", context: ["loop": "0"], fields: [:])
        #expect(String(decoding: plain, as: UTF8.self) == "[INFO]: AVR server stopped\n")
        let quality = AVRLogHandler.textLine(level: .info, message: "Call quality", context: [:],
                                             fields: ["frames_in": .stringConvertible(10), "codec": "ULAW"])
        #expect(String(decoding: quality, as: UTF8.self) == "[INFO]: Call quality codec=ULAW frames_in=10\n")
    }

    @Test func jsonLineIsOneObjectWithMetadataAsFields() {
        let line = AVRLogHandler.jsonLine(time: 1_767_268_800_123, level: .error, message: "STS error: \"bad\"\nnext",
                                          context: ["uuid": "abc", "frames": .stringConvertible(3),
                                                    "list": ["a", .stringConvertible(2)], "message": "ignored"])
        #expect(String(decoding: line, as: UTF8.self)
            == #"{"time":"2026-01-01T12:00:00.123Z","level":"error","message":"STS error: \"bad\"\nnext","frames":3,"list":["a",2],"uuid":"abc"}"# + "\n")
    }

    @Test func loggerCarriesUUIDAsMetadataAndHonoursTheLevel() {
        final class Lines: @unchecked Sendable { var all: [String] = [] }
        let lines = Lines()
        let backend = Logging.Logger(label: "test") { _ in
            AVRLogHandler(format: .json) { lines.all.append(String(decoding: $0, as: UTF8.self)) }
        }
        let log = Logger(level: .info, backend: backend).with("loop", "0")
        let call = log.with(uuid: CallUUIDFixture.uuid)
        call.debug("hidden")
        call.info("Call started")
        #expect(lines.all.count == 1)
        #expect(lines.all[0].contains(#""message":"Call started","loop":"0","uuid":"935652e3-7c59-4edc-b17f-9646a9c2a265"}"#))
    }
}

import AVRProtocol
enum CallUUIDFixture {
    static let uuid = CallUUID(string: "935652e3-7c59-4edc-b17f-9646a9c2a265")!
}
