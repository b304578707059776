#if canImport(Glibc)
import Glibc
#endif

/// `--name value` and `--flag` command-line options; unknown names are an error so a typo in
/// the bench driver does not silently run the wrong experiment.
public struct Arguments {
    private var values: [String: String] = [:]
    private var used: Set<String> = []

    public init(_ arguments: [String] = Array(CommandLine.arguments.dropFirst())) {
        var index = 0
        while index < arguments.count {
            let name = arguments[index]
            guard name.hasPrefix("--") else { Arguments.fail("unexpected argument \(name)") }
            let key = String(name.dropFirst(2))
            if index + 1 < arguments.count, !arguments[index + 1].hasPrefix("--") {
                values[key] = arguments[index + 1]
                index += 2
            } else {
                values[key] = ""
                index += 1
            }
        }
    }

    public mutating func string(_ name: String, default value: String? = nil) -> String? {
        used.insert(name)
        return values[name] ?? value
    }

    public mutating func int(_ name: String, default value: Int) -> Int {
        used.insert(name)
        guard let text = values[name] else { return value }
        guard let number = Int(text) else { Arguments.fail("--\(name) wants an integer, got \(text)") }
        return number
    }

    public mutating func double(_ name: String, default value: Double) -> Double {
        used.insert(name)
        guard let text = values[name] else { return value }
        guard let number = Double(text) else { Arguments.fail("--\(name) wants a number, got \(text)") }
        return number
    }

    public mutating func flag(_ name: String) -> Bool {
        used.insert(name)
        return values[name] != nil
    }

    /// Call after reading every option.
    public func rejectUnknown() {
        for key in values.keys where !used.contains(key) { Arguments.fail("unknown option --\(key)") }
    }

    public static func fail(_ message: String) -> Never {
        printError(message)
        exit(2)
    }
}

/// One line on stderr.
public func printError(_ message: String) {
    var line = message + "\n"
    line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

/// One line on stdout, flushed at once (the driver reads it through a pipe).
public func printLine(_ message: String) {
    var line = message + "\n"
    line.withUTF8 { _ = write(1, $0.baseAddress, $0.count) }
}
