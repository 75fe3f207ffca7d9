import NIOCore

/// What the one stream loop (``ExchangeStream``) does with an upstream's answer for one pair of
/// dialects: relay it as it is, with the meter and the output-cap cutter as taps on the bytes
/// (``OllamaRelayTap``), or decode it event by event and relay or re-encode each event
/// (``ChatEventTap``). A tap turns upstream chunks into the client's bytes and knows, at the end,
/// what the usage record must say about tokens and how the answer ended.
protocol StreamTap {
    /// The client's bytes for one upstream chunk; `done` when the tap ended the stream (the cap was
    /// reached, or the upstream's final event or an error event passed).
    mutating func feed(_ chunk: ByteBuffer) -> (bytes: ByteBuffer?, done: Bool)
    /// The stream is over (the upstream ended, or the tap did): the bytes still owed to the client.
    mutating func end() -> ByteBuffer?
    /// The upstream failed after the status was sent: the bytes that end the client's stream in
    /// its dialect.
    mutating func fail(_ failure: UpstreamFailure) -> ByteBuffer?
    /// The record's tokens (with their provenance), served model, cost and outcome. The loop has
    /// already set the status and the time to first byte.
    func settle(_ record: inout UsageRecord, clientGone: Bool, failure: UpstreamFailure?)
}
