import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import TollgateCore

/// One route of the admin listener, with what the OpenAPI document says about it. Routes are
/// registered from this table and the document is generated from it, so the two cannot drift.
struct AdminEndpoint: Sendable {
    typealias Handler = @Sendable (Request, AdminCall) async throws -> Response

    let method: HTTPRequest.Method
    /// OpenAPI form: `/api/users/{id}`.
    let path: String
    let summary: String
    let tag: String
    /// Reachable without admin credentials (health checks, login, this document).
    var open = false
    var query: [Parameter] = []
    /// The request body's schema (JSON).
    var body: JSONValue?
    /// Success and route-specific error responses; authentication and validation errors are added for every protected route.
    var responses: [Reply]
    let handler: Handler

    struct Parameter: Sendable {
        let name: String
        let schema: JSONValue
        let description: String
    }

    struct Reply: Sendable {
        let status: Int
        let description: String
        var schema: JSONValue?
        var contentType = "application/json"
        var headers: [String] = []
    }

    var pathParameters: [String] {
        path.split(separator: "/").compactMap { $0.hasPrefix("{") && $0.hasSuffix("}") ? String($0.dropFirst().dropLast()) : nil }
    }

    /// Hummingbird's form: `api/users/:id`.
    var routerPath: String {
        path.split(separator: "/").map { $0.hasPrefix("{") ? ":" + $0.dropFirst().dropLast() : String($0) }.joined(separator: "/")
    }
}

/// What a handler gets besides the request.
struct AdminCall: Sendable {
    let context: GatewayRequestContext
    /// Who is acting (`admin` or `key:<id>`), for the audit log.
    var subject: String { context.adminSubject ?? "anonymous" }

    func parameter(_ name: String) throws -> String { try context.parameters.require(name) }
}

/// A request the handler refuses, with the field names that made it so.
struct AdminError: Error {
    let status: HTTPResponse.Status
    let message: String
    var fields: [(String, String)] = []
    var retryAfter: Int?

    static func notFound(_ what: String) -> AdminError { AdminError(status: .notFound, message: what) }
    static func conflict(_ what: String) -> AdminError { AdminError(status: .conflict, message: what) }
    /// 400 naming every field that is wrong, and why.
    static func invalid(_ problems: [(String, String)], what: String = "fields") -> AdminError {
        AdminError(status: .badRequest, message: "invalid \(what): " + problems.map(\.0).joined(separator: ", "), fields: problems)
    }

    var response: Response {
        var body: [(String, JSONValue)] = [("error", .string(message))]
        if !fields.isEmpty { body.append(("fields", .object(fields.map { ($0.0, .string($0.1)) }))) }
        var r = AdminJSON.response(status, .object(body))
        if let retryAfter { r.headers[.retryAfter] = String(retryAfter) }
        if status == .unauthorized { r.headers[.wwwAuthenticate] = "Bearer" }
        return r
    }
}

enum AdminJSON {
    static func response(_ status: HTTPResponse.Status, _ value: JSONValue, headers extra: HTTPFields = [:]) -> Response {
        var headers: HTTPFields = [.contentType: "application/json", .cacheControl: "no-store"]
        headers.append(contentsOf: extra)
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: value.text)))
    }

    /// A page of a list, with the total in `X-Total-Count`.
    static func list(_ items: [JSONValue], total: Int) -> Response {
        var extra = HTTPFields()
        extra[.xTotalCount] = String(total)
        return response(.ok, .array(items), headers: extra)
    }

    static func int(_ v: Int?) -> JSONValue { v.map { .number($0) } ?? .null }
    static func string(_ v: String?) -> JSONValue { v.map { .string($0) } ?? .null }
    static func date(_ d: Date?) -> JSONValue { d.map { .string(timestamp($0)) } ?? .null }

    static func timestamp(_ d: Date) -> String {
        d.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: false, timeZone: TimeZone(identifier: "UTC")!))
    }

    static func parseDate(_ text: String) -> Date? {
        if let d = try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)) { return d }
        if let d = try? Date(text, strategy: Date.ISO8601FormatStyle()) { return d }
        if let d = try? Date(text, strategy: Date.ISO8601FormatStyle().year().month().day()) { return d }
        return nil
    }

    /// USD from nano-dollars, for display (sums are kept in integers).
    static func usd(_ nanos: Int?) -> JSONValue { nanos.map { .number(Double($0) / 1e9) } ?? .null }
    /// An amount as an exact decimal number (`5.00`), for limits set in dollars.
    static func dollars(_ nanos: Int?) -> JSONValue { nanos.map { .number(USDAmount.text($0)) } ?? .null }
}

extension HTTPField.Name {
    static let xTotalCount = HTTPField.Name("x-total-count")!
}

/// Reads a JSON object body field by field, collecting every problem by field name; fields it
/// was not asked about are refused as unknown.
struct AdminBody {
    let fields: [(String, JSONValue)]
    var asked: Set<String> = []
    var problems: [(String, String)] = []

    static func read(_ request: Request) async throws(AdminError) -> AdminBody {
        guard let buffer = try? await request.body.collect(upTo: 256 << 10) else {
            throw AdminError(status: .contentTooLarge, message: "the body must be at most 256 KiB")
        }
        guard let value = try? JSONValue.parse(Array(buffer.readableBytesView), maxDepth: 8), let pairs = value.objectValue else {
            throw AdminError(status: .badRequest, message: "the body must be a JSON object")
        }
        return AdminBody(fields: pairs)
    }

    func has(_ name: String) -> Bool { fields.contains { $0.0 == name } }

    mutating func raw(_ name: String) -> JSONValue? {
        asked.insert(name)
        return fields.last { $0.0 == name }?.1
    }

    mutating func fail(_ name: String, _ why: String) { problems.append((name, why)) }

    /// Absent: nil; present: the value (`.some(nil)` for JSON null when `nullable`).
    mutating func string(_ name: String, nullable: Bool = false, max: Int = 200, required: Bool = false) -> String?? {
        guard let v = raw(name) else {
            if required { fail(name, "is required") }
            return nil
        }
        if v.isNull, nullable { return .some(nil) }
        guard let s = v.stringValue, !s.trimmingCharacters(in: .whitespaces).isEmpty, s.count <= max, !s.unicodeScalars.contains(where: { $0.value < 0x20 })
        else {
            fail(name, nullable ? "must be a string of 1 to \(max) printable characters, or null" : "must be a string of 1 to \(max) printable characters")
            return nil
        }
        return .some(s.trimmingCharacters(in: .whitespaces))
    }

    /// A whole number ≥ `min`, or null (unlimited) when `nullable`.
    mutating func int(_ name: String, min: Int = 0, nullable: Bool = true) -> Int?? {
        guard let v = raw(name) else { return nil }
        if v.isNull, nullable { return .some(nil) }
        guard let n = v.intValue, n >= min, n <= 1_000_000_000_000 else {
            fail(name, "must be a whole number ≥ \(min)" + (nullable ? ", or null" : ""))
            return nil
        }
        return .some(n)
    }

    /// An amount of US dollars as an exact decimal (`5`, `5.00`, `0.25`; at most nine decimals), in
    /// nano-dollars, or null (unlimited).
    mutating func usd(_ name: String) -> Int?? {
        guard let v = raw(name) else { return nil }
        if v.isNull { return .some(nil) }
        guard case .number(let text) = v, let nanos = USDAmount.nanos(text) else {
            fail(name, "must be an amount of US dollars ≥ 0 with at most nine decimals (e.g. 5.00), or null")
            return nil
        }
        return .some(nanos)
    }

    /// A rate over a window (`100/5m`: a count, `/`, a window of s, m or h up to a day), or null.
    mutating func rateWindow(_ name: String) -> RateWindow?? {
        guard let v = raw(name) else { return nil }
        if v.isNull { return .some(nil) }
        guard let text = v.stringValue, let window = RateWindow(text) else {
            fail(name, "must be a count and a window such as 100/5m or 50000/1h (s, m or h, up to 24h), or null")
            return nil
        }
        return .some(window)
    }

    /// A number in `range`, or null.
    mutating func number(_ name: String, range: ClosedRange<Double>) -> Double?? {
        guard let v = raw(name) else { return nil }
        if v.isNull { return .some(nil) }
        guard let n = v.doubleValue, range.contains(n) else {
            fail(name, "must be a number from \(range.lowerBound.formatted()) to \(range.upperBound.formatted()), or null")
            return nil
        }
        return .some(n)
    }

    mutating func bool(_ name: String) -> Bool? {
        guard let v = raw(name) else { return nil }
        guard let b = v.boolValue else {
            fail(name, "must be true or false")
            return nil
        }
        return b
    }

    mutating func date(_ name: String) -> Date?? {
        guard let v = raw(name) else { return nil }
        if v.isNull { return .some(nil) }
        guard let s = v.stringValue, let d = AdminJSON.parseDate(s) else {
            fail(name, "must be an ISO 8601 date-time (2026-12-31T23:59:59Z), or null")
            return nil
        }
        return .some(d)
    }

    /// An array of strings each passing `valid`, or null when `nullable`.
    mutating func strings(_ name: String, nullable: Bool, rule: String, valid: (String) -> Bool) -> [String]?? {
        guard let v = raw(name) else { return nil }
        if v.isNull, nullable { return .some(nil) }
        guard let items = v.arrayValue, items.count <= 200 else {
            fail(name, "must be an array of strings (\(rule))" + (nullable ? ", or null" : ""))
            return nil
        }
        var out: [String] = []
        for item in items {
            guard let s = item.stringValue, valid(s) else {
                fail(name, "must be an array of strings (\(rule))" + (nullable ? ", or null" : ""))
                return nil
            }
            out.append(s)
        }
        return .some(out)
    }

    /// Throws a 400 naming every bad or unknown field.
    func check() throws(AdminError) {
        var all = problems
        for (name, _) in fields where !asked.contains(name) { all.append((name, "is not a known field")) }
        guard !all.isEmpty else { return }
        throw AdminError.invalid(all)
    }
}

/// Query-string reading with the same error shape.
struct AdminQuery {
    let request: Request
    var problems: [(String, String)] = []

    init(_ request: Request) { self.request = request }

    /// Browser forms send every field, empty ones too: for them an empty value means "not given".
    var emptyIsAbsent = false

    /// A parameter as sent (an empty value is sent, and checked like any other, unless ``emptyIsAbsent``).
    func raw(_ name: String) -> String? {
        let value = request.uri.queryParameters[name[...]].map(String.init)
        return emptyIsAbsent && value?.isEmpty == true ? nil : value
    }

    /// A text filter; empty means no filter.
    func string(_ name: String) -> String? {
        raw(name).flatMap { $0.isEmpty ? nil : $0 }
    }

    mutating func int(_ name: String, default value: Int, range: ClosedRange<Int>) -> Int {
        guard let s = raw(name) else { return value }
        guard let n = Int(s), range.contains(n) else {
            problems.append((name, "must be a whole number from \(range.lowerBound) to \(range.upperBound)"))
            return value
        }
        return n
    }

    mutating func date(_ name: String) -> Date? {
        guard let s = raw(name) else { return nil }
        guard let d = AdminJSON.parseDate(s) else {
            problems.append((name, "must be an ISO 8601 date or date-time"))
            return nil
        }
        return d
    }

    mutating func oneOf(_ name: String, _ allowed: [String], default value: String?) -> String? {
        guard let s = raw(name) else { return value }
        guard allowed.contains(s) else {
            problems.append((name, "must be one of " + allowed.joined(separator: ", ")))
            return value
        }
        return s
    }

    func check() throws(AdminError) {
        guard !problems.isEmpty else { return }
        throw AdminError.invalid(problems, what: "query parameters")
    }
}

/// JSON Schema pieces for the OpenAPI document.
enum Schema {
    static let string: JSONValue = .object([("type", .string("string"))])
    static let integer: JSONValue = .object([("type", .string("integer"))])
    static let number: JSONValue = .object([("type", .string("number"))])
    static let boolean: JSONValue = .object([("type", .string("boolean"))])
    static let dateTime: JSONValue = .object([("type", .string("string")), ("format", .string("date-time"))])

    static func nullable(_ s: JSONValue) -> JSONValue {
        guard case .object(var pairs) = s, let i = pairs.firstIndex(where: { $0.0 == "type" }), let t = pairs[i].1.stringValue else {
            return .object([("anyOf", .array([s, .object([("type", .string("null"))])]))])
        }
        pairs[i].1 = .array([.string(t), .string("null")])
        return .object(pairs)
    }

    static func integer(minimum: Int) -> JSONValue { .object([("type", .string("integer")), ("minimum", .number(minimum))]) }
    static func string(maxLength: Int, pattern: String? = nil) -> JSONValue {
        var p: [(String, JSONValue)] = [("type", .string("string")), ("minLength", .number(1)), ("maxLength", .number(maxLength))]
        if let pattern { p.append(("pattern", .string(pattern))) }
        return .object(p)
    }
    static func enumeration(_ values: [String]) -> JSONValue { .object([("type", .string("string")), ("enum", .array(values.map { .string($0) }))]) }
    static func array(_ items: JSONValue) -> JSONValue { .object([("type", .string("array")), ("items", items)]) }
    static func map(_ values: JSONValue) -> JSONValue { .object([("type", .string("object")), ("additionalProperties", values)]) }
    static func ref(_ name: String) -> JSONValue { .object([("$ref", .string("#/components/schemas/\(name)"))]) }

    /// An object; every property is required unless listed in `optional`; no other properties.
    static func object(_ properties: [(String, JSONValue)], optional: Set<String> = [], closed: Bool = true) -> JSONValue {
        var p: [(String, JSONValue)] = [("type", .string("object")), ("properties", .object(properties))]
        let required = properties.map(\.0).filter { !optional.contains($0) }
        if !required.isEmpty { p.append(("required", .array(required.map { .string($0) }))) }
        if closed { p.append(("additionalProperties", .bool(false))) }
        return .object(p)
    }
}
