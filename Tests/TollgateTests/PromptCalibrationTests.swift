import Foundation
import Synchronization
import Testing
import TollgateCore

@testable import Tollgate

/// The calibration of prompt estimates, without sockets: what it learns from reported counts, how
/// it keeps the parts apart, how it forgets, and how it is shared through the store.
@Suite(.timeLimit(.minutes(3))) struct PromptCalibrationTests {
    let subject = PromptCalibration.Subject(provider: "ollama", model: "llama3.2")
    let now = PromptCalibration.epoch + 300 * 86_400

    @Test func nothingLearnedMeansTheRawEstimate() {
        let calibration = PromptCalibration()
        let e = PromptEstimate(messageTokens: 5, toolTokens: 7_000)
        #expect(calibration.estimate(e, for: subject, now: now) == e.total)
        #expect(calibration.estimate(PromptEstimate(), for: subject, now: now) == 0)
    }

    @Test func toolsATemplateDropsAreLearnedFromWhatTheTextLeaves() {
        var calibration = PromptCalibration()
        let withTools = PromptEstimate(messageTokens: 5, toolTokens: 7_300)
        for _ in 0..<5 { calibration.observe(withTools, reported: 11, for: subject, now: now) }
        #expect(calibration.estimate(withTools, for: subject, now: now) == 11)
        // A longer chat with the same tools: the text counts as text, the tools as learned — not 11,
        // and not every byte of the tools either.
        let longer = PromptEstimate(messageTokens: 4_000, toolTokens: 7_300)
        let estimate = calibration.estimate(longer, for: subject, now: now)
        #expect((4_000...4_010).contains(estimate), "\(estimate)")
        // Another model on the same provider has learned nothing.
        let other = PromptCalibration.Subject(provider: "ollama", model: "qwen3")
        #expect(calibration.estimate(withTools, for: other, now: now) == withTools.total)
    }

    @Test func anOverCountedTextTeachesTheTextRatio() {
        var calibration = PromptCalibration()
        // The text's estimate alone (30) is more than the provider reports (11): the text was
        // over-counted, and the tools are next to nothing.
        let e = PromptEstimate(messageTokens: 30, toolTokens: 7_300)
        for _ in 0..<3 { calibration.observe(e, reported: 11, for: subject, now: now) }
        let estimate = calibration.estimate(e, for: subject, now: now)
        #expect((11...12).contains(estimate), "\(estimate)")
        // The same text without tools is counted with the ratio learned.
        #expect(calibration.estimate(PromptEstimate(messageTokens: 30), for: subject, now: now) == 11)
    }

    @Test func textRatiosArePerSizeAndBorrowOnlyFromNeighbours() {
        var calibration = PromptCalibration()
        // Short prompts carry the template's overhead: 10 tokens counted, 30 reported.
        calibration.observe(PromptEstimate(messageTokens: 10), reported: 30, for: subject, now: now)
        #expect(calibration.estimate(PromptEstimate(messageTokens: 12), for: subject, now: now) == 36)
        // The next bucket borrows it; a prompt four buckets away does not.
        #expect(calibration.estimate(PromptEstimate(messageTokens: 100), for: subject, now: now) == 300)
        #expect(calibration.estimate(PromptEstimate(messageTokens: 20_000), for: subject, now: now) == 20_000)
    }

    @Test func imagesAreLearnedPerImage() {
        var calibration = PromptCalibration()
        let e = PromptEstimate(messageTokens: 10, images: 2)
        calibration.observe(PromptEstimate(messageTokens: 10), reported: 10, for: subject, now: now)
        calibration.observe(e, reported: 10 + 2 * 576, for: subject, now: now)
        #expect(calibration.estimate(PromptEstimate(messageTokens: 10, images: 1), for: subject, now: now) == 10 + 576)
    }

    @Test func oldSamplesFadeAndNewOnesWeighMore() {
        var calibration = PromptCalibration(halfLife: 86_400)
        let e = PromptEstimate(messageTokens: 100)
        calibration.observe(e, reported: 400, for: subject, now: now)
        // Two days later one new sample outweighs it four to one: the geometric mean of 4× (weight 1)
        // and 1× (weight 4) is 4^(1/5).
        calibration.observe(e, reported: 100, for: subject, now: now + 2 * 86_400)
        let expected = Int((100 * pow(4, 0.2)).rounded())
        #expect(calibration.estimate(e, for: subject, now: now + 2 * 86_400) == expected)
        // Unseen for long, a cell is no longer trusted: the raw estimate again.
        #expect(calibration.estimate(e, for: subject, now: now + 30 * 86_400) == 100)
    }

    @Test func cellNamesRoundTrip() {
        for name in ["text.0", "tools.4", "image", "text.6"] {
            #expect(PromptCalibration.Cell(name: name)?.name == name)
        }
        for name in ["", "text", "image.1", "voice.1", "text.x", "text.999", "text.7", "tools.1.2"] {
            #expect(PromptCalibration.Cell(name: name) == nil)
        }
    }

    /// The request's parts as the relayed body is read: system prompts, tool definitions and images apart.
    @Test func theInspectorCountsEachPartOfARelayedBody() throws {
        let openAI = #"""
            {"model":"m","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":[{"type":"text","text":"What is this?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}],
             "tools":[{"type":"function","function":{"name":"look","description":"Looks at things","parameters":{"type":"object","properties":{"text":{"type":"string","description":"what"}}}}}]}
            """#
        let doc = try JSONInspector().inspect(Array(openAI.utf8))
        #expect(doc.systemTextBytes == "You are terse.".utf8.count)
        #expect(doc.promptTextBytes == "You are terse.What is this?".utf8.count)
        let tools = try #require(doc.raw("tools"))
        #expect(doc.toolBytes == tools.count)
        #expect(doc.imageCount == 1)
        let anthropic = #"""
            {"model":"m","system":[{"type":"text","text":"Be brief."}],"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"AAAA"}},{"type":"text","text":"Hi"}]}]}
            """#
        let a = try JSONInspector().inspect(Array(anthropic.utf8))
        #expect(a.systemTextBytes == "Be brief.".utf8.count)
        #expect(a.promptEstimate.messageTokens == 1)
        #expect(a.imageCount == 1)
        let ollama = #"{"model":"m","system":"Sys","prompt":"Describe","images":["AAAA","BBBB"]}"#
        let o = try JSONInspector().inspect(Array(ollama.utf8))
        #expect(o.systemTextBytes == 3)
        #expect(o.imageCount == 2)
        #expect(o.promptEstimate == PromptEstimate(messageTokens: 2, systemTokens: 1, toolTokens: 0, images: 2))
    }

    /// What one instance learns reaches another through the store (and survives a restart): each adds
    /// its own samples, and both then estimate alike.
    @Test(arguments: TestDatabase.all) func theStoreSharesWhatEachInstanceLearns(database: TestDatabase) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-calibration-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try await database.openFreshStore(directory: directory)
        let clock = ManualClock(Date(timeIntervalSince1970: now))
        let logger = LogCapture().logger()
        let first = EstimateCalibrator(store: store, clock: clock, logger: logger)
        let second = EstimateCalibrator(store: store, clock: clock, logger: logger)
        let e = PromptEstimate(messageTokens: 5, toolTokens: 7_300)
        first.observe(e, reported: 11, provider: "ollama", model: "llama3.2")
        second.observe(e, reported: 13, provider: "ollama", model: "llama3.2")
        await first.synchronize()
        await second.synchronize()
        await first.synchronize()
        let route = PromptCalibration.Subject(provider: "ollama", model: "llama3.2")
        let fromFirst = first.state.withLock { $0.calibration.estimate(e, for: route, now: now) }
        let fromSecond = second.state.withLock { $0.calibration.estimate(e, for: route, now: now) }
        #expect(fromFirst == fromSecond)
        #expect((11...13).contains(fromFirst), "\(fromFirst)")
        // A third, new instance (a restart) reads both samples; nothing was added twice.
        let third = EstimateCalibrator(store: store, clock: clock, logger: logger)
        await third.synchronize()
        #expect(third.state.withLock { $0.calibration.estimate(e, for: route, now: now) } == fromFirst)
        let cells = try await store.calibrationCells()
        let toolsCell = try #require(PromptCalibration.Cell(name: "tools.4"))
        let tools = try #require(cells[route]?[toolsCell])
        #expect(abs(tools.weight / exp2((now - PromptCalibration.epoch) / (7 * 86_400)) - 2) < 1e-9)
        await store.close()
    }
}
