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
        /// Declared at the top level for one provider (kept when the provider is replaced).
        var declaredFor: [String: [ModelMetadata]] = [:]
        /// Each provider's adapter: how it compares model names.
        var adapters: [String: any UpstreamAdapter] = [:]
        var order: [String] = []
        /// The merged list and an index by name, rebuilt when a list changes (routing reads them per request).
        var merged: [(provider: String, model: ModelMetadata)] = []
        var byName: [String: [Int]] = [:]
    }
    let state = Mutex(State())
    /// Whether any model is known (a cheap check before a lookup on every request).
    let known = Atomic<Bool>(false)
    public var hasModels: Bool { known.load(ordering: .relaxed) }

    public init(providers: [ProviderConfig] = [], declared: [DeclaredModel] = []) {
        state.withLock { s in
            for p in providers {
                s.adapters[p.name] = UpstreamAdapters.make(for: p.kind)
                s.order.append(p.name)
                s.declared[p.name] = p.models
            }
            for d in declared {
                if let provider = d.provider {
                    s.declared[provider, default: []].append(d.metadata)
                    s.declaredFor[provider, default: []].append(d.metadata)
                } else {
                    s.everywhere[d.metadata.name] = d.metadata
                }
            }
            Self.rebuild(&s)
            known.store(!s.merged.isEmpty || !s.everywhere.isEmpty, ordering: .relaxed)
        }
    }

    /// Adds a provider (or replaces its kind and declared models).
    public func setProvider(_ p: ProviderConfig) {
        state.withLock { s in
            s.adapters[p.name] = UpstreamAdapters.make(for: p.kind)
            if !s.order.contains(p.name) { s.order.append(p.name) }
            s.declared[p.name] = p.models + (s.declaredFor[p.name] ?? [])
            Self.rebuild(&s)
            known.store(!s.merged.isEmpty || !s.everywhere.isEmpty, ordering: .relaxed)
        }
    }

    /// Forgets a provider and its models.
    public func removeProvider(_ name: String) {
        state.withLock { s in
            s.adapters[name] = nil
            s.order.removeAll { $0 == name }
            s.declared[name] = nil
            s.discovered[name] = nil
            Self.rebuild(&s)
            known.store(!s.merged.isEmpty || !s.everywhere.isEmpty, ordering: .relaxed)
        }
    }

    /// Replaces what discovery found for a provider.
    public func replace(provider: String, with models: [ModelMetadata]) {
        state.withLock { s in
            s.discovered[provider] = models
            Self.rebuild(&s)
            known.store(!s.merged.isEmpty || !s.everywhere.isEmpty, ordering: .relaxed)
        }
    }

    /// A lookup key under which every spelling of one model meets (`llama3.2` and `llama3.2:latest`).
    static func key(_ name: String) -> String { ModelPolicy.normalized(name) }

    static func same(_ a: String, _ b: String, adapter: (any UpstreamAdapter)?) -> Bool {
        adapter?.sameModel(a, b) ?? (a == b)
    }

    /// Every model of every provider, merged, in provider order.
    public func all() -> [(provider: String, model: ModelMetadata)] {
        state.withLock { $0.merged }
    }

    static func rebuild(_ s: inout State) {
        var out: [(String, ModelMetadata)] = []
        for provider in s.order {
            let adapter = s.adapters[provider]
            var models = s.discovered[provider] ?? []
            for d in s.declared[provider] ?? [] {
                if let i = models.firstIndex(where: { Self.same($0.name, d.name, adapter: adapter) }) {
                    models[i] = Self.merge(models[i], d)
                } else {
                    models.append(d)
                }
            }
            for m in models { out.append((provider, s.everywhere[m.name].map { Self.merge(m, $0) } ?? m)) }
        }
        s.merged = out
        s.byName = [:]
        for (i, entry) in out.enumerated() { s.byName[key(entry.1.name), default: []].append(i) }
    }

    static func merge(_ found: ModelMetadata, _ declared: ModelMetadata) -> ModelMetadata {
        var m = found
        m.contextLength = declared.contextLength ?? found.contextLength
        if !declared.capabilities.isEmpty { m.capabilities = declared.capabilities }
        m.inputPricePerMillion = declared.inputPricePerMillion ?? found.inputPricePerMillion
        m.outputPricePerMillion = declared.outputPricePerMillion ?? found.outputPricePerMillion
        m.declaredTraits = declared.declaredTraits.over(found.declaredTraits)
        return m
    }

    /// Providers that list `model`, with the name each knows it by.
    public func providers(serving model: String) -> [String: String] {
        state.withLock { s in
            var out: [String: String] = [:]
            for i in s.byName[Self.key(model)] ?? [] {
                let (provider, m) = s.merged[i]
                if Self.same(m.name, model, adapter: s.adapters[provider]) { out[provider] = m.name }
            }
            return out
        }
    }

    /// Metadata of one provider's model (declared, discovered, or the bare name's declaration).
    public func metadata(provider: String, model: String) -> ModelMetadata? {
        state.withLock { s in
            for i in s.byName[Self.key(model)] ?? [] where s.merged[i].provider == provider && Self.same(s.merged[i].model.name, model, adapter: s.adapters[provider]) {
                return s.merged[i].model
            }
            return s.everywhere[model]
        }
    }
}
