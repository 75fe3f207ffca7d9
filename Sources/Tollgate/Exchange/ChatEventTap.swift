import NIOCore
import TollgateCore

/// The taps of a chat stream on ``ExchangeStream`` when the upstream's answer is read as events:
/// the provider's decoder meters every event; a relay (the client's own dialect) passes each event
/// on exactly as the provider wrote it, a translation writes it again in the client's dialect
/// (``StreamWriter``). An output cap the upstream ignores ends the stream as the client's dialect
/// ends a stream that reached its limit.
struct ChatEventTap: StreamTap {
    var decoder: any ChatStreamDecoder
    var encoder: StreamWriter
    /// Relayed: the upstream's events are what the client gets (the decoder only meters).
    let passthrough: Bool
    /// The usage chunk the gateway asked an OpenAI-compatible provider for, the client did not.
    let dropUsageChunk: Bool
    let cap: Int?
    let promptEstimate: Int
    var events = SSEEvents()
    var generated = 0
    var reported: TokenUsage?
    var outcome = UsageOutcome.completed
    var failureMessage: String?
    var capCut = false
    var ended = false

    init(decoder: any ChatStreamDecoder, encoder: StreamWriter, passthrough: Bool, dropUsageChunk: Bool, cap: Int?, promptEstimate: Int) {
        self.decoder = decoder
        if passthrough { self.decoder.meterOnly() }
        self.encoder = encoder
        self.passthrough = passthrough
        self.dropUsageChunk = dropUsageChunk
        self.cap = cap
        self.promptEstimate = promptEstimate
    }

    /// One unit of the upstream's answer: its bytes when they are relayed as they are, and what they mean.
    typealias Unit = (raw: [UInt8]?, events: [ChatEvent])

    mutating func feed(_ chunk: ByteBuffer) -> (bytes: ByteBuffer?, done: Bool) {
        let units: [Unit] =
            passthrough
            ? events.feed(chunk.readableBytesView).map { raw in (raw, decoder.feed(raw)) }
            : [(nil, decoder.feed(chunk.readableBytesView))]
        let bytes = emit(units)
        return (bytes, ended)
    }

    mutating func end() -> ByteBuffer? {
        guard !ended else { return nil }
        var last: [Unit] = passthrough ? events.rest().map { raw in (raw, decoder.feed(raw)) } : []
        last.append((nil, decoder.finish()))
        if !decoder.isFinished { last.append((nil, [.failure("upstream ended the stream early")])) }
        return emit(last)
    }

    mutating func fail(_ failure: UpstreamFailure) -> ByteBuffer? {
        guard !ended else { return nil }
        outcome = failure.outcome == .timeout || failure.outcome == .shutdown ? failure.outcome : .upstreamError
        return emit([(nil, [.failure(failure.streamMessage)])])
    }

    /// The client's bytes for some units: relayed events as they are (less the usage chunk the
    /// client did not ask for), other events encoded in the client's dialect; the cap cut ends it all.
    mutating func emit(_ units: [Unit]) -> ByteBuffer? {
        var out = ""
        var bytes: [UInt8] = []
        units: for unit in units {
            var relay = unit.raw != nil
            for event in unit.events {
                switch event {
                case .text, .thinking:
                    generated += 1
                    if let cap, generated > cap {
                        // The upstream ignored the cap: end as if it had stopped there.
                        capCut = true
                        out += encoder.encode(.finish(.length, usage: nil), usage: TokenUsage(promptTokens: decoder.promptTokens ?? promptEstimate, completionTokens: cap))
                        ended = true
                        relay = false
                    } else if unit.raw == nil {
                        out += encoder.encode(event)
                    }
                case .finish(_, let usage):
                    reported = usage
                    let told = usage ?? TokenUsage(promptTokens: decoder.promptTokens ?? promptEstimate, completionTokens: decoder.completionTokens ?? generated)
                    if unit.raw == nil { out += encoder.encode(event, usage: told) }
                    ended = true
                case .failure(let message):
                    if outcome == .completed { outcome = .upstreamError }
                    failureMessage = message
                    if unit.raw == nil { out += encoder.encode(event) }
                    ended = true
                default:
                    if unit.raw == nil { out += encoder.encode(event) }
                }
                if capCut { break }
            }
            if relay, let raw = unit.raw, !(dropUsageChunk && SSEEvents.isUsageOnly(raw)) {
                if !out.isEmpty {
                    bytes += Array(out.utf8)
                    out = ""
                }
                bytes += raw
            }
            if capCut { break units }
        }
        if bytes.isEmpty { return out.isEmpty ? nil : ByteBuffer(string: out) }
        if !out.isEmpty { bytes += Array(out.utf8) }
        return ByteBuffer(bytes: bytes)
    }

    /// Tokens as the provider reported them, else counted and marked estimated; the outcome.
    func settle(_ r: inout UsageRecord, clientGone: Bool, failure: UpstreamFailure?) {
        r.modelServed = decoder.servedModel
        r.costNanos = decoder.reportedCostNanos
        // A cut answer's counts are the gateway's: the provider's would describe what it went on to generate.
        let told = capCut ? nil : reported
        TokenCounts(
            reportedPrompt: told?.promptTokens, reportedCompletion: told?.completionTokens, estimatedPrompt: decoder.promptTokens ?? promptEstimate,
            estimatedCompletion: capCut ? cap : (decoder.completionTokens ?? generated)
        ).apply(to: &r)
        if clientGone {
            r.outcome = .clientDisconnect
        } else if capCut {
            r.outcome = .capReached
        } else {
            r.outcome = outcome
            r.error = failureMessage
        }
    }
}
