/// Builds one flat-or-nested JSON object as text, for result lines the driver parses.
public struct JSONWriter {
    private var text = "{"
    private var first = true

    public init() {}

    private mutating func key(_ name: String) {
        if !first { text += "," }
        first = false
        text += "\"\(name)\":"
    }

    public mutating func add(_ name: String, _ value: Int) { key(name); text += String(value) }
    public mutating func add(_ name: String, _ value: UInt64) { key(name); text += String(value) }
    public mutating func add(_ name: String, _ value: Double) {
        key(name)
        text += value.isFinite ? String(value) : "null"
    }
    public mutating func add(_ name: String, _ value: String) {
        key(name)
        text += "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": text += "\\\""
            case "\\": text += "\\\\"
            case _ where scalar.value < 0x20: text += "\\u00" + (scalar.value < 0x10 ? "0" : "") + String(scalar.value, radix: 16)
            default: text.unicodeScalars.append(scalar)
            }
        }
        text += "\""
    }
    public mutating func add(_ name: String, object: JSONWriter) { key(name); text += object.result }
    public mutating func add(_ name: String, histogramMilliseconds histogram: Histogram) {
        var object = JSONWriter()
        object.add("count", histogram.count)
        object.add("mean_ms", histogram.meanNanoseconds / 1e6)
        object.add("p50_ms", Double(histogram.percentile(0.50)) / 1e6)
        object.add("p99_ms", Double(histogram.percentile(0.99)) / 1e6)
        object.add("max_ms", Double(histogram.maxNanoseconds) / 1e6)
        add(name, object: object)
    }

    public var result: String { text + "}" }
}
