import HTTPTypes
import NIOCore
import TollgateCore

/// The Ollama relay's taps on ``ExchangeStream``: the bytes pass as they are while
/// ``OllamaStreamMeter`` reads the counters, and ``StreamCapCutter`` (when an output cap applies)
/// cuts a stream whose upstream ignored `num_predict`, ending it with Ollama's own final chunk.
struct OllamaRelayTap: StreamTap {
    let close: OllamaPassthrough.Closing
    var meter = OllamaStreamMeter()
    var cutter: StreamCapCutter?

    init(close: OllamaPassthrough.Closing) {
        self.close = close
        self.cutter = close.cap.map(StreamCapCutter.init)
    }

    mutating func feed(_ chunk: ByteBuffer) -> (bytes: ByteBuffer?, done: Bool) {
        guard cutter != nil else {
            meter.observe(chunk)
            return (chunk, false)
        }
        guard let passed = cutter!.admit(chunk) else { return (nil, true) }
        meter.observe(passed)
        return (passed, cutter!.isCut)
    }

    /// Cut here, or the upstream stopped right at the cap without its final line: end at the cap
    /// either way, as Ollama does when `num_predict` is reached.
    mutating func end() -> ByteBuffer? {
        meter.finish()
        guard cutter?.reachedCap == true else { return nil }
        return ByteBuffer(
            string: StreamCapCutter.terminalLine(
                model: meter.servedModel, isChat: close.endpoint == .chat, promptTokens: meter.promptEvalCount ?? close.promptEstimate,
                completionTokens: meter.contentLines
            )
        )
    }

    /// After the cap, a failing upstream is of no concern (the answer ends at the cap); before it,
    /// one error line ends the stream, as Ollama does.
    mutating func fail(_ failure: UpstreamFailure) -> ByteBuffer? {
        if cutter?.reachedCap == true { return end() }
        meter.finish()
        return ByteBuffer(string: JSONText.ollamaError(failure.streamMessage) + "\n")
    }

    func settle(_ record: inout UsageRecord, clientGone: Bool, failure: UpstreamFailure?) {
        var meter = self.meter
        meter.finish()  // idempotent; the client may have left before end()
        let capCut = cutter?.reachedCap == true
        close.record(&record, meter: meter, clientGone: clientGone, failure: capCut ? nil : failure, capCut: capCut)
    }
}
