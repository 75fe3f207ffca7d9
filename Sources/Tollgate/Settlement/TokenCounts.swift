/// The tokens of one answer with their provenance, decided by one rule for every pair of dialects
/// and every way an answer ends: `upstream` when the provider reported both counts, otherwise
/// `estimated`, keeping whichever count the provider did report and the gateway's estimate for the
/// other (absent is never zero: a count nobody knows stays nil).
struct TokenCounts: Sendable, Equatable {
    let prompt: Int?
    let completion: Int?
    let source: UsageSource

    init(reportedPrompt: Int?, reportedCompletion: Int?, estimatedPrompt: Int?, estimatedCompletion: Int?) {
        if let p = reportedPrompt, let c = reportedCompletion {
            (prompt, completion, source) = (p, c, .upstream)
        } else {
            (prompt, completion, source) = (reportedPrompt ?? estimatedPrompt, reportedCompletion ?? estimatedCompletion, .estimated)
        }
    }

    /// Estimates only (the answer was cut, or could not be read).
    static func estimated(prompt: Int?, completion: Int?) -> TokenCounts {
        TokenCounts(reportedPrompt: nil, reportedCompletion: nil, estimatedPrompt: prompt, estimatedCompletion: completion)
    }

    func apply(to record: inout UsageRecord) {
        record.promptTokens = prompt
        record.completionTokens = completion
        record.usageSource = source
    }
}
