/// A JSON value that keeps what a peer wrote: object members stay in their written order
/// (the `/call` payload becomes query parameters in that order) and numbers stay as their
/// JSON text (a `uniqueid` like `1770758888.32` must reach the STS exactly as sent, not as
/// a rounded `Double`).
package enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    /// The number's JSON text, as written (for example `-0.5e3`). Build one with
    /// `JSONValue(integer:)` or from a literal so that the text is always valid JSON.
    case number(String)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)
}

/// One `"key": value` pair of a JSON object.
package struct JSONMember: Sendable, Equatable {
    package var key: String
    package var value: JSONValue

    package init(key: String, value: JSONValue) {
        self.key = key
        self.value = value
    }
}

/// A JSON object's members in their written order. Duplicate keys are kept as written;
/// lookup by key answers with the last one, as JavaScript's `JSON.parse` does, so that
/// avr-core and the Node.js services around it read the same value.
package struct JSONObject: Sendable, Equatable, RandomAccessCollection, ExpressibleByDictionaryLiteral {
    package var members: [JSONMember]

    package init(_ members: [JSONMember] = []) {
        self.members = members
    }

    package init(dictionaryLiteral elements: (String, JSONValue)...) {
        members = elements.map { JSONMember(key: $0.0, value: $0.1) }
    }

    package var startIndex: Int { members.startIndex }
    package var endIndex: Int { members.endIndex }
    package subscript(position: Int) -> JSONMember { members[position] }

    /// The value of the last member named `key`, or nil when there is none.
    package subscript(key: String) -> JSONValue? {
        members.last(where: { $0.key == key })?.value
    }

    /// Appends a member at the end (the order is what serialization writes).
    package mutating func append(key: String, value: JSONValue) {
        members.append(JSONMember(key: key, value: value))
    }
}

extension JSONValue {
    /// A JSON number holding `value` exactly.
    package init(integer value: some BinaryInteger) {
        self = .number(String(value))
    }

    /// The member named `key` when this is an object (see `JSONObject.subscript(key:)`).
    package subscript(key: String) -> JSONValue? {
        if case .object(let object) = self { return object[key] }
        return nil
    }

    /// The text when this is a string, nil for every other kind of value.
    package var stringValue: String? {
        if case .string(let text) = self { return text }
        return nil
    }

    package var boolValue: Bool? {
        if case .bool(let flag) = self { return flag }
        return nil
    }

    package var objectValue: JSONObject? {
        if case .object(let object) = self { return object }
        return nil
    }

    package var arrayValue: [JSONValue]? {
        if case .array(let elements) = self { return elements }
        return nil
    }

    package var isNull: Bool {
        if case .null = self { return true }
        return false
    }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByBooleanLiteral, ExpressibleByNilLiteral,
    ExpressibleByIntegerLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    package init(stringLiteral value: String) { self = .string(value) }
    package init(booleanLiteral value: Bool) { self = .bool(value) }
    package init(nilLiteral: ()) { self = .null }
    package init(integerLiteral value: Int) { self = .number(String(value)) }
    package init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    package init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(JSONObject(elements.map { JSONMember(key: $0.0, value: $0.1) }))
    }
}
