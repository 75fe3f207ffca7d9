import Foundation
import HTTPTypes
import Hummingbird
import TollgateCore

/// Providers added, changed and removed through the admin API. They are stored (their key sealed
/// with the server secret) and put in force at once, next to the providers from configuration,
/// which stay read-only here. The key is write-only: answers say `has_api_key`, never the key.
enum ProviderRoutes {
    static let namePattern = "^[a-z0-9][a-z0-9_-]{0,39}$"

    static let properties: [(String, JSONValue)] = [
        ("name", Schema.string(maxLength: 40, pattern: namePattern)),
        ("kind", Schema.enumeration(ProviderConfig.Kind.allCases.map(\.rawValue))),
        ("base_url", Schema.string(maxLength: 500, pattern: "^https?://[^/?#@\\s]+(/[^?#@\\s]*)?$")),
        ("api_key", Schema.nullable(Schema.string(maxLength: 500))),
        ("models", Schema.array(Schema.string(maxLength: 300))),
        ("max_concurrent", Schema.nullable(Schema.integer(minimum: 1))),
        ("model_slots", Schema.nullable(Schema.integer(minimum: 0))),
        ("allow_private", Schema.boolean),
    ]

    static func isValidName(_ name: String) -> Bool {
        guard let first = name.first, name.count <= 40, first.isASCII, first.isLetter || first.isNumber else { return false }
        return name.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-" || $0 == "_") }
    }

    /// Reads the fields sent into `p` (`apiKey` gets the plaintext sent: `.some(nil)` removes it).
    static func read(_ body: inout AdminBody, into p: inout StoredProvider, apiKey: inout String??, creating: Bool) {
        if creating, let v = body.string("name", required: true), let name = v {
            if isValidName(name) { p.name = name } else { body.fail("name", "must be 1 to 40 lowercase letters, digits, '-' or '_', starting with a letter or digit") }
        }
        if let v = body.string("kind", required: creating), let text = v {
            if let kind = ProviderConfig.Kind(rawValue: text) { p.kind = kind } else { body.fail("kind", "must be ollama, openai or anthropic") }
        }
        if let v = body.string("base_url", max: 500, required: creating), let text = v {
            let url = URL(string: text)
            if let scheme = url?.scheme?.lowercased(), scheme == "http" || scheme == "https", let host = url?.host, !host.isEmpty, url?.query == nil,
                url?.user == nil, url?.password == nil
            {
                p.baseURL = ProviderConfig(name: "x", kind: p.kind, baseURL: text).baseURL
            } else {
                body.fail("base_url", "must be an http(s) URL without credentials or query (for OpenAI-compatible providers, with its version prefix: https://host/v1)")
            }
        }
        if let v = body.string("api_key", nullable: true, max: 500) { apiKey = .some(v) }
        if let v = body.strings("models", nullable: false, rule: "model names, 1 to 300 characters, no commas", valid: { !$0.isEmpty && $0.count <= 300 && !$0.contains(",") }) {
            p.models = v ?? []
        }
        if let v = body.int("max_concurrent", min: 1) { p.maxConcurrent = v }
        if let v = body.int("model_slots", min: 0) { p.modelSlots = v }
        if let v = body.bool("allow_private") { p.allowPrivate = v }
    }

    /// The SSRF guard: a private, loopback or link-local target needs `allow_private`.
    static func guardURL(_ p: StoredProvider) async throws {
        if case .refused(let why) = await ProviderURLGuard.check(p.baseURL, allowPrivate: p.allowPrivate) {
            throw AdminError.invalid([("base_url", "is refused (\(why)); set allow_private to true to reach a private, loopback or link-local address")])
        }
    }

    static func endpoints(_ deps: AdminDeps) -> [AdminEndpoint] {
        let reply = AdminEndpoint.Reply(status: 200, description: "the provider", schema: OperationsRoutes.providerSchema)
        let notFound = AdminEndpoint.Reply(status: 404, description: "no such provider", schema: Schema.ref("Error"))
        let conflict = AdminEndpoint.Reply(status: 409, description: "the name is taken, or the provider comes from configuration", schema: Schema.ref("Error"))

        @Sendable func out(_ name: String) throws -> Response {
            guard let backend = deps.router.backend(named: name) else { throw AdminError.notFound("no provider named \(name)") }
            let models = deps.router.catalog.all().filter { $0.provider == name }.count
            return AdminJSON.response(.ok, OperationsRoutes.providerJSON(backend, models: models, configured: deps.configuredProviders.contains(name)))
        }
        @Sendable func stored(_ name: String) async throws -> StoredProvider {
            if deps.configuredProviders.contains(name) {
                throw AdminError.conflict("provider \(name) comes from configuration (TOLLGATE_PROVIDERS or the environment); change it there")
            }
            guard let p = try await deps.store.storedProviders().first(where: { $0.name == name }) else { throw AdminError.notFound("no provider named \(name)") }
            return p
        }
        @Sendable func save(_ p: StoredProvider, apiKey: String??, call: AdminCall, action: String, fields: [String]) async throws {
            var p = p
            switch apiKey {
            case .some(.some(let key)): p.sealedAPIKey = try deps.secrets.seal(key)
            case .some(.none): p.sealedAPIKey = nil
            case .none: break
            }
            try await deps.store.saveProvider(p)
            try await deps.reloadProviders()
            await deps.audit(
                call, action, target: p.name,
                detail: .object([("kind", .string(p.kind.rawValue)), ("base_url", .string(OperationsRoutes.publicURL(p.baseURL))), ("fields", .array(fields.map { .string($0) }))])
            )
        }

        return [
            AdminEndpoint(
                method: .post, path: "/api/providers", summary: "Add a provider (its key is stored sealed and never shown again)", tag: "providers",
                body: Schema.object(properties, optional: ["api_key", "models", "max_concurrent", "model_slots", "allow_private"]),
                responses: [.init(status: 201, description: "the provider", schema: OperationsRoutes.providerSchema), conflict]
            ) { request, call in
                var body = try await AdminBody.read(request)
                var p = StoredProvider(name: "", kind: .openai, baseURL: "", sealedAPIKey: nil, models: [], maxConcurrent: nil, allowPrivate: false, createdAt: Date(), updatedAt: Date())
                var apiKey: String?? = nil
                read(&body, into: &p, apiKey: &apiKey, creating: true)
                try body.check()
                if deps.router.backend(named: p.name) != nil || deps.configuredProviders.contains(p.name) {
                    throw AdminError.conflict("a provider named \(p.name) exists already")
                }
                try await guardURL(p)
                try await save(p, apiKey: apiKey, call: call, action: "provider.create", fields: body.fields.map(\.0))
                var response = try out(p.name)
                response.status = .created
                return response
            },
            AdminEndpoint(
                method: .patch, path: "/api/providers/{name}", summary: "Change a provider added through the API (only the fields sent; api_key null removes the key)",
                tag: "providers", body: Schema.object(properties.filter { $0.0 != "name" }, optional: Set(properties.map(\.0))),
                responses: [reply, notFound, conflict]
            ) { request, call in
                var p = try await stored(try call.parameter("name"))
                var body = try await AdminBody.read(request)
                var apiKey: String?? = nil
                read(&body, into: &p, apiKey: &apiKey, creating: false)
                try body.check()
                try await guardURL(p)
                p.updatedAt = Date()
                try await save(p, apiKey: apiKey, call: call, action: "provider.update", fields: body.fields.map(\.0))
                return try out(p.name)
            },
            AdminEndpoint(
                method: .delete, path: "/api/providers/{name}", summary: "Remove a provider added through the API (requests in flight finish)", tag: "providers",
                responses: [.init(status: 204, description: "removed"), notFound, conflict]
            ) { _, call in
                let p = try await stored(try call.parameter("name"))
                guard try await deps.store.deleteProvider(name: p.name) else { throw AdminError.notFound("no provider named \(p.name)") }
                try await deps.reloadProviders()
                await deps.audit(call, "provider.delete", target: p.name)
                return Response(status: .noContent)
            },
        ]
    }
}
