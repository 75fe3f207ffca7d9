/// What a model takes that a translation must respect: whether it reasons (OpenAI's reasoning
/// models want `max_completion_tokens` and take `reasoning_effort`; others answer 400 to it) and
/// its largest output (Anthropic requires `max_tokens`: a client that sends none gets the model's
/// own limit, not an arbitrary smaller one). Known here for well-known families by name; a
/// provider's declared model metadata overrides it.
public struct ModelTraits: Sendable, Equatable {
    /// How an Anthropic model takes thinking: a token budget (`{"type":"enabled","budget_tokens":N}`,
    /// Claude 4.5 and earlier), adaptive thinking with an effort (`{"type":"adaptive"}` and
    /// `output_config.effort`, Claude 4.6, where the budget form is deprecated), or adaptive only
    /// (Claude Opus 4.7 and later answer the budget form with 400).
    public enum ThinkingForm: String, Sendable, Equatable {
        case budget, adaptive, adaptiveOnly = "adaptive_only"
    }

    /// Whether the model reasons (nil: not known — the client's wish is passed on and the provider judges).
    public var reasons: Bool?
    public var maxOutputTokens: Int?
    /// How the model takes thinking (Anthropic; nil: the budget form, which every Claude model
    /// before 4.7 accepts).
    public var thinkingForm: ThinkingForm?
    /// `temperature` and `top_p` are refused together (Claude 4.5 and later).
    public var exclusiveSampling: Bool

    public init(reasons: Bool? = nil, maxOutputTokens: Int? = nil, thinkingForm: ThinkingForm? = nil, exclusiveSampling: Bool = false) {
        self.reasons = reasons
        self.maxOutputTokens = maxOutputTokens
        self.thinkingForm = thinkingForm
        self.exclusiveSampling = exclusiveSampling
    }

    /// Claude families taking adaptive thinking, by name prefix (Anthropic's adaptive-thinking page):
    /// only adaptive from Opus 4.7 on, adaptive preferred on the 4.6 models.
    static let adaptiveOnlyPrefixes = ["claude-opus-4-7", "claude-opus-4-8", "claude-opus-5", "claude-sonnet-5", "claude-mythos", "claude-fable"]
    static let adaptivePrefixes = ["claude-opus-4-6", "claude-sonnet-4-6"]
    /// Claude families that refuse `temperature` and `top_p` together.
    static let exclusiveSamplingPrefixes = ["claude-opus-4-5", "claude-sonnet-4-5", "claude-haiku-4-5"] + adaptivePrefixes + adaptiveOnlyPrefixes

    /// Largest outputs by model-name prefix, longest prefix first (Anthropic's published limits).
    static let outputLimits: [(prefix: String, tokens: Int)] = [
        ("claude-opus-5", 128_000), ("claude-sonnet-5", 128_000), ("claude-opus-4-8", 128_000), ("claude-opus-4-7", 128_000), ("claude-opus-4-6", 128_000), ("claude-sonnet-4-6", 128_000),
        ("claude-opus-4-5", 64_000), ("claude-sonnet-4-5", 64_000), ("claude-haiku-4-5", 64_000),
        ("claude-opus-4-1", 32_000), ("claude-opus-4", 32_000), ("claude-sonnet-4", 64_000), ("claude-3-7-sonnet", 64_000),
        ("claude-3-5-sonnet", 8_192), ("claude-3-5-haiku", 8_192), ("claude-3", 4_096),
    ]

    /// OpenAI's reasoning families (`o1`, `o3`, `o4-mini`, `gpt-5`…; not `gpt-5-chat`), by name.
    static let reasoningFamilies = ["o1", "o3", "o4"]
    /// OpenAI families that do not reason and refuse `reasoning_effort`.
    static let plainPrefixes = ["gpt-4", "gpt-3.5", "chatgpt-4o"]

    /// The traits of a well-known model from its name (a `provider/` prefix is ignored).
    public static func known(_ model: String) -> ModelTraits {
        let name = model.split(separator: "/").last.map(String.init)?.lowercased() ?? model.lowercased()
        let reasoning = (reasoningFamilies.contains { name == $0 || name.hasPrefix($0 + "-") } || name.hasPrefix("gpt-5")) && !name.contains("-chat")
        let plain = plainPrefixes.contains { name.hasPrefix($0) } || (name.hasPrefix("gpt-5") && name.contains("-chat"))
        let reasons: Bool? = reasoning ? true : plain ? false : nil
        let limit = outputLimits.first { name.hasPrefix($0.prefix) }?.tokens
        let form: ThinkingForm? =
            adaptiveOnlyPrefixes.contains { name.hasPrefix($0) } ? .adaptiveOnly : adaptivePrefixes.contains { name.hasPrefix($0) } ? .adaptive : nil
        return ModelTraits(
            reasons: reasons, maxOutputTokens: limit, thinkingForm: form, exclusiveSampling: exclusiveSamplingPrefixes.contains { name.hasPrefix($0) }
        )
    }
}
