import Foundation

/// One upstream server and the dialect it speaks.
public struct Backend: Sendable, Equatable {
    public enum Dialect: String, Sendable { case ollama }
    public let name: String
    public let dialect: Dialect
    /// Base URL without a trailing slash, e.g. `http://localhost:11434`.
    public let baseURL: String

    public init(name: String, dialect: Dialect, baseURL: URL) {
        self.name = name
        self.dialect = dialect
        var text = baseURL.absoluteString
        while text.hasSuffix("/") { text.removeLast() }
        self.baseURL = text
    }
}

/// Picks the backend for a request. The target comes only from configuration: nothing in the
/// request (body, headers, model name) can name a host or a credential.
public struct BackendRouter: Sendable {
    let ollama: Backend

    public init(ollamaURL: URL) {
        self.ollama = Backend(name: "ollama", dialect: .ollama, baseURL: ollamaURL)
    }

    /// The backend for an Ollama-dialect request. One backend for now; several arrive with providers.
    public func backend(forModel model: String?) -> Backend { ollama }
}
