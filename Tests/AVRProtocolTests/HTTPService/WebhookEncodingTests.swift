import Testing
@testable import AVRProtocol

@Suite struct ISO8601TimestampTests {
    @Test(arguments: [
        (Int64(0), "1970-01-01T00:00:00.000Z"),
        (1, "1970-01-01T00:00:00.001Z"),
        (-1, "1969-12-31T23:59:59.999Z"),
        (-86_400_000, "1969-12-31T00:00:00.000Z"),
        (1_767_268_800_000, "2026-01-01T12:00:00.000Z"),
        (1_770_758_888_320, "2026-02-10T21:28:08.320Z"),
        (951_782_400_000, "2000-02-29T00:00:00.000Z"),
        (951_868_800_000, "2000-03-01T00:00:00.000Z"),
        (1_709_251_199_999, "2024-02-29T23:59:59.999Z"),
        (1_709_251_200_000, "2024-03-01T00:00:00.000Z"),
        (-2_203_891_200_001, "1900-02-28T23:59:59.999Z"),
        (-2_203_891_200_000, "1900-03-01T00:00:00.000Z"),
        (4_107_542_399_999, "2100-02-28T23:59:59.999Z"),
        (4_107_542_400_000, "2100-03-01T00:00:00.000Z"),
        (253_402_300_799_999, "9999-12-31T23:59:59.999Z"),
        (253_402_300_800_000, "10000-01-01T00:00:00.000Z"),
        (-62_135_596_800_000, "0001-01-01T00:00:00.000Z"),
        (-62_167_219_200_000, "0000-01-01T00:00:00.000Z"),
        (-62_167_219_200_001, "-0001-12-31T23:59:59.999Z"),
    ])
    func formats(milliseconds: Int64, expected: String) {
        #expect(ISO8601Timestamp.format(unixMilliseconds: milliseconds) == expected)
    }

    @Test func extremesDoNotTrap() {
        #expect(ISO8601Timestamp.format(unixMilliseconds: .max).hasSuffix(".807Z"))
        #expect(ISO8601Timestamp.format(unixMilliseconds: .min).hasPrefix("-"))
    }

    /// Walks day by day from 1970 in both directions over ±1200 years with a naive calendar
    /// and compares every date with the closed formula.
    @Test func civilFromDaysMatchesANaiveCalendar() {
        func isLeap(_ year: Int64) -> Bool { year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) }
        func daysIn(_ month: Int, _ year: Int64) -> Int {
            [31, isLeap(year) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
        }
        var (year, month, day): (Int64, Int, Int) = (1970, 1, 1)
        for days in Int64(0)...438_300 {
            let computed = ISO8601Timestamp.civilFromDays(days)
            if computed != (year, month, day) {
                Issue.record("day \(days): \(computed) != \((year, month, day))")
                return
            }
            day += 1
            if day > daysIn(month, year) { day = 1; month += 1 }
            if month > 12 { month = 1; year += 1 }
        }
        (year, month, day) = (1970, 1, 1)
        for days in stride(from: Int64(-1), through: -438_300, by: -1) {
            day -= 1
            if day == 0 {
                month -= 1
                if month == 0 { month = 12; year -= 1 }
                day = daysIn(month, year)
            }
            let computed = ISO8601Timestamp.civilFromDays(days)
            if computed != (year, month, day) {
                Issue.record("day \(days): \(computed) != \((year, month, day))")
                return
            }
        }
    }
}

@Suite struct WebhookEnvelopeTests {
    @Test func seedCallInitiated() throws {
        let payload = try JSONValue.parse(Array(#"{"from":"2000","to":"5001","uniqueid":"1770758888.32","channel":"PJSIP/2000-00000013"}"#.utf8))
        let bytes = WebhookEnvelope.encode(
            uuid: "935652e3-7c59-4edc-b17f-9646a9c2a265", type: WebhookEnvelope.callInitiated,
            timestampMs: 1_767_268_800_000, payload: payload)
        #expect(String(decoding: bytes, as: UTF8.self)
            == #"{"uuid":"935652e3-7c59-4edc-b17f-9646a9c2a265","type":"call_initiated","timestamp":"2026-01-01T12:00:00.000Z","payload":{"from":"2000","to":"5001","uniqueid":"1770758888.32","channel":"PJSIP/2000-00000013"}}"#)
        // And it is JSON a receiver can read back.
        let parsed = try JSONValue.parse(bytes)
        #expect(parsed["payload"] == payload)
        #expect(parsed["timestamp"]?.stringValue == "2026-01-01T12:00:00.000Z")
    }

    @Test func emptyPayloadAndEscaping() {
        let bytes = WebhookEnvelope.encode(uuid: "u\"1", type: "call_ended", timestampMs: 0, payload: [:])
        #expect(String(decoding: bytes, as: UTF8.self)
            == #"{"uuid":"u\"1","type":"call_ended","timestamp":"1970-01-01T00:00:00.000Z","payload":{}}"#)
    }

    @Test func transcriptionPayload() {
        let bytes = WebhookEnvelope.encode(
            uuid: "x", type: WebhookEnvelope.transcription, timestampMs: 1,
            payload: ["role": "agent", "text": "Ciao, è \"ok\"\n"])
        #expect(String(decoding: bytes, as: UTF8.self)
            == #"{"uuid":"x","type":"transcription","timestamp":"1970-01-01T00:00:00.001Z","payload":{"role":"agent","text":"Ciao, è \"ok\"\n"}}"#)
    }
}
