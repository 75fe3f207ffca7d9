import Foundation
import NIOCore
import Testing
@testable import TollgateCore

@testable import Tollgate

/// The stream decoders' shortcuts (issue 19) must mean exactly what the full parse means: plain
/// Ollama content lines read without parsing, relayed OpenAI and Anthropic events counted without
/// parsing, lines cut in bulk.
@Suite struct StreamFastPathTests {
    /// Ollama lines of every kind: plain text, escapes, non-ASCII, thinking, a tool call, generate, the end.
    static let ollamaLines = [
        #"{"model":"m","created_at":"t","message":{"role":"assistant","content":"Hello"},"done":false}"#,
        #"{"model":"m","created_at":"t","message":{"role":"assistant","content":" wörld 😀"},"done":false}"#,
        #"{"model":"m","created_at":"t","message":{"role":"assistant","content":"say \"hi\"\n"},"done":false}"#,
        #"{"model":"m","created_at":"t","message":{"role":"assistant","content":""},"done":false}"#,
        #"{"model":"m","created_at":"t","message":{"role":"assistant","content":"","thinking":"hmm"},"done":false}"#,
        #"{"model":"m","created_at":"t","message":{"role":"assistant","content":"","tool_calls":[{"function":{"name":"f","arguments":{"a":1}}}]},"done":false}"#,
        #"{"model":"m","created_at":"t","response":"gen text","done":false}"#,
        #"{"model":"m","created_at":"t","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","prompt_eval_count":3,"eval_count":4}"#,
    ]

    @Test func plainOllamaLinesMeanWhatTheFullParseMeans() {
        let stream = Self.ollamaLines.joined(separator: "\n") + "\n"
        var fast = OllamaNative.EventDecoder(ids: .init(prefix: "a"))
        // Byte by byte (the fallback path) and in one piece (the bulk path) give the same events.
        var slow = OllamaNative.EventDecoder(ids: .init(prefix: "a"))
        let whole = fast.feed(Array(stream.utf8)) + fast.finish()
        var piecewise: [ChatEvent] = []
        for b in stream.utf8 { piecewise += slow.feed(CollectionOfOne(b)) }
        piecewise += slow.finish()
        #expect(whole == piecewise)
        #expect(
            whole == [
                .start(model: "m"), .text("Hello"), .text(" wörld 😀"), .text("say \"hi\"\n"), .thinking("hmm"),
                .toolCall(ToolCall(id: "call_a_0", name: "f", arguments: #"{"a":1}"#)), .text("gen text"),
                .finish(.toolCalls, usage: TokenUsage(promptTokens: 3, completionTokens: 4)),
            ]
        )
    }

    /// The one-pass shortcut gives, line by line, what the full parse of the same line gives —
    /// key-looking text inside a value, spaces around colons, a second text field, `done` true.
    @Test func plainTextShortcutAgreesWithTheParse() throws {
        let lines = Self.ollamaLines + [
            #"{"model":"m","message":{"role":"assistant","content":"the \"thinking\" key"},"done":false}"#,
            #"{"model":"m","message":{"role":"assistant","content":"\"tool_calls\":[]"},"done":false}"#,
            #"{"model":"m","message":{"role":"assistant","content": "spaced"}, "done" : false}"#,
            #"{"model":"m","message":{"role":"assistant","content":"a"},"response":"b","done":false}"#,
            #"{"model":"m","message":{"role":"assistant","content":"\u00e9"},"done":false}"#,
            #"{"model":"m","message":{"role":"assistant","content":"done"},"done":true,"eval_count":1}"#,
            #"{"model":"m","message":{"role":"assistant","content":null},"done":false}"#,
            #"{"model":"m","error":"boom","done":false}"#,
        ]
        for line in lines {
            var fast = OllamaNative.EventDecoder(ids: .init(prefix: "a"))
            var full = OllamaNative.EventDecoder(ids: .init(prefix: "a"))
            _ = fast.line(ArraySlice(Self.ollamaLines[0].utf8))
            _ = full.line(ArraySlice(Self.ollamaLines[0].utf8))
            let parsed = try JSONValue.parse(ArraySlice(line.utf8), maxDepth: 512)
            #expect(fast.line(ArraySlice(line.utf8)) == full.events(from: parsed), "\(line)")
        }
        // The plain lines are the ones read without a parse.
        #expect(OllamaNative.EventDecoder.plainText(ArraySlice(Self.ollamaLines[0].utf8)) == "Hello")
        #expect(OllamaNative.EventDecoder.plainText(ArraySlice(#"{"message":{"content":"x","thinking":"y"},"done":false}"#.utf8)) == nil)
        #expect(OllamaNative.EventDecoder.plainText(ArraySlice(#"{"message":{"content":"the \"thinking\""},"done":false}"#.utf8)) == nil)
        #expect(OllamaNative.EventDecoder.plainText(ArraySlice(#"{"message":{"content":"x"},"done":true}"#.utf8)) == nil)
    }

    @Test func relayedEventsAreCountedAsTheFullDecoderReadsThem() {
        let openAI = [
            #"data: {"id":"c","model":"gpt","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#,
            #"data: {"id":"c","model":"gpt","choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null}]}"#,
            #"data: {"id":"c","model":"gpt","choices":[{"index":0,"delta":{"reasoning_content":"think"},"finish_reason":null}]}"#,
            #"data: {"id":"c","model":"gpt","choices":[{"index":0,"delta":{"content": "spaced"},"finish_reason":null}],"usage":null}"#,
            // Text that looks like keys, escaped quotes and backslashes: still one text piece each.
            #"data: {"id":"c","model":"gpt","choices":[{"index":0,"delta":{"content":"say \"usage\": {\"error\": 1} \\"},"finish_reason":null}]}"#,
            #"data: {"id":"c","model":"gpt","choices":[{"index":0,"delta":{"content":"\\\"finish_reason\":\"x"},"finish_reason":null}]}"#,
            #"data: {"id":"c","model":"gpt","choices":[{"index":0,"delta":{"reasoning":"r","content":""},"finish_reason":null}]}"#,
            #"data: {"id":"c","model":"gpt","choices":[{"index":0,"delta":{"content":"error"},"finish_reason":null}]}"#,
            #"data: {"id":"c","model":"gpt","choices":[{"index":0,"delta":{"role":"assistant"},"finish_reason":null}]}"#,
            #"data: {"id":"c","model":"gpt","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#,
            #"data: {"id":"c","model":"gpt","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":3,"total_tokens":8}}"#,
            "data: [DONE]",
        ].map { $0 + "\n\n" }.joined()
        var full = OpenAIStreamDecoder(ids: .init(prefix: "x"))
        var metered = OpenAIStreamDecoder(ids: .init(prefix: "x"))
        metered.meterOnly()
        let a = full.feed(Array(openAI.utf8)) + full.finish()
        let b = metered.feed(Array(openAI.utf8)) + metered.finish()
        func shape(_ events: [ChatEvent]) -> [String] {
            events.map { e in
                switch e {
                case .text: "text"
                case .thinking: "thinking"
                default: "\(e)"
                }
            }
        }
        #expect(shape(a) == shape(b))
        #expect(b.last == .finish(.stop, usage: TokenUsage(promptTokens: 5, completionTokens: 3)))
        // The usage chunk is told apart without parsing the others.
        let events = SSEEvents.split(openAI)
        #expect(events.filter(SSEEvents.isUsageOnly).count == 1)

        let anthropic = """
            event: message_start
            data: {"type":"message_start","message":{"id":"m","model":"claude","usage":{"input_tokens":5,"output_tokens":1}}}

            event: content_block_delta
            data: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"t"}}

            event: content_block_delta
            data: {"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"x"}}

            event: message_delta
            data: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":7}}

            event: message_stop
            data: {"type":"message_stop"}


            """
        var fullA = AnthropicStreamDecoder()
        var meteredA = AnthropicStreamDecoder()
        meteredA.meterOnly()
        #expect(shape(fullA.feed(Array(anthropic.utf8)) + fullA.finish()) == shape(meteredA.feed(Array(anthropic.utf8)) + meteredA.finish()))
    }
}

extension StreamFastPathTests {
    /// A relayed SSE stream reaches the client byte for byte as the provider wrote it (CRLF,
    /// comments), however the reads split it; the usage chunk the client did not ask for is the only
    /// thing left out.
    @Test func relayedStreamsPassByteForByteWhateverTheReads() {
        let usageEvent = "data: {\"id\":\"c\",\"model\":\"gpt\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2}}\r\n\r\n"
        let stream =
            ": keep-alive\n\n"
            + "data: {\"id\":\"c\",\"model\":\"gpt\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\r\n\r\n"
            + "data: {\"id\":\"c\",\"model\":\"gpt\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hé\"}}]}\n\n"
            + "data: {\"id\":\"c\",\"model\":\"gpt\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"llo\"},\"finish_reason\":\"stop\"}]}\n\n"
            + usageEvent + "data: [DONE]\n\n"
        let bytes = Array(stream.utf8)
        let request = ChatRequest(model: "gpt")
        func relay(_ cuts: [Int], dropUsage: Bool) -> [UInt8] {
            let writer = StreamWriter(route: .chat, id: "c", created: 0, model: "gpt", request: request, inputEstimate: 1, started: .now)
            var tap = ChatEventTap(
                decoder: OpenAIStreamDecoder(ids: .init(prefix: "call_")), encoder: writer, passthrough: true, dropUsageChunk: dropUsage, cap: nil, promptEstimate: 1)
            var out: [UInt8] = []
            var from = 0
            for cut in cuts + [bytes.count] where cut > from {
                let read = ByteBuffer(bytes: bytes[from..<cut])
                if let piece = tap.feed(read).bytes { out += piece.readableBytesView }
                from = cut
            }
            if let last = tap.end() { out += last.readableBytesView }
            return out
        }
        let withoutUsage = Array(stream.replacingOccurrences(of: usageEvent, with: "").utf8)
        #expect(relay([], dropUsage: false) == bytes)
        #expect(relay([], dropUsage: true) == withoutUsage)
        for cut in 1..<bytes.count {
            #expect(relay([cut], dropUsage: false) == bytes, "cut at \(cut)")
            #expect(relay([cut], dropUsage: true) == withoutUsage, "cut at \(cut)")
        }
        #expect(relay(Array(1..<bytes.count), dropUsage: false) == bytes, "a byte at a time")
    }
}

extension SSEEvents {
    /// The events of a whole stream, for tests.
    static func split(_ text: String) -> [[UInt8]] {
        var events = SSEEvents()
        return events.feed(Array(text.utf8)) + events.rest()
    }
}
