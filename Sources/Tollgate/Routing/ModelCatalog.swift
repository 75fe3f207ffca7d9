import Foundation
import Synchronization
import TollgateCore

/// The models each provider serves: discovered from the provider (refreshed periodically and on
/// demand) and declared in configuration; declared metadata (context length, capabilities,
/// prices) overrides what discovery found.
public final class ModelCatalog: Sendable {
    struct State {
        var discovered: [String: [ModelMetadata]] = [:]
        var declared: [String: [ModelMetadata]] = [:]
        /// Declared without a provider: applies wherever the model is served.
        var everywhere: [String: ModelMetadata] = [:]
        var kinds: [String: ProviderConfig.Kind] = [:]
        var order: [String] = []
    }
    let state = Mutex(State())

    public init(providers: [ProviderConfig] = [], declared: [DeclaredModel] = []) {
        state.withLock { s in
            for p in providers {
                s.kinds[p.name] = p.kind
                s.order.append(p.name)
                s.declared[p.name] = p.models
            }
            for d in declared {
                if let provider = d.provider {
                    s.declared[provider, default: []].append(d.metadata)
                } else {
                    s.everywhere[d.metadata.name] = d.metadata
                }
            }
        }
    }

    /// Replaces what discovery found for a provider.
    public func replace(provider: String, with models: [ModelMetadata]) {
        state.withLock { $0.discovered[provider] = models }
    }

    static func same(_ a: String, _ b: String, kind: ProviderConfig.Kind?) -> Bool {
        kind == .ollama ? ModelPolicy.sameModel(a, b) : a == b
    }

    /// Every model of every provider, merged, in provider order.
    public func all() -> [(provider: String, model: ModelMetadata)] {
        state.withLock { s in
            var out: [(String, ModelMetadata)] = []
            for provider in s.order {
                let kind = s.kinds[provider]
                var models = s.discovered[provider] ?? []
                for d in s.declared[provider] ?? [] {
                    if let i = models.firstIndex(where: { Self.same($0.name, d.name, kind: kind) }) {
                        models[i] = Self.merge(models[i], d)
                    } else {
                        models.append(d)
                    }
                }
                for m in models { out.append((provider, s.everywhere[m.name].map { Self.merge(m, $0) } ?? m)) }
            }
            return out
        }
    }

    static func merge(_ found: ModelMetadata, _ declared: ModelMetadata) -> ModelMetadata {
        var m = found
        m.contextLength = declared.contextLength ?? found.contextLength
        if !declared.capabilities.isEmpty { m.capabilities = declared.capabilities }
        m.inputPricePerMillion = declared.inputPricePerMillion ?? found.inputPricePerMillion
        m.outputPricePerMillion = declared.outputPricePerMillion ?? found.outputPricePerMillion
        return m
    }

    /// Providers that list `model`, with the name each knows it by.
    public func providers(serving model: String) -> [String: String] {
        var out: [String: String] = [:]
        let kinds = state.withLock { $0.kinds }
        for (provider, m) in all() where Self.same(m.name, model, kind: kinds[provider]) { out[provider] = m.name }
        return out
    }

    /// Metadata of one provider's model (declared, discovered, or the bare name's declaration).
    public func metadata(provider: String, model: String) -> ModelMetadata? {
        let kinds = state.withLock { $0.kinds }
        if let m = all().first(where: { $0.provider == provider && Self.same($0.model.name, model, kind: kinds[provider]) }) { return m.model }
        return state.withLock { $0.everywhere[model] }
    }
}
