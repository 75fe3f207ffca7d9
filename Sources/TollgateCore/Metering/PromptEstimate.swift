/// The gateway's estimate of a request's prompt, part by part: the conversation's text, the system
/// prompt, the tool definitions and the images. The parts are kept apart because providers count
/// them very differently — a chat template may drop 30 KB of tool definitions the model cannot use,
/// and an image costs what the model's vision encoder makes of it, not its base64 bytes — so the
/// calibration (``PromptCalibration``) learns a ratio for each part.
public struct PromptEstimate: Sendable, Equatable {
    /// Messages' text, tool calls and tool results.
    public var messageTokens: Int
    /// System (and developer) prompts.
    public var systemTokens: Int
    /// Tool (function) definitions, counted from their JSON.
    public var toolTokens: Int
    /// Images attached to the messages.
    public var images: Int

    /// What one image counts before the calibration knows better: between OpenAI's 85 (low detail)
    /// and Anthropic's ~1,600 (a large image), near llava's 576 patches.
    public static let tokensPerImage = 768

    public init(messageTokens: Int = 0, systemTokens: Int = 0, toolTokens: Int = 0, images: Int = 0) {
        self.messageTokens = messageTokens
        self.systemTokens = systemTokens
        self.toolTokens = toolTokens
        self.images = images
    }

    /// From byte counts of text, at about four bytes a token.
    public init(messageBytes: Int, systemBytes: Int = 0, toolBytes: Int = 0, images: Int = 0) {
        self.init(
            messageTokens: TokenEstimate.fromTextBytes(messageBytes), systemTokens: TokenEstimate.fromTextBytes(systemBytes),
            toolTokens: TokenEstimate.fromTextBytes(toolBytes), images: images
        )
    }

    /// Text the model reads as written: the conversation and the system prompt.
    public var textTokens: Int { messageTokens + systemTokens }

    /// The raw estimate: every part as counted, before any calibration.
    public var total: Int { textTokens + toolTokens + images * Self.tokensPerImage }
}
