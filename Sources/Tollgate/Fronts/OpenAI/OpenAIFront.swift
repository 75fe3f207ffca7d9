import HTTPTypes
import Hummingbird
import TollgateCore

/// The OpenAI front's own requests besides chat and completions (which ``TranslatingFront``
/// relays or translates): embeddings, for any provider with an embeddings API (Ollama's
/// `/api/embed` too, and the Ollama front's `/api/embed` when another dialect serves the model).
extension TranslatingFront {
    func embeddings(_ decoded: OpenAIDialect.EmbeddingsRequest, identity: KeyIdentity, context: GatewayRequestContext, request: Request) async -> Response {
        var e = decoded
        var identity = identity
        let requested = e.model
        if let denied = applyModelPolicy(&e.model, &identity) { return denied }
        return await embed(e, requested: requested, identity: identity, context: context)
    }

    func embed(_ e: OpenAIDialect.EmbeddingsRequest, requested: String, identity: KeyIdentity, context: GatewayRequestContext) async -> Response {
        let routes: [Route]
        switch await services.gatekeeper.routes(for: e.model) {
        case .success(let found): routes = found
        case .failure(let refused): return refusal(refused)
        }
        if !routes[0].backend.adapter.hasEmbeddings {
            return error(.badRequest, "model '\(e.model)' is served by provider '\(routes[0].backend.name)', which has no embeddings API", param: "model")
        }
        let prompt = services.gatekeeper.estimates.prompt(PromptEstimate(messageBytes: e.inputs.reduce(0) { $0 + $1.utf8.count }), routes: routes)
        return await admitAndRun(
            identity: identity, context: context, model: e.model, requested: requested, routes: routes, prompt: prompt, outputReserve: 0
        ) { await $0.embeddings(e) }
    }
}
