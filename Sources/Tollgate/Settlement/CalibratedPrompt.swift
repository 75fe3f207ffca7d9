import TollgateCore

/// A request's prompt as the gateway counts it before the provider does: the parts as estimated,
/// the calibrated count a request cut before the provider reported one is charged, and what
/// admission reserves for it.
struct CalibratedPrompt: Sendable, Equatable {
    let parts: PromptEstimate
    let charge: Int
    let reserve: Int

    /// Every part as counted, before calibration (kept in the usage record for audit).
    var raw: Int { parts.total }
}
