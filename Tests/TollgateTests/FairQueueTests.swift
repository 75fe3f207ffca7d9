import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization
import Testing
import TollgateCore
import TollgateTestSupport

@testable import Tollgate

/// Names in the order things happened, from many tasks.
final class OrderLog: Sendable {
    let list = Mutex<[String]>([])
    func append(_ name: String) { list.withLock { $0.append(name) } }
    var items: [String] { list.withLock { $0 } }
    var count: Int { list.withLock { $0.count } }
}

/// The fair queue on its own: who gets a freed slot.
@Suite(.timeLimit(.minutes(1))) struct FairQueueOrderTests {
    /// Queues `requests` (requester id per request, in arrival order) behind one held slot, then frees
    /// slots one by one; returns the order in which they were dispatched.
    static func dispatchOrder(_ queue: FairQueue, requesters: [FairQueue.Requester], requests: [Int]) async throws -> [String] {
        #expect(queue.tryAcquire(FairQueue.Requester(id: "holder")))
        let order = OrderLog()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (n, index) in requests.enumerated() {
                let requester = requesters[index]
                group.addTask {
                    _ = try await queue.acquire(requester, maxWait: .seconds(60))
                    order.append(requester.id)
                }
                // Arrival order is the order given.
                let queued = await eventually(timeout: .seconds(10)) { queue.waiting == n + 1 }
                #expect(queued)
            }
            for n in 0..<requests.count {
                queue.release()
                let served = await eventually(timeout: .seconds(10)) { order.count == n + 1 }
                #expect(served)
            }
            try await group.waitForAll()
        }
        queue.release()
        return order.items
    }

    @Test func aLightRequesterIsServedBeforeAHeavyOnesBacklog() async throws {
        let queue = FairQueue(capacity: 1)
        let heavy = FairQueue.Requester(id: "heavy"), light = FairQueue.Requester(id: "light")
        let order = try await Self.dispatchOrder(queue, requesters: [heavy, light], requests: Array(repeating: 0, count: 10) + [1])
        // Heavy's first went first (it was alone); then light, whose attained service is nothing.
        #expect(order.firstIndex(of: "light") == 1, "\(order)")
    }

    @Test func requestersThatKeepTheQueueFullAreServedInProportionToTheirWeights() async throws {
        let queue = FairQueue(capacity: 1)
        let a = FairQueue.Requester(id: "a", weight: 1), b = FairQueue.Requester(id: "b", weight: 1), c = FairQueue.Requester(id: "c", weight: 2)
        // 40 each, interleaved arrival: of the first 80 dispatches (all three still waiting), 20:20:40.
        let requests = (0..<40).flatMap { _ in [0, 1, 2] }
        let order = try await Self.dispatchOrder(queue, requesters: [a, b, c], requests: requests)
        let first = order.prefix(80)
        let counts = ["a", "b", "c"].map { id in first.filter { $0 == id }.count }
        #expect(counts.allSatisfy { $0 > 0 })
        #expect(abs(counts[0] - 20) <= 2 && abs(counts[1] - 20) <= 2 && abs(counts[2] - 40) <= 2, "\(counts)")
        // Within a requester, first come, first served is kept by construction (one line each).
    }

    @Test func whoUsedManyTokensLatelyWaitsBehindWhoDidNot() async throws {
        let queue = FairQueue(capacity: 1)
        let spender = FairQueue.Requester(id: "spender"), saver = FairQueue.Requester(id: "saver")
        // The spender's last request used 200,000 tokens; the saver has made one small request.
        queue.credit(spender, tokens: 200_000)
        queue.credit(saver, tokens: 500)
        let order = try await Self.dispatchOrder(queue, requesters: [spender, saver], requests: [0, 0, 1])
        #expect(order.first == "saver", "\(order)")
    }

    @Test func aFailedOverRequestGoesToTheHeadOfItsRequestersLine() async throws {
        let queue = FairQueue(capacity: 1)
        #expect(queue.tryAcquire(FairQueue.Requester(id: "holder")))
        let who = FairQueue.Requester(id: "who")
        let order = OrderLog()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                _ = try await queue.acquire(who, maxWait: .seconds(60))
                order.append("first")
            }
            #expect(await eventually(timeout: .seconds(10)) { queue.waiting == 1 })
            group.addTask {
                _ = try await queue.acquire(who, maxWait: .seconds(60), atFront: true)
                order.append("failed over")
            }
            #expect(await eventually(timeout: .seconds(10)) { queue.waiting == 2 })
            queue.release()
            #expect(await eventually(timeout: .seconds(10)) { order.count == 1 })
            queue.release()
            try await group.waitForAll()
        }
        #expect(order.items == ["failed over", "first"])
    }

    @Test func aWaitThatRunsOutAndAFullQueueAreRefusedWithRetryAfterAndLeaveNothingBehind() async throws {
        let queue = FairQueue(capacity: 1, maxWaiting: 1)
        let r = FairQueue.Requester(id: "r")
        #expect(queue.tryAcquire(r))
        await #expect(throws: FairQueue.Refused.self) { _ = try await queue.acquire(r, maxWait: .milliseconds(100)) }
        #expect(queue.waiting == 0)
        let waiter = Task { try await queue.acquire(r, maxWait: .seconds(60)) }
        #expect(await eventually(timeout: .seconds(10)) { queue.waiting == 1 })
        do {
            _ = try await queue.acquire(r, maxWait: .seconds(60))
            Issue.record("a full queue took another request")
        } catch let refused as FairQueue.Refused {
            #expect(refused.reason == .queueFull && refused.retryAfterSeconds >= 1)
        }
        // A waiter whose task is cancelled (its client left) is gone at once.
        waiter.cancel()
        await #expect(throws: CancellationError.self) { _ = try await waiter.value }
        #expect(queue.waiting == 0)
        queue.release()
        #expect(queue.inUse == 0)
    }
}

/// One request waiting in several providers' queues at once: the first slot freed is its, and no
/// queue keeps it (or a slot) afterwards.
@Suite(.timeLimit(.minutes(1))) struct MultiQueueWaitTests {
    @Test func theFirstQueueToFreeASlotServesAndTheOthersForgetTheRequest() async throws {
        let a = FairQueue(capacity: 1), b = FairQueue(capacity: 1)
        let holder = FairQueue.Requester(id: "holder"), who = FairQueue.Requester(id: "who")
        #expect(a.tryAcquire(holder) && b.tryAcquire(holder))
        let waiting = Task { try await FairQueue.acquire(oneOf: [a, b], who, maxWait: .seconds(30)) }
        #expect(await eventually(timeout: .seconds(10)) { a.waiting == 1 && b.waiting == 1 })
        b.release()
        let granted = try await waiting.value
        #expect(granted.queue === b)
        #expect(await eventually(timeout: .seconds(10)) { a.waiting == 0 })
        #expect(a.inUse == 1 && b.inUse == 1)  // the holder's on a, the waiter's on b
        // a's slot, freed now, goes back to the pool: nobody waits there any more.
        a.release()
        b.release()
        #expect(a.inUse == 0 && b.inUse == 0)
    }

    @Test func aWaitThatRunsOutOrIsCancelledLeavesEveryQueue() async throws {
        let a = FairQueue(capacity: 1), b = FairQueue(capacity: 1, maxWaiting: 0)
        let holder = FairQueue.Requester(id: "holder"), who = FairQueue.Requester(id: "who")
        #expect(a.tryAcquire(holder) && b.tryAcquire(holder))
        // b is full: the request waits in a alone, and its wait runs out there.
        do {
            _ = try await FairQueue.acquire(oneOf: [a, b], who, maxWait: .milliseconds(150))
            Issue.record("a request was served with no slot free")
        } catch let refused as FairQueue.Refused {
            #expect(refused.reason == .waitedTooLong && refused.retryAfterSeconds >= 1)
        }
        #expect(a.waiting == 0 && b.waiting == 0)
        // Both full: refused at once as a full queue.
        let c = FairQueue(capacity: 1, maxWaiting: 0)
        #expect(c.tryAcquire(holder))
        await #expect(throws: FairQueue.Refused.self) { _ = try await FairQueue.acquire(oneOf: [b, c], who, maxWait: .seconds(30)) }
        // A cancelled wait (the client left) is gone from both queues at once.
        let d = FairQueue(capacity: 1)
        #expect(d.tryAcquire(holder))
        let waiting = Task { try await FairQueue.acquire(oneOf: [a, d], who, maxWait: .seconds(30)) }
        #expect(await eventually(timeout: .seconds(10)) { a.waiting == 1 && d.waiting == 1 })
        waiting.cancel()
        await #expect(throws: CancellationError.self) { _ = try await waiting.value }
        #expect(a.waiting == 0 && d.waiting == 0)
        for q in [a, b, c, d] { q.release() }
        #expect([a, b, c, d].allSatisfy { $0.inUse == 0 })
    }

    /// Many requests waiting in two queues while both free slots at random: each is served exactly
    /// once, and every slot comes back.
    @Test func underContentionEveryRequestIsServedOnceAndNoSlotIsLost() async throws {
        let a = FairQueue(capacity: 2), b = FairQueue(capacity: 3)
        let served = OrderLog()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<300 {
                group.addTask {
                    let who = FairQueue.Requester(id: "r\(i % 7)")
                    let (queue, _) = try await FairQueue.acquire(oneOf: i.isMultiple(of: 2) ? [a, b] : [b, a], who, maxWait: .seconds(30))
                    served.append("\(i)")
                    try await Task.sleep(for: .microseconds(Int.random(in: 0...500)))
                    queue.release()
                }
            }
            try await group.waitForAll()
        }
        #expect(served.count == 300 && Set(served.items).count == 300)
        #expect(a.inUse == 0 && b.inUse == 0 && a.waiting == 0 && b.waiting == 0)
    }
}

/// The fair queue in front of a real gateway's Ollama server with one slot.
@Suite(.timeLimit(.minutes(3))) struct FairQueueGatewayTests {
    /// A client that opens as many connections as asked (the default pool keeps eight per host).
    static func client() -> HTTPClient {
        var configuration = HTTPClient.Configuration(timeout: .init(connect: .seconds(30), read: .seconds(120)))
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 1024
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    static func chat(_ marker: String, stream: Bool = false) -> String {
        #"{"model":"llama3.2","stream":\#(stream),"messages":[{"role":"user","content":"\#(marker)"}]}"#
    }

    static func markers(_ mock: MockOllama) -> [String] {
        mock.received.filter { $0.path == "/api/chat" }.map { r in
            let text = String(decoding: r.body, as: UTF8.self)
            return text.components(separatedBy: #""content":""#).last?.components(separatedBy: "\"").first ?? ""
        }
    }

    /// The same request in each front's dialect (all three reach the mock Ollama as `/api/chat`).
    static func body(_ front: String, _ marker: String) -> String {
        front == "/v1/messages"
            ? #"{"model":"llama3.2","max_tokens":5,"messages":[{"role":"user","content":"\#(marker)"}]}"#
            : chat(marker)
    }

    @Test(arguments: ["/api/chat", "/v1/chat/completions", "/v1/messages"])
    func aLightKeyIsServedNextNotAfterAHeavyKeysBacklog(_ front: String) async throws {
        var behavior = MockOllama.Behavior()
        behavior.chunks = 1
        behavior.firstByteDelay = .milliseconds(150)
        try await withGateway(["TOLLGATE_OLLAMA_SLOTS": "1"], behavior: behavior, loadTest: true) { gw in
            let heavy = try await gw.createKey(name: "heavy"), light = try await gw.createKey(name: "light")
            let client = Self.client()
            try await withCleanup({ try? await client.shutdown() }) {
                try await withThrowingTaskGroup(of: (String, Int, Int?).self) { group in
                    for i in 0..<24 {
                        group.addTask {
                            let r = try await client.execute(gw.request(front, key: heavy, body: Self.body(front, "heavy-\(i)")), timeout: .seconds(120))
                            _ = try await r.body.collect(upTo: 1 << 20)
                            return ("heavy", Int(r.status.code), r.headers.first(name: "x-tollgate-queue-wait-ms").flatMap(Int.init))
                        }
                    }
                    let backend = try #require(gw.gateway.router.primaryOllama?.queue)
                    #expect(await eventually(timeout: .seconds(30)) { backend.waiting >= 22 })
                    let before = Self.markers(gw.mock).count
                    group.addTask {
                        let r = try await client.execute(gw.request(front, key: light, body: Self.body(front, "light")), timeout: .seconds(120))
                        _ = try await r.body.collect(upTo: 1 << 20)
                        return ("light", Int(r.status.code), r.headers.first(name: "x-tollgate-queue-wait-ms").flatMap(Int.init))
                    }
                    var results: [(String, Int, Int?)] = []
                    for try await result in group { results.append(result) }
                    #expect(results.allSatisfy { $0.1 == 200 }, "\(results)")
                    #expect(results.allSatisfy { $0.2 != nil })
                    // The light request reached the server right after the one being served when it arrived.
                    let order = Self.markers(gw.mock)
                    let position = try #require(order.firstIndex(of: "light"))
                    #expect(position <= before + 1, "light was dispatched \(position - before) places after its arrival: \(order)")
                    // And the heavy key's last requests waited for most of the run.
                    #expect((results.filter { $0.0 == "heavy" }.compactMap(\.2).max() ?? 0) > 2000)
                }
            }
            // Every request leaves its wait in the record.
            let records = try await gw.usageRecords()
            #expect(records.count == 25 && records.allSatisfy { $0.queueMs != nil })
            #expect(records.contains { ($0.queueMs ?? 0) > 2000 })
        }
    }

    @Test func keysWithWeightsOneOneAndTwoThatKeepTheQueueFullAreServedOneToOneToTwo() async throws {
        var behavior = MockOllama.Behavior()
        behavior.chunks = 1
        behavior.firstByteDelay = .milliseconds(25)
        try await withGateway(["TOLLGATE_OLLAMA_SLOTS": "1"], behavior: behavior, loadTest: true) { gw in
            let keys = [
                try await gw.createKey(name: "a", policy: SubjectPolicy(weight: 1)), try await gw.createKey(name: "b", policy: SubjectPolicy(weight: 1)),
                try await gw.createKey(name: "c", policy: SubjectPolicy(weight: 2)),
            ]
            let client = Self.client()
            let stop = Flag()
            try await withCleanup({ try? await client.shutdown() }) {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    // Each key keeps six requests waiting at all times.
                    for (k, key) in keys.enumerated() {
                        for _ in 0..<6 {
                            group.addTask {
                                while !stop.isSet {
                                    let r = try await client.execute(gw.request("/api/chat", key: key, body: Self.chat("key-\(k)")), timeout: .seconds(120))
                                    _ = try await r.body.collect(upTo: 1 << 20)
                                }
                            }
                        }
                    }
                    // 200 dispatches; the first 40 warm up (everyone's queue fills), the next 160 count.
                    #expect(await eventually(timeout: .seconds(60)) { Self.markers(gw.mock).count >= 200 })
                    stop.set()
                    try await group.waitForAll()
                }
            }
            let counted = Self.markers(gw.mock)[40..<200]
            let served = (0..<3).map { k in counted.filter { $0 == "key-\(k)" }.count }
            // 40:40:80 within 10%.
            #expect(abs(served[0] - 40) <= 4 && abs(served[1] - 40) <= 4 && abs(served[2] - 80) <= 8, "\(served)")
        }
    }

    @Test func aClientThatLeavesWhileQueuedNeverReachesTheServerAndIsRecorded() async throws {
        var behavior = MockOllama.Behavior()
        behavior.chunks = 2
        behavior.holdAfterChunk = 1
        try await withGateway(["TOLLGATE_OLLAMA_SLOTS": "1"], behavior: behavior) { gw in
            let key = try await gw.createKey()
            let client = Self.client()
            try await withCleanup({ try? await client.shutdown() }) {
                // One request holds the slot (the server holds its answer).
                let holder = Task { try await gw.send("/api/chat", body: Self.chat("holder", stream: true), key: key) }
                #expect(await eventually(timeout: .seconds(10)) { Self.markers(gw.mock).count == 1 })
                // Another waits, and its client goes away.
                let leaver = Task {
                    try await client.execute(gw.request("/api/chat", key: key, body: Self.chat("leaver")), timeout: .seconds(120))
                }
                let queue = try #require(gw.gateway.router.primaryOllama?.queue)
                #expect(await eventually(timeout: .seconds(10)) { queue.waiting == 1 })
                leaver.cancel()
                #expect(await eventually(timeout: .seconds(10)) { queue.waiting == 0 })
                gw.mock.release()
                #expect(try await holder.value.status == 200)
            }
            #expect(!Self.markers(gw.mock).contains("leaver"))
            let records = try await gw.usageRecords()
            let left = try #require(records.first { $0.outcome == .clientDisconnect })
            #expect(left.promptTokens == nil && left.completionTokens == nil && left.httpStatus == 499 && left.queueMs != nil, "\(left)")
        }
    }

    @Test func aWaitPastTheLimitIsRefused429WithRetryAfterInEachDialect() async throws {
        var behavior = MockOllama.Behavior()
        behavior.chunks = 2
        behavior.holdAfterChunk = 1
        // No health check during the test: it marks the backend down by hand below.
        try await withGateway(["TOLLGATE_OLLAMA_SLOTS": "1", "TOLLGATE_MAX_QUEUE_WAIT": "0.5", "TOLLGATE_HEALTH_INTERVAL": "3600"], behavior: behavior) { gw in
            let key = try await gw.createKey()
            let holder = Task { try await gw.send("/api/chat", body: Self.chat("holder", stream: true), key: key) }
            #expect(await eventually(timeout: .seconds(10)) { Self.markers(gw.mock).count == 1 })
            let ollama = try await gw.send("/api/chat", body: Self.chat("late"), key: key)
            #expect(ollama.status == 429 && ollama.body.hasPrefix(#"{"error":""#), "\(ollama.body)")
            #expect(Int(ollama.headers["retry-after"].first ?? "") ?? 0 >= 1)
            #expect(Int(ollama.headers["x-tollgate-queue-wait-ms"].first ?? "") ?? 0 >= 500)
            let openAI = try await gw.send("/v1/chat/completions", body: Self.chat("late"), key: key)
            #expect(openAI.status == 429 && openAI.body.contains(#""type":"rate_limit_exceeded""#), "\(openAI.body)")
            #expect(openAI.headers["retry-after"].first != nil)
            let anthropic = try await gw.send(
                "/v1/messages", body: #"{"model":"llama3.2","max_tokens":5,"messages":[{"role":"user","content":"late"}]}"#, key: key,
                headers: [("anthropic-version", "2023-06-01")]
            )
            #expect(anthropic.status == 429 && anthropic.body.contains(#""type":"rate_limit_error""#), "\(anthropic.body)")
            #expect(anthropic.headers["retry-after"].first != nil)
            // With the backend down (its health check failed) the wait that runs out is a 503: waiting
            // longer would not help.
            let backend = try #require(gw.gateway.router.primaryOllama)
            backend.recordCheck(ok: false)
            let down = try await gw.send("/v1/chat/completions", body: Self.chat("late"), key: key)
            #expect(down.status == 503 && down.body.contains("down") && Int(down.headers["retry-after"].first ?? "") ?? 0 >= 1, "\(down.body)")
            backend.recordCheck(ok: true)
            gw.mock.release()
            #expect(try await holder.value.status == 200)
            #expect(!Self.markers(gw.mock).contains("late"))
            let refused = try await gw.usageRecords().filter { $0.outcome == .queueRefused }
            #expect(refused.count == 4 && refused.filter { $0.httpStatus == 429 }.count == 3 && refused.allSatisfy { $0.promptTokens == nil })
        }
    }

    @Test func quotasStayExactWithFiveHundredRequestsQueued() async throws {
        var behavior = MockOllama.Behavior()
        behavior.chunks = 1
        try await withGateway(["TOLLGATE_OLLAMA_SLOTS": "2"], behavior: behavior, loadTest: true) { gw in
            let key = try await gw.createKey(policy: SubjectPolicy(quotas: QuotaLimits(dailyRequests: 300)))
            let client = Self.client()
            let statuses = try await withCleanup({ try? await client.shutdown() }) {
                try await withThrowingTaskGroup(of: Int.self) { group in
                    for i in 0..<500 {
                        group.addTask {
                            let r = try await client.execute(gw.request("/api/chat", key: key, body: Self.chat("q-\(i)")), timeout: .seconds(120))
                            _ = try await r.body.collect(upTo: 1 << 20)
                            return Int(r.status.code)
                        }
                    }
                    return try await group.reduce(into: [Int]()) { $0.append($1) }
                }
            }
            #expect(statuses.filter { $0 == 200 }.count == 300, "\(Dictionary(grouping: statuses) { $0 }.mapValues(\.count))")
            #expect(statuses.filter { $0 == 429 }.count == 200)
            #expect(Self.markers(gw.mock).count == 300)
        }
    }

    @Test func theQueueIsVisibleToTheCallerTheOperatorAndPrometheus() async throws {
        var behavior = MockOllama.Behavior()
        behavior.chunks = 2
        behavior.holdAfterChunk = 1
        try await withGateway(["TOLLGATE_OLLAMA_SLOTS": "1"], behavior: behavior) { gw in
            let waiter = try await gw.createKey(name: "waiter")
            let holderKey = try await gw.createKey(name: "holder")
            // A weight set through the admin API is the one the queue uses.
            let id = String(waiter.dropFirst(3).prefix(10))
            let patched = try await gw.admin(.PATCH, "/api/api-keys/\(id)", body: #"{"weight":3}"#)
            #expect(patched.status == 200 && patched.body.contains(#""weight":3"#), "\(patched.body)")
            #expect(try await gw.admin(.PATCH, "/api/api-keys/\(id)", body: #"{"weight":0}"#).status == 400)
            let holder = Task { try await gw.send("/api/chat", body: Self.chat("holder", stream: true), key: holderKey) }
            #expect(await eventually(timeout: .seconds(10)) { Self.markers(gw.mock).count == 1 })
            let client = Self.client()
            try await withCleanup({ try? await client.shutdown() }) {
                let queued = (0..<2).map { i in
                    Task { try await client.execute(gw.request("/api/chat", key: waiter, body: Self.chat("queued-\(i)")), timeout: .seconds(60)) }
                }
                let queue = try #require(gw.gateway.router.primaryOllama?.queue)
                #expect(await eventually(timeout: .seconds(10)) { queue.waiting == 2 })
                // The caller sees its requests and its place.
                let quota = try await gw.send("/tollgate/v1/quota", method: .GET, key: waiter)
                let entry = try JSONValue.parse(quota.body)["queue"]?.arrayValue?.first
                #expect(entry?["provider"]?.stringValue == "ollama" && entry?["your_waiting"]?.intValue == 2 && entry?["your_position"]?.intValue == 1, "\(quota.body)")
                #expect(entry?["your_weight"]?.doubleValue == 3)
                // Prometheus sees the depth.
                let metrics = try await gw.admin(.GET, "/metrics").body
                #expect(metrics.contains(#"tollgate_queue_depth{backend="ollama"} 2"#), "\(metrics.split(separator: "\n").filter { $0.contains("queue") })")
                #expect(metrics.contains(#"tollgate_queue_slots_in_use{backend="ollama"} 1"#))
                // The operator sees who waits, by name, on the dashboard and in the providers API.
                let dashboard = try await gw.admin(.GET, "/ui/").body
                #expect(dashboard.contains("Fair queues") && dashboard.contains("key waiter") && dashboard.contains("1 of 1"), "\(dashboard.suffix(1500))")
                let providers = try await gw.admin(.GET, "/api/providers").body
                #expect(providers.contains(#""queue_waiting":2"#) && providers.contains(#""slots_in_use":1"#), "\(providers)")
                gw.mock.release()
                for task in queued {
                    let r = try await task.value
                    _ = try await r.body.collect(upTo: 1 << 20)
                    #expect(r.status == .ok)
                }
                #expect(try await holder.value.status == 200)
            }
            let after = try await gw.admin(.GET, "/metrics").body
            #expect(after.contains(#"tollgate_queue_dispatches_total{backend="ollama",class="key",waited="true"} 2"#), "\(after.split(separator: "\n").filter { $0.contains("queue") })")
            #expect(after.contains("tollgate_queue_wait_seconds_count"))
        }
    }

    /// A streamed OpenAI or Anthropic request that must wait starts at once with its place in line
    /// (an SSE comment), says how long it waited when dispatched, then streams as usual.
    @Test(arguments: ["/v1/chat/completions", "/v1/messages"])
    func aWaitingStreamShowsItsPlaceAtOnceThenStreams(_ front: String) async throws {
        try await withGateway(["TOLLGATE_OLLAMA_SLOTS": "1"]) { gw in
            let key = try await gw.createKey()
            let queue = try #require(gw.gateway.router.primaryOllama?.queue)
            // The slot is taken (as by a request in flight elsewhere).
            #expect(queue.tryAcquire(FairQueue.Requester(id: "someone else")))
            let body = front == "/v1/messages"
                ? #"{"model":"llama3.2","max_tokens":50,"stream":true,"messages":[{"role":"user","content":"wait"}]}"#
                : #"{"model":"llama3.2","stream":true,"messages":[{"role":"user","content":"wait"}]}"#
            let response = try await gw.http.execute(gw.request(front, key: key, body: body), timeout: .seconds(60))
            #expect(response.status == .ok)
            #expect(response.headers.first(name: "content-type")?.hasPrefix("text/event-stream") == true)
            var chunks = response.body.makeAsyncIterator()
            // Before anything is released, the client already has its place.
            let first = try #require(try await chunks.next())
            #expect(String(buffer: first).hasPrefix(": queued position=1\n\n"), "\(String(buffer: first))")
            #expect(await eventually(timeout: .seconds(10)) { queue.waiting == 1 })
            queue.release()
            var rest = ""
            while let chunk = try await chunks.next() { rest += String(buffer: chunk) }
            #expect(rest.contains(": queue_wait_ms="))
            #expect(rest.contains("tok0") && (front == "/v1/messages" ? rest.contains("event: message_stop") : rest.hasSuffix("data: [DONE]\n\n")), "\(rest)")
            let record = try #require(try await gw.usageRecords().first)
            // The wait the stream told is the one recorded (it can be under a millisecond: the slot was freed at once).
            let told = rest.components(separatedBy: ": queue_wait_ms=").last?.prefix { $0.isNumber }
            #expect(record.outcome == .completed && record.queueMs != nil && told.flatMap { Int($0) } == record.queueMs && record.usageSource == .upstream, "\(record)")
        }
    }

    @Test func aWaitingStreamThatRunsOutOfTimeEndsWithAnErrorEventInItsDialect() async throws {
        try await withGateway(["TOLLGATE_OLLAMA_SLOTS": "1", "TOLLGATE_MAX_QUEUE_WAIT": "0.3"]) { gw in
            let key = try await gw.createKey()
            let queue = try #require(gw.gateway.router.primaryOllama?.queue)
            #expect(queue.tryAcquire(FairQueue.Requester(id: "someone else")))
            let openAI = try await gw.send("/v1/chat/completions", body: #"{"model":"llama3.2","stream":true,"messages":[{"role":"user","content":"x"}]}"#, key: key)
            #expect(openAI.body.hasPrefix(": queued position=1") && openAI.body.contains(#"data: {"error":"#), "\(openAI.body)")
            let anthropic = try await gw.send(
                "/v1/messages", body: #"{"model":"llama3.2","max_tokens":5,"stream":true,"messages":[{"role":"user","content":"x"}]}"#, key: key
            )
            #expect(anthropic.body.hasPrefix(": queued position=1") && anthropic.body.contains("event: error"), "\(anthropic.body)")
            queue.release()
            #expect(gw.mock.postCount == 0)
            let records = try await gw.usageRecords()
            #expect(records.count == 2 && records.allSatisfy { $0.outcome == .queueRefused && $0.httpStatus == 429 })
        }
    }

    /// The official SDKs parse a stream that waited (its comments included) without error.
    @Test func theOfficialSDKsParseAStreamThatWaited() async throws {
        try await SDKTests.ensureVenv()
        try await withGateway(["TOLLGATE_OLLAMA_SLOTS": "1"]) { gw in
            let queue = try #require(gw.gateway.router.primaryOllama?.queue)
            #expect(queue.tryAcquire(FairQueue.Requester(id: "someone else")))
            var env = SDKTests.env
            env["TG_URL"] = gw.baseURL
            env["TG_KEY"] = try await gw.createKey()
            let script = Task {
                try await Subprocess.run(
                    SDKTests.root + "/.build/sdk-venv/bin/python", [SDKTests.root + "/Tests/sdk/queued_check.py"], environment: env, directory: SDKTests.root
                )
            }
            // Both SDK requests wait; then the slot is freed.
            let waited = await eventually(timeout: .seconds(60)) { queue.waiting == 2 }
            #expect(waited)
            queue.release()
            let result = try await script.value
            #expect(result.status == 0, "\(result.out)\n\(result.err)")
            #expect(result.out.split(separator: "\n").filter { $0.hasPrefix("ok ") }.count == 2, "\(result.out)")
        }
    }

    /// Two servers for the model, one with its slot taken: requests go to the one with a free slot
    /// instead of waiting (and when both are busy, to the shorter queue).
    @Test func aRequestGoesWhereASlotIsFreeRatherThanWait() async throws {
        let second = MockOllama()
        let port = try await second.start()
        try await withCleanup({ await second.stop() }) {
            let first = MockOllama()
            let firstPort = try await first.start()
            try await withCleanup({ await first.stop() }) {
                try await withGateway(["OLLAMA_URL": "http://127.0.0.1:\(firstPort),http://127.0.0.1:\(port)", "TOLLGATE_OLLAMA_SLOTS": "1"]) { gw in
                    await gw.gateway.refreshCatalog()
                    let key = try await gw.createKey()
                    let busy = try #require(gw.gateway.router.backend(named: "ollama")?.queue)
                    #expect(busy.tryAcquire(FairQueue.Requester(id: "someone else")))
                    for i in 0..<4 {
                        let r = try await gw.send("/api/chat", body: Self.chat("free-\(i)"), key: key)
                        #expect(r.status == 200)
                        #expect(Int(r.headers["x-tollgate-queue-wait-ms"].first ?? "") == 0)
                    }
                    #expect(first.postCount == 0 && second.postCount == 4)
                    busy.release()
                }
            }
        }
    }

    /// A key's own longest wait, shorter than the gateway's, is the one that applies (set through the admin API).
    @Test func aKeysOwnMaxQueueWaitApplies() async throws {
        try await withGateway(["TOLLGATE_OLLAMA_SLOTS": "1", "TOLLGATE_MAX_QUEUE_WAIT": "60"]) { gw in
            let key = try await gw.createKey()
            let patched = try await gw.admin(.PATCH, "/api/api-keys/\(key.dropFirst(3).prefix(10))", body: #"{"max_queue_wait":0.3}"#)
            #expect(patched.status == 200 && patched.body.contains(#""max_queue_wait":0.3"#), "\(patched.body)")
            let queue = try #require(gw.gateway.router.primaryOllama?.queue)
            #expect(queue.tryAcquire(FairQueue.Requester(id: "someone else")))
            let r = try await gw.send("/api/chat", body: Self.chat("impatient"), key: key)
            #expect(r.status == 429 && r.headers["retry-after"].first != nil)
            #expect((Int(r.headers["x-tollgate-queue-wait-ms"].first ?? "") ?? 0) < 30_000)
            queue.release()
        }
    }

    /// Open WebUI's end users behind one trusting key are requesters of their own: one user's backlog
    /// does not hold up another's request, although both come with the same key.
    @Test func openWebUIEndUsersOfOneKeyGetTheirOwnShares() async throws {
        try await withGateway(["TOLLGATE_OLLAMA_SLOTS": "1"]) { gw in
            let created = try await gw.admin(.POST, "/api/api-keys", body: #"{"name":"open-webui","trusts_end_users":true}"#)
            let key = try #require(try JSONValue.parse(created.body)["key"]?.stringValue)
            let queue = try #require(gw.gateway.router.primaryOllama?.queue)
            #expect(queue.tryAcquire(FairQueue.Requester(id: "someone else")))
            let client = Self.client()
            try await withCleanup({ try? await client.shutdown() }) {
                func ask(_ user: String, _ marker: String) -> Task<Int, any Error> {
                    var request = gw.request("/api/chat", key: key, body: Self.chat(marker))
                    request.headers.add(name: "x-openwebui-user-id", value: user)
                    request.headers.add(name: "x-openwebui-user-name", value: user)
                    let sending = request
                    return Task {
                        let r = try await client.execute(sending, timeout: .seconds(60))
                        _ = try await r.body.collect(upTo: 1 << 20)
                        return Int(r.status.code)
                    }
                }
                var tasks = [Task<Int, any Error>]()
                for i in 0..<3 {
                    tasks.append(ask("alice", "alice-\(i)"))
                    #expect(await eventually(timeout: .seconds(10)) { queue.waiting == i + 1 })
                }
                tasks.append(ask("bob", "bob-0"))
                #expect(await eventually(timeout: .seconds(10)) { queue.waiting == 4 })
                // Two requesters wait, each an end user of its own.
                #expect(queue.snapshot().waiting.count == 2)
                queue.release()
                for task in tasks {
                    let status = try await task.value
                    #expect(status == 200)
                }
            }
            // Alice's first went first (she was alone), then Bob's, then the rest of Alice's.
            #expect(Array(Self.markers(gw.mock).prefix(2)) == ["alice-0", "bob-0"], "\(Self.markers(gw.mock))")
            let metrics = try await gw.admin(.GET, "/metrics").body
            #expect(metrics.contains(#"class="end_user",waited="true"} 4"#), "\(metrics.split(separator: "\n").filter { $0.contains("dispatches") })")
        }
    }

    /// Ollama's default: one request per model at a time (its `OLLAMA_NUM_PARALLEL` is 1 unless raised),
    /// so without configuration a second request for a model waits in the gateway's fair queue, while
    /// a request for another model goes at once; `llama3.2:latest` is the same line as `llama3.2`.
    @Test func anOllamaServerGetsOneSlotPerModelByDefault() async throws {
        var behavior = MockOllama.Behavior()
        behavior.chunks = 1
        behavior.firstByteDelay = .milliseconds(400)
        try await withGateway(["TOLLGATE_OLLAMA_MODEL_SLOTS": ""], behavior: behavior) { gw in
            let key = try await gw.createKey()
            let ollama = try #require(gw.gateway.router.primaryOllama)
            #expect(ollama.config.slotsPerModel == 1 && ollama.queue == nil)
            let client = Self.client()
            try await withCleanup({ try? await client.shutdown() }) {
                func ask(_ model: String) -> Task<Int?, any Error> {
                    let request = gw.request("/api/chat", key: key, body: #"{"model":"\#(model)","stream":false,"messages":[{"role":"user","content":"hi"}]}"#)
                    return Task {
                        let r = try await client.execute(request, timeout: .seconds(60))
                        _ = try await r.body.collect(upTo: 1 << 20)
                        #expect(r.status == .ok)
                        return r.headers.first(name: "x-tollgate-queue-wait-ms").flatMap(Int.init)
                    }
                }
                let first = ask("llama3.2")
                let line = try #require(ollama.slotQueues(for: "llama3.2").first)
                #expect(await eventually(timeout: .seconds(10)) { line.inUse == 1 })
                let second = ask("llama3.2:latest"), other = ask("qwen3")
                #expect(await eventually(timeout: .seconds(10)) { line.waiting == 1 })
                #expect(try await other.value == 0)
                #expect(try await first.value == 0)
                #expect((try await second.value ?? 0) > 0)
            }
            let lines = ollama.slotLines.compactMap(\.model)
            #expect(lines == ["llama3.2", "qwen3"])
            let providers = try await gw.admin(.GET, "/api/providers").body
            #expect(providers.contains(#""model_slots":1"#))
        }
    }

    /// `TOLLGATE_OLLAMA_MODEL_SLOTS=0` (the server runs many at once, or the operator wants Ollama's
    /// own queue): requests go straight through.
    @Test func modelSlotsZeroLetsRequestsStraightThrough() async throws {
        var behavior = MockOllama.Behavior()
        behavior.chunks = 1
        behavior.firstByteDelay = .milliseconds(300)
        try await withGateway(["TOLLGATE_OLLAMA_MODEL_SLOTS": "0"], behavior: behavior) { gw in
            let key = try await gw.createKey()
            #expect(gw.gateway.router.primaryOllama?.slotQueues(for: "llama3.2").isEmpty == true)
            async let a = gw.send("/api/chat", body: Self.chat("a"), key: key)
            async let b = gw.send("/api/chat", body: Self.chat("b"), key: key)
            let (ra, rb) = try await (a, b)
            #expect(ra.headers["x-tollgate-queue-wait-ms"].first == "0" && rb.headers["x-tollgate-queue-wait-ms"].first == "0")
        }
    }

    /// A request waits in the queues of every server of its model at once and goes to the first
    /// that frees a slot — here the one whose queue looked longer per slot, which routing alone
    /// would not have chosen.
    @Test func aRequestWaitsForTheFirstSlotFreedAmongTheServersOfItsModel() async throws {
        let a = MockOllama(), b = MockOllama()
        let (portA, portB) = (try await a.start(), try await b.start())
        try await withCleanup({
            await a.stop()
            await b.stop()
        }) {
            let providers = #"{"providers":[{"name":"a","kind":"ollama","url":"http://127.0.0.1:\#(portA)","model_slots":2},"#
                + #"{"name":"b","kind":"ollama","url":"http://127.0.0.1:\#(portB)","model_slots":1}]}"#
            try await withGateway(["OLLAMA_URL": "none", "TOLLGATE_PROVIDERS": providers]) { gw in
                await gw.gateway.refreshCatalog()
                let key = try await gw.createKey()
                let router = gw.gateway.router
                let lineA = try #require(router.backend(named: "a")?.slotQueues(for: "llama3.2").first)
                let lineB = try #require(router.backend(named: "b")?.slotQueues(for: "llama3.2").first)
                let holder = FairQueue.Requester(id: "someone else")
                #expect(lineA.tryAcquire(holder) && lineA.tryAcquire(holder) && lineB.tryAcquire(holder))
                let sent = Task { try await gw.send("/api/chat", body: Self.chat("waiter"), key: key) }
                #expect(await eventually(timeout: .seconds(10)) { lineA.waiting == 1 && lineB.waiting == 1 })
                lineB.release()
                let r = try await sent.value
                #expect(r.status == 200)
                #expect(Int(r.headers["x-tollgate-queue-wait-ms"].first ?? "") ?? -1 >= 0)
                #expect(a.postCount == 0 && b.postCount == 1)
                // a forgot the request at once; its slots, freed, go back to the pool.
                #expect(lineA.waiting == 0)
                lineA.release()
                lineA.release()
                #expect(lineA.inUse == 0)
                #expect(await eventually(timeout: .seconds(10)) { lineB.inUse == 0 })
                let records = try await gw.usageRecords()
                #expect(records.count == 1 && records.first?.provider == "b" && (records.first?.queueMs ?? 0) >= 0)
            }
        }
    }
}
