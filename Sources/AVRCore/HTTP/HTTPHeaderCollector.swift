/// The header lines of one HTTP message as llhttp hands them over, a field or a value possibly
/// in several pieces, with the head's size bounded: the one collector of the request and the
/// response parsers.
struct HTTPHeaderCollector {
    let limit: Int
    private(set) var headers: [(name: String, value: String)] = []
    private var field: [UInt8] = []
    private var value: [UInt8] = []
    private var inValue = false
    private var bytes = 0

    init(limit: Int) { self.limit = limit }

    /// Counts `count` bytes of the head (the request target and status text count too);
    /// false once the head is over the limit.
    mutating func count(_ count: Int) -> Bool {
        bytes += count
        return bytes <= limit
    }

    /// A piece of a header name; false once the head is over the limit.
    mutating func field(_ data: UnsafeRawBufferPointer) -> Bool {
        guard count(data.count) else { return false }
        if inValue { flush() }
        field.append(contentsOf: data)
        return true
    }

    /// A piece of a header value; false once the head is over the limit.
    mutating func value(_ data: UnsafeRawBufferPointer) -> Bool {
        guard count(data.count) else { return false }
        inValue = true
        value.append(contentsOf: data)
        return true
    }

    /// The head is complete: the last header line is added.
    mutating func finish() {
        if inValue || !field.isEmpty { flush() }
    }

    /// For the next message (the buffers are kept).
    mutating func reset() {
        headers.removeAll(keepingCapacity: true)
        field.removeAll(keepingCapacity: true)
        value.removeAll(keepingCapacity: true)
        inValue = false
        bytes = 0
    }

    /// The first header called `name`, whatever its case.
    func first(_ name: String) -> String? {
        let lower = name.lowercased()
        return headers.first { $0.name.lowercased() == lower }?.value
    }

    private mutating func flush() {
        headers.append((String(decoding: field, as: UTF8.self), String(decoding: value, as: UTF8.self)))
        field.removeAll(keepingCapacity: true)
        value.removeAll(keepingCapacity: true)
        inValue = false
    }
}
