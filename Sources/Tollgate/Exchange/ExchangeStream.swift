import Hummingbird
import NIOCore

/// The one stream loop every pair of dialects goes through: read the upstream's next chunk (with
/// its idle timeout), pass it through the tap, write what the tap gives to the client, stop when
/// the upstream ends, fails, the tap ends the stream or the client leaves — then settle exactly
/// once. What differs by pair is the tap; what happens around it is written here only.
enum ExchangeStream {
    /// Runs the loop into `writer`. `first` is a chunk already read from the upstream, `failed` a
    /// failure already met reading it; `isHead` meters without writing (a HEAD request).
    static func run<Tap: StreamTap>(
        tap: inout Tap, upstream: inout UpstreamBodyReader, first: ByteBuffer? = nil, failed: UpstreamFailure? = nil, writer: inout any ResponseBodyWriter,
        settlement: RequestSettlement, status: Int, headMs: Double, drain: DrainState, watch: ClientConnectionWatch?, isHead: Bool = false
    ) async {
        var clientGone = false
        var failure = failed
        var firstByteMs: Double?
        var carried = first

        func send(_ bytes: ByteBuffer?, to writer: inout any ResponseBodyWriter) async {
            guard let bytes, bytes.readableBytes > 0, !isHead, !clientGone else { return }
            do { try await writer.write(bytes) } catch { clientGone = true }
        }

        while !clientGone, failure == nil {
            let next: ByteBuffer?
            if let chunk = carried {
                next = chunk
                carried = nil
            } else {
                do {
                    next = try await upstream.next()
                } catch {
                    failure = UpstreamFailure(error, aborted: drain.isAborted)
                    break
                }
            }
            guard let chunk = next else { break }
            if firstByteMs == nil { firstByteMs = settlement.elapsedMs() }
            let (bytes, done) = tap.feed(chunk)
            await send(bytes, to: &writer)
            if done { break }
        }
        if let failure {
            await send(tap.fail(failure), to: &writer)
        } else if !clientGone {
            await send(tap.end(), to: &writer)
        }
        let ttfb = firstByteMs ?? headMs
        let stalled = watch?.isStalled ?? false
        let tapped = tap
        settlement.settle { r in
            r.httpStatus = status
            r.ttfbMs = ttfb
            tapped.settle(&r, clientGone: clientGone, failure: failure)
            // Gone because it stopped reading: the gateway closed the connection (`TOLLGATE_CLIENT_TIMEOUT`).
            if clientGone, stalled { r.outcome = .clientStalled }
        }
        if !clientGone { try? await writer.finish(nil) }
    }
}
