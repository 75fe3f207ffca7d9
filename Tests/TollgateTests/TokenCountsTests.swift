import Foundation
import Testing
@testable import Tollgate

/// One provenance rule for every pair and every ending: `upstream` only when the provider reported
/// both counts; otherwise `estimated`, keeping what the provider did report; unknown stays nil.
@Suite struct TokenCountsTests {
    @Test func theProvidersCountsWinOnlyWhenBothAreThere() {
        let both = TokenCounts(reportedPrompt: 12, reportedCompletion: 30, estimatedPrompt: 99, estimatedCompletion: 99)
        #expect(both == TokenCounts(reportedPrompt: 12, reportedCompletion: 30, estimatedPrompt: nil, estimatedCompletion: nil))
        #expect(both.prompt == 12 && both.completion == 30 && both.source == .upstream)
        // Ollama omits a zero prompt_eval_count for a cached prompt: the completion count is kept, the prompt estimated.
        let half = TokenCounts(reportedPrompt: nil, reportedCompletion: 30, estimatedPrompt: 7, estimatedCompletion: 99)
        #expect(half.prompt == 7 && half.completion == 30 && half.source == .estimated)
        // Nothing known about the completion (a client gone before any answer): nil, never 0.
        let gone = TokenCounts.estimated(prompt: 5, completion: nil)
        #expect(gone.prompt == 5 && gone.completion == nil && gone.source == .estimated)
        var record = UsageRecord(
            requestID: "r", createdAt: .init(), keyID: "k", userID: nil, endpoint: "/api/chat", modelRequested: nil, modelServed: nil, stream: false,
            httpStatus: 200, outcome: .completed, promptTokens: nil, completionTokens: nil, usageSource: .unknown, latencyMs: 0, ttfbMs: nil,
            clientAddress: nil, error: nil, tags: []
        )
        half.apply(to: &record)
        #expect(record.promptTokens == 7 && record.completionTokens == 30 && record.usageSource == .estimated)
    }
}
