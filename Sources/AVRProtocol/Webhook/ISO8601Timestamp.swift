/// UTC timestamps as webhooks carry them, `2026-01-01T12:00:00.000Z`, computed with integer
/// arithmetic (no Foundation, no time zone database, nothing allocated besides the result).
package enum ISO8601Timestamp {
    /// `unixMilliseconds` since 1970-01-01T00:00:00Z (negative before it) as
    /// `YYYY-MM-DDTHH:MM:SS.mmmZ`. Years beyond 9999 get more digits, years before 0000
    /// a leading `-`.
    package static func format(unixMilliseconds: Int64) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(24)
        append(unixMilliseconds: unixMilliseconds, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends the formatted timestamp to `bytes`.
    package static func append(unixMilliseconds: Int64, to bytes: inout [UInt8]) {
        let (seconds, milliseconds) = floorDivide(unixMilliseconds, 1000)
        let (days, secondOfDay) = floorDivide(seconds, 86_400)
        let (year, month, day) = civilFromDays(days)
        if year < 0 { bytes.append(UInt8(ascii: "-")) }
        appendDigits(year.magnitude, minimumWidth: 4, to: &bytes)
        bytes.append(UInt8(ascii: "-"))
        appendDigits(UInt64(month), minimumWidth: 2, to: &bytes)
        bytes.append(UInt8(ascii: "-"))
        appendDigits(UInt64(day), minimumWidth: 2, to: &bytes)
        bytes.append(UInt8(ascii: "T"))
        appendDigits(UInt64(secondOfDay / 3600), minimumWidth: 2, to: &bytes)
        bytes.append(UInt8(ascii: ":"))
        appendDigits(UInt64(secondOfDay / 60 % 60), minimumWidth: 2, to: &bytes)
        bytes.append(UInt8(ascii: ":"))
        appendDigits(UInt64(secondOfDay % 60), minimumWidth: 2, to: &bytes)
        bytes.append(UInt8(ascii: "."))
        appendDigits(UInt64(milliseconds), minimumWidth: 3, to: &bytes)
        bytes.append(UInt8(ascii: "Z"))
    }

    /// Proleptic Gregorian date of the day `days` after 1970-01-01 (Howard Hinnant's
    /// `civil_from_days`: shift to eras of 400 years starting on March 1st, so the leap day
    /// is the last day of a "year").
    static func civilFromDays(_ days: Int64) -> (year: Int64, month: Int, day: Int) {
        let shifted = days + 719_468  // days from 0000-03-01 to 1970-01-01
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097  // 0...146096
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365  // 0...399
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)  // 0...365, from March 1st
        let shiftedMonth = (5 * dayOfYear + 2) / 153  // 0...11, March = 0
        let day = Int(dayOfYear - (153 * shiftedMonth + 2) / 5 + 1)
        let month = Int(shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9)
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return (year, month, day)
    }

    private static func floorDivide(_ value: Int64, _ divisor: Int64) -> (quotient: Int64, remainder: Int64) {
        var quotient = value / divisor
        var remainder = value % divisor
        if remainder < 0 {
            quotient -= 1
            remainder += divisor
        }
        return (quotient, remainder)
    }

    /// Decimal digits of `value`, zero-padded to `minimumWidth`, written in place.
    private static func appendDigits(_ value: UInt64, minimumWidth: Int, to bytes: inout [UInt8]) {
        var count = 1
        var probe = value
        while probe >= 10 {
            probe /= 10
            count += 1
        }
        bytes.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: max(minimumWidth, count)))
        var rest = value
        var position = bytes.count - 1
        repeat {
            bytes[position] = UInt8(ascii: "0") + UInt8(rest % 10)
            rest /= 10
            position -= 1
        } while rest > 0
    }
}
