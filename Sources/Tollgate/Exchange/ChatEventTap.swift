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

    /// One unit of the upstream's answer and what it means; `raw`, for a relay, is where its bytes
    /// are in the buffer being relayed.
    typealias Unit = (raw: Range<Int>?, events: [ChatEvent])

    mutating func feed(_ chunk: ByteBuffer) -> (bytes: ByteBuffer?, done: Bool) {
        guard passthrough else { return (emit([(nil, decoder.feed(chunk.readableBytesView))], relaying: nil), ended) }
        do {
            let (bytes, ranges) = try events.feed(chunk)
            let view = bytes.readableBytesView
            let units = ranges.map { range in
                (Optional(range), decoder.feed(view[(view.startIndex + range.lowerBound)..<(view.startIndex + range.upperBound)]))
            }
            return (emit(units, relaying: bytes), ended)
        } catch {
            return (emit([(nil, [.failure("upstream sent an event longer than \(events.maxEvent) bytes")])], relaying: nil), ended)
        }
    }

    mutating func end() -> ByteBuffer? {
        guard !ended else { return nil }
        var last: [Unit] = []
        var relaying: ByteBuffer?
        if passthrough, let rest = events.rest().first {
            relaying = ByteBuffer(bytes: rest)
            last.append((0..<rest.count, decoder.feed(rest)))
        }
        last.append((nil, decoder.finish()))
        if !decoder.isFinished { last.append((nil, [.failure("upstream ended the stream early")])) }
        return emit(last, relaying: relaying)
    }

    mutating func fail(_ failure: UpstreamFailure) -> ByteBuffer? {
        guard !ended else { return nil }
        outcome = failure.outcome == .timeout || failure.outcome == .shutdown ? failure.outcome : .upstreamError
        return emit([(nil, [.failure(failure.streamMessage)])], relaying: nil)
    }

    /// What the client gets, in order: events relayed as they are (ranges of the relayed buffer) and
    /// events written in the client's dialect.
    enum Piece {
        case relayed(Range<Int>)
        case written(String)
    }

    /// The client's bytes for some units: relayed events as they are (less the usage chunk the
    /// client did not ask for), other events encoded in the client's dialect; the cap cut ends it all.
    /// When every event is relayed unchanged, the answer is a slice of `relaying`, not a copy.
    mutating func emit(_ units: [Unit], relaying: ByteBuffer?) -> ByteBuffer? {
        var pieces: [Piece] = []
        // Written text is gathered here (appended in place) until a relayed event comes between.
        var written = ""
        func add(_ piece: Piece) {
            switch piece {
            case .written(let text): written += text
            case .relayed(let range):
                if !written.isEmpty {
                    pieces.append(.written(written))
                    written = ""
                }
                if case .relayed(let before) = pieces.last, before.upperBound == range.lowerBound {
                    pieces[pieces.count - 1] = .relayed(before.lowerBound..<range.upperBound)
                } else {
                    pieces.append(piece)
                }
            }
        }
        units: for unit in units {
            var relay = unit.raw != nil
            for event in unit.events {
                switch event {
                case .text, .thinking:
                    generated += 1
                    if let cap, generated > cap {
                        // The upstream ignored the cap: end as if it had stopped there.
                        capCut = true
                        add(.written(encoder.encode(.finish(.length, usage: nil), usage: TokenUsage(promptTokens: decoder.promptTokens ?? promptEstimate, completionTokens: cap))))
                        ended = true
                        relay = false
                    } else if unit.raw == nil {
                        add(.written(encoder.encode(event)))
                    }
                case .finish(_, let usage):
                    reported = usage
                    let told = usage ?? TokenUsage(promptTokens: decoder.promptTokens ?? promptEstimate, completionTokens: decoder.completionTokens ?? generated)
                    if unit.raw == nil { add(.written(encoder.encode(event, usage: told))) }
                    ended = true
                case .failure(let message):
                    if outcome == .completed { outcome = .upstreamError }
                    failureMessage = message
                    if unit.raw == nil { add(.written(encoder.encode(event))) }
                    ended = true
                default:
                    if unit.raw == nil { add(.written(encoder.encode(event))) }
                }
                if capCut { break }
            }
            if relay, let range = unit.raw, let relaying {
                let view = relaying.readableBytesView
                if !(dropUsageChunk && SSEEvents.isUsageOnly(view[(view.startIndex + range.lowerBound)..<(view.startIndex + range.upperBound)])) {
                    add(.relayed(range))
                }
            }
            if capCut { break units }
        }
        if !written.isEmpty { pieces.append(.written(written)) }
        func slice(_ range: Range<Int>) -> ByteBuffer? { relaying?.getSlice(at: (relaying?.readerIndex ?? 0) + range.lowerBound, length: range.count) }
        switch pieces.count {
        case 0: return nil
        case 1:
            switch pieces[0] {
            case .relayed(let range): return slice(range)
            case .written(let text): return ByteBuffer(string: text)
            }
        default:
            var out = ByteBuffer()
            for piece in pieces {
                switch piece {
                case .relayed(let range): if let bytes = slice(range) { out.writeImmutableBuffer(bytes) }
                case .written(let text): out.writeString(text)
                }
            }
            return out
        }
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
