import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization
import Testing
import TollgateCore
import TollgateTestSupport

@testable import Tollgate

/// Issue 23's case over sockets: a chat client (Open WebUI) sends ~29 KB of tool definitions with
/// every request, the provider's template drops them and reports 11 prompt tokens. A request the
/// client stops before the provider reported its count is charged the calibrated estimate, within
/// 2× of what a completed one is charged, on every front — not thousands, and not 2.
@Suite(.timeLimit(.minutes(3))) struct CalibratedEstimateGatewayTests {
    static let reported = 11
    static let question = "Why is the sky blue?"

    /// 36 tools of about 800 bytes each (Open WebUI's built-in tools are of this size).
    static var functions: [[String: Any]] {
        (0..<36).map { i in
        [
            "name": "builtin_tool_\(i)",
            "description": String(repeating: "Searches the knowledge base and the web for what the user asked about. ", count: 6),
            "parameters": [
                "type": "object",
                "properties": [
                    "query": ["type": "string", "description": String(repeating: "The words to search for. ", count: 4)],
                    "count": ["type": "integer", "description": "How many results to return, at most."],
                ],
                "required": ["query"],
            ] as [String: Any],
        ]
        }
    }

    static func json(_ object: Any) -> String {
        String(decoding: try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
    }

    /// A chat with the tools, in each front's dialect.
    enum Front: CaseIterable {
        case ollama, openAI, anthropic

        var path: String {
            switch self {
            case .ollama: "/api/chat"
            case .openAI: "/v1/chat/completions"
            case .anthropic: "/v1/messages"
            }
        }

        func body(stream: Bool) -> String {
            let messages: [[String: Any]] = [["role": "user", "content": CalibratedEstimateGatewayTests.question]]
            switch self {
            case .ollama, .openAI:
                let tools = CalibratedEstimateGatewayTests.functions.map { ["type": "function", "function": $0] as [String: Any] }
                return CalibratedEstimateGatewayTests.json(["model": "llama3.2", "stream": stream, "messages": messages, "tools": tools])
            case .anthropic:
                let tools = CalibratedEstimateGatewayTests.functions.map { f -> [String: Any] in
                    ["name": f["name"]!, "description": f["description"]!, "input_schema": f["parameters"]!]
                }
                return CalibratedEstimateGatewayTests.json(["model": "llama3.2", "stream": stream, "max_tokens": 200, "messages": messages, "tools": tools])
            }
        }

        var headers: [(String, String)] { self == .anthropic ? [("anthropic-version", "2023-06-01")] : [] }
    }

    /// Starts a stream on `front`, reads a few chunks and stops: the provider never reports a count.
    func stopMidStream(_ gw: TestGateway, key: String, front: Front) async throws {
        var request = gw.request(front.path, key: key, body: front.body(stream: true))
        for (name, value) in front.headers { request.headers.add(name: name, value: value) }
        let response = try await gw.http.execute(request, timeout: .seconds(30))
        #expect(response.status.code == 200)
        var received = 0
        for try await chunk in response.body {
            received += chunk.readableBytes
            if received > 400 { break }
        }
        // Leaving the loop drops the body: the client's connection closes, like Stop in a chat UI.
    }

    @Test func aStoppedChatIsChargedAboutWhatACompletedOneReportsOnEveryFront() async throws {
        var behavior = MockOllama.Behavior()
        behavior.promptEvalCount = Self.reported
        behavior.callsTools = false
        try await withGateway(behavior: behavior) { gw in
            let key = try await gw.createKey()
            // A student's key with a small daily budget: 3,000 tokens.
            let student = try await gw.createKey(name: "student", policy: SubjectPolicy(quotas: QuotaLimits(dailyTokens: 3_000)))
            #expect(Front.ollama.body(stream: false).utf8.count > 28_000)
            // Uncalibrated, admission reserves every byte of the tools (about 7,300) plus the output
            // reserve: more than the whole budget.
            let refused = try await gw.send(Front.openAI.path, body: Front.openAI.body(stream: false), key: student)
            #expect(refused.status == 429, "\(refused.body.prefix(300))")

            // Before anything is learned, a stopped request is charged the raw estimate: every tool's byte.
            var endless = behavior
            endless.endless = true
            endless.chunkDelay = .milliseconds(5)
            gw.mock.setBehavior(endless)
            try await stopMidStream(gw, key: key, front: .openAI)
            let first = try #require(try await gw.waitForUsage(count: 1).first)
            #expect(first.outcome == .clientDisconnect)
            #expect(first.usageSource == .estimated)
            #expect((first.promptTokens ?? 0) > 6_000, "uncalibrated: \(first.promptTokens ?? -1)")
            #expect(first.promptEstimate == first.promptTokens)

            // Five completed requests, through every front: the provider reports 11 each time.
            gw.mock.setBehavior(behavior)
            for (n, front) in [Front.ollama, .openAI, .anthropic, .ollama, .openAI].enumerated() {
                let r = try await gw.send(front.path, body: front.body(stream: false), key: key, headers: front.headers)
                #expect(r.status == 200, "\(front): \(r.body.prefix(300))")
                _ = try await gw.waitForUsage(count: 2 + n)
            }
            let completed = try await gw.usageRecords().filter { $0.outcome == .completed }
            #expect(completed.count == 5)
            #expect(completed.allSatisfy { $0.promptTokens == Self.reported && $0.usageSource == .upstream })
            // The raw estimate is kept beside the reported count.
            #expect(completed.allSatisfy { ($0.promptEstimate ?? 0) > 6_000 })

            // Calibrated, the reservation is the calibrated estimate with a margin (up to 22) plus the
            // output reserve: the student's chat is admitted and charged what the provider reports.
            let admitted = try await gw.send(Front.openAI.path, body: Front.openAI.body(stream: false), key: student)
            #expect(admitted.status == 200, "\(admitted.body.prefix(300))")
            let charged = try await gw.waitForUsage(count: 7).first { $0.keyID == String(student.dropFirst(3).prefix(10)) }
            #expect(charged?.promptTokens == Self.reported)

            // Now each front's stopped request is charged within 2× of 11, its raw estimate kept for audit.
            gw.mock.setBehavior(endless)
            for (n, front) in Front.allCases.enumerated() {
                try await stopMidStream(gw, key: key, front: front)
                let records = try await gw.waitForUsage(count: 8 + n)
                let stopped = try #require(records.filter { $0.outcome == .clientDisconnect && $0.requestID != first.requestID }.sorted { $0.createdAt < $1.createdAt }.last)
                #expect(stopped.endpoint == front.path)
                #expect(stopped.usageSource == .estimated)
                let charged = try #require(stopped.promptTokens)
                #expect(charged >= (Self.reported + 1) / 2 && charged <= Self.reported * 2, "\(front): charged \(charged)")
                #expect((stopped.promptEstimate ?? 0) > 6_000, "\(front): raw \(stopped.promptEstimate ?? -1)")
            }
        }
    }

    /// What was learned is in the store: a restarted gateway charges a stopped request the calibrated
    /// estimate from its first request on.
    @Test func theCalibrationSurvivesARestart() async throws {
        var behavior = MockOllama.Behavior()
        behavior.promptEvalCount = Self.reported
        behavior.callsTools = false
        let first = try await TestGateway.start(behavior: behavior)
        let key = try await first.createKey()
        for _ in 0..<3 {
            let r = try await first.send(Front.openAI.path, body: Front.openAI.body(stream: false), key: key)
            #expect(r.status == 200)
        }
        _ = try await first.waitForUsage(count: 3)
        try await first.stop(keepFiles: true)

        var endless = behavior
        endless.endless = true
        endless.chunkDelay = .milliseconds(5)
        first.mock.setBehavior(endless)
        let second = try await TestGateway.start(directory: first.directory, mock: first.mock)
        do {
            // The calibrator reads the store as it starts.
            #expect(await eventually { second.gateway.estimates.state.withLock { !$0.calibration.cells.isEmpty } })
            try await stopMidStream(second, key: key, front: .ollama)
            let records = try await second.waitForUsage(count: 4)
            let stopped = try #require(records.first { $0.outcome == .clientDisconnect })
            let charged = try #require(stopped.promptTokens)
            #expect(charged >= (Self.reported + 1) / 2 && charged <= Self.reported * 2, "charged \(charged)")
            try await second.stop()
        } catch {
            try? await second.stop()
            throw error
        }
    }
}
