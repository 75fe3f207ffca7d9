/// Which model a request may use and which one it gets.
///
/// Order: the requested model (or the default when the request names none) → alias → the global
/// model lock (`force_model`), which replaces any model and is not subject to a key's allow-list (it is
/// the operator's decision for everyone) → the key's allow-list. Ollama names without a tag mean
/// `:latest`, so `llama3.2` and `llama3.2:latest` are the same model everywhere here.
public struct ModelPolicy: Sendable, Equatable {
    public var forceModel: String?
    public var defaultModel: String?
    public var aliases: [String: String]
    /// nil: every model is allowed.
    public var allowed: [ModelPattern]?

    public init(forceModel: String? = nil, defaultModel: String? = nil, aliases: [String: String] = [:], allowed: [ModelPattern]? = nil) {
        self.forceModel = forceModel
        self.defaultModel = defaultModel
        self.aliases = aliases
        self.allowed = allowed
    }

    public enum Decision: Sendable, Equatable {
        /// Use `model`; `rewritten` when it differs from what the request said.
        case use(model: String, rewritten: Bool)
        /// The model is not on the key's allow-list.
        case denied(model: String, allowed: [String])
        /// No model named and no default.
        case missing
    }

    public func resolve(requested: String?) -> Decision {
        let asked = requested.flatMap { $0.isEmpty ? nil : $0 }
        if let forceModel {
            return .use(model: forceModel, rewritten: asked.map { !Self.sameModel($0, forceModel) } ?? true)
        }
        guard let name = asked ?? defaultModel else { return .missing }
        let target = aliases[name] ?? aliases[Self.normalized(name)] ?? name
        if let allowed, !allowed.contains(where: { $0.matches(target) }) {
            return .denied(model: target, allowed: allowed.map(\.description))
        }
        return .use(model: target, rewritten: asked == nil || target != name)
    }

    /// `name:tag`, with `:latest` added when the last path component has no tag.
    public static func normalized(_ name: String) -> String {
        let lastComponent = name.split(separator: "/", omittingEmptySubsequences: false).last ?? ""
        return lastComponent.contains(":") ? name : name + ":latest"
    }

    public static func sameModel(_ a: String, _ b: String) -> Bool { normalized(a) == normalized(b) }
}

/// An allow-list entry: an exact model name, or a prefix ending in `*`.
public struct ModelPattern: Sendable, Equatable, CustomStringConvertible, Codable {
    public let text: String

    public init(_ text: String) { self.text = text }

    /// Encoded as its text.
    public init(from decoder: any Decoder) throws { text = try decoder.singleValueContainer().decode(String.self) }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(text)
    }

    public func matches(_ model: String) -> Bool {
        if text == "*" { return true }
        if text.hasSuffix("*") { return model.hasPrefix(String(text.dropLast())) }
        return ModelPolicy.sameModel(text, model)
    }

    public var description: String { text }

    /// Parses a comma-separated list (`llama3.2, qwen*`); empty entries are ignored.
    public static func list(_ text: String) -> [ModelPattern] {
        text.split(separator: ",").map { String($0).trimmed([" ", "\t"]) }.filter { !$0.isEmpty }.map(ModelPattern.init)
    }
}

extension String {
    fileprivate func trimmed(_ set: Set<Character>) -> String {
        var s = Substring(self)
        while let f = s.first, set.contains(f) { s = s.dropFirst() }
        while let l = s.last, set.contains(l) { s = s.dropLast() }
        return String(s)
    }
}
