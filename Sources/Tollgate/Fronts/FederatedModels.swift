import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import TollgateCore

/// Model lists across every provider, filtered by what a key may use: `/api/tags` and `/v1/models`,
/// and `/api/show` for models that are not on an Ollama server.
///
/// Ollama servers' entries are read live (they carry sizes, digests and details); other
/// providers' come from the catalog. A model listed by one kind of provider keeps its own name;
/// a name several providers share is listed as `provider/model`.
struct FederatedModels {
    let services: ProxyServices
    let requestID: String

    struct Listed {
        var id: String
        var provider: String
        var metadata: ModelMetadata
        /// The Ollama server's own `/api/tags` entry, when there is one.
        var ollamaEntry: JSONValue?
    }

    /// Every model of every provider the key may use (`allowed` nil: all).
    func listed(allowed: [ModelPattern]?) async -> [Listed] {
        let router = services.router
        let probe = ProviderProbe(client: services.client)
        // Live lists from the Ollama servers, concurrently.
        let live = await withTaskGroup(of: (String, [JSONValue]?).self) { group in
            for backend in router.backends where backend.adapter.speaks(.ollama) {
                group.addTask { (backend.name, await probe.get(backend, backend.adapter.modelListPath)?["models"]?.arrayValue) }
            }
            var out: [String: [JSONValue]] = [:]
            for await (name, models) in group { if let models { out[name] = models } }
            return out
        }
        var all: [Listed] = []
        var seenOllama = Set<String>()
        for backend in router.backends {
            if backend.adapter.speaks(.ollama), let models = live[backend.name] {
                for m in models {
                    guard let name = m["name"]?.stringValue ?? m["model"]?.stringValue, seenOllama.insert(ModelPolicy.normalized(name)).inserted else { continue }
                    let meta = router.catalog.metadata(provider: backend.name, model: name) ?? ModelMetadata(name: name)
                    all.append(Listed(id: name, provider: backend.name, metadata: meta, ollamaEntry: m))
                }
            } else {
                for (provider, meta) in router.catalog.all() where provider == backend.name {
                    if backend.adapter.speaks(.ollama), !seenOllama.insert(ModelPolicy.normalized(meta.name)).inserted { continue }
                    all.append(Listed(id: meta.name, provider: provider, metadata: meta))
                }
            }
        }
        // A name served by providers of different kinds is listed qualified.
        var dialects: [String: Set<ClientDialect>] = [:]
        for l in all { dialects[ModelPolicy.normalized(l.id), default: []].insert(router.backend(named: l.provider)?.adapter.nativeDialect ?? .ollama) }
        for i in all.indices where (dialects[ModelPolicy.normalized(all[i].id)]?.count ?? 0) > 1 {
            all[i].id = all[i].provider + "/" + all[i].id
        }
        guard let allowed else { return all }
        return all.filter { l in allowed.contains { $0.matches(l.id) || $0.matches(l.provider + "/" + l.metadata.name) } }
    }

    func json(_ text: String, head: Bool = false) -> Response {
        Response(
            status: .ok, headers: [.contentType: "application/json; charset=utf-8", .xRequestID: requestID],
            body: .init(byteBuffer: head ? ByteBuffer() : ByteBuffer(string: text))
        )
    }

    /// `/api/tags` across providers.
    func ollamaTags(allowed: [ModelPattern]?, head: Bool) async -> Response {
        let models: [JSONValue] = await listed(allowed: allowed).map { l in
            if var entry = l.ollamaEntry {
                entry.set("name", .string(l.id))
                entry.set("model", .string(l.id))
                return entry
            }
            var details: [(String, JSONValue)] = [("format", .string("")), ("family", .string(l.provider)), ("parameter_size", .string("")), ("quantization_level", .string(""))]
            if let c = l.metadata.contextLength { details.append(("context_length", .number(c))) }
            return .object([
                ("name", .string(l.id)), ("model", .string(l.id)), ("modified_at", .string("1970-01-01T00:00:00Z")), ("size", .number(0)),
                ("digest", .string("")), ("details", .object(details)), ("remote_host", .string(l.provider)),
            ])
        }
        return json(JSONValue.object([("models", .array(models))]).text, head: head)
    }

    /// `/v1/models` across providers (only the locked model under a model lock); `id` for `/v1/models/{id}`.
    func openAIModels(policy: ModelPolicy, id: String?) async -> Response {
        var models: [OpenAIDialect.Model]
        if let lock = policy.forceModel {
            models = [OpenAIDialect.Model(id: lock, created: 0, ownedBy: "tollgate")]
        } else {
            models = await listed(allowed: policy.allowed).map { l in
                let created = l.ollamaEntry?["modified_at"]?.stringValue.flatMap(TranslatingFront.timestamp) ?? 0
                return OpenAIDialect.Model(id: l.id, created: created, ownedBy: l.ollamaEntry == nil ? l.provider : "library")
            }
            for (alias, target) in policy.aliases.sorted(by: { $0.key < $1.key }) {
                if let allowed = policy.allowed, !allowed.contains(where: { $0.matches(target) }) { continue }
                models.append(OpenAIDialect.Model(id: alias, created: 0, ownedBy: "tollgate"))
            }
        }
        if let id {
            guard let m = models.first(where: { $0.id == id || ModelPolicy.sameModel($0.id, id) }) else {
                return ClientDialect.openAI.error(.notFound, "The model '\(id)' does not exist or is not available to this key", requestID, param: "model")
            }
            return json(OpenAIDialect.model(m))
        }
        return json(OpenAIDialect.modelList(models))
    }

    /// `/api/show` for a model another dialect serves: what the catalog knows, in Ollama's shape
    /// (clients read `model_info["<architecture>.context_length"]` and `capabilities`).
    func ollamaShow(route: Route) -> Response {
        let meta = services.router.catalog.metadata(provider: route.backend.name, model: route.model) ?? ModelMetadata(name: route.model)
        var info: [(String, JSONValue)] = [("general.architecture", .string("tollgate")), ("general.basename", .string(route.model))]
        if let c = meta.contextLength { info.append(("tollgate.context_length", .number(c))) }
        let capabilities = meta.capabilities.isEmpty ? ["completion", "tools"] : meta.capabilities
        let body = JSONValue.object([
            ("modelfile", .string("")), ("parameters", .string("")), ("template", .string("")),
            ("details", .object([("format", .string("")), ("family", .string(route.backend.name)), ("parameter_size", .string("")), ("quantization_level", .string(""))])),
            ("model_info", .object(info)), ("capabilities", .array(capabilities.map { .string($0) })),
            ("modified_at", .string("1970-01-01T00:00:00Z")), ("remote_host", .string(route.backend.name)),
        ])
        return json(body.text)
    }

    /// `/api/version`, `/api/ps` and `/` when no Ollama server is configured.
    static func ollamaWithout(_ endpoint: OllamaEndpoint, requestID: String) -> Response {
        let text = endpoint == .ps ? #"{"models":[]}"# : #"{"version":"0.0.0-tollgate"}"#
        return Response(
            status: .ok, headers: [.contentType: "application/json; charset=utf-8", .xRequestID: requestID], body: .init(byteBuffer: ByteBuffer(string: text))
        )
    }
}
