import NIOCore
import Testing
import TollgateCore

@Suite struct OllamaStreamMeterTests {
    let stream = """
        {"model":"llama3.2:latest","created_at":"x","message":{"role":"assistant","content":"He said \\"eval_count\\": 5"},"done":false}
        {"model":"llama3.2:latest","created_at":"x","message":{"role":"assistant","content":"lo"},"done":false}
        {"model":"llama3.2:latest","created_at":"x","message":{"role":"assistant","content":""},"done_reason":"stop","done":true,"total_duration":1,"prompt_eval_count":26,"prompt_eval_duration":2,"eval_count":259,"eval_duration":3}

        """

    @Test func readsFinalCountsWhateverTheChunking() {
        let bytes = Array(stream.utf8)
        for size in [1, 2, 3, 7, 64, 1000, bytes.count] {
            var meter = OllamaStreamMeter()
            var i = 0
            while i < bytes.count {
                meter.observe(ByteBuffer(bytes: bytes[i..<min(i + size, bytes.count)]))
                i += size
            }
            meter.finish()
            #expect(meter.promptEvalCount == 26, "chunk size \(size)")
            #expect(meter.evalCount == 259)
            #expect(meter.doneReason == "stop")
            #expect(meter.sawDone)
            #expect(meter.contentLines == 2)
            #expect(meter.servedModel == "llama3.2:latest")
            #expect(meter.upstreamError == nil)
            #expect(meter.bytesSeen == bytes.count)
        }
    }

    @Test func cutStreamCountsContentLinesOnly() {
        var meter = OllamaStreamMeter()
        let lines = stream.split(separator: "\n").prefix(2).joined(separator: "\n") + "\n{\"model\":\"llama3.2\",\"mess"
        meter.observe(ByteBuffer(string: lines))
        meter.finish()
        #expect(meter.promptEvalCount == nil)
        #expect(meter.evalCount == nil)
        #expect(!meter.sawDone)
        #expect(meter.contentLines == 3)
    }

    @Test func errorLineIsReported() {
        var meter = OllamaStreamMeter()
        meter.observe(ByteBuffer(string: "{\"model\":\"m\",\"response\":\"a\",\"done\":false}\n{\"error\":\"model crashed: \\\"oom\\\"\"}\n"))
        meter.finish()
        #expect(meter.upstreamError == "model crashed: \"oom\"")
        #expect(meter.contentLines == 1)
    }

    @Test func singleJSONEmbeddingAnswer() {
        var meter = OllamaStreamMeter()
        let vector = (0..<5000).map { _ in "0.123456" }.joined(separator: ",")
        meter.observe(ByteBuffer(string: "{\"model\":\"nomic\",\"embeddings\":[[\(vector)]],\"total_duration\":5,\"load_duration\":1,\"prompt_eval_count\":8}"))
        meter.finish()
        #expect(meter.promptEvalCount == 8)
        #expect(meter.servedModel == "nomic")
    }

    @Test func countersBeforeALongBodyAreFoundToo() {
        let vector = (0..<20_000).map { _ in "0.123456" }.joined(separator: ",")
        let long = String(repeating: "word ", count: 20_000)
        for text in [
            "{\"prompt_eval_count\":8,\"model\":\"nomic\",\"embeddings\":[[\(vector)]],\"total_duration\":5}",
            "{\"done\":true,\"eval_count\":4,\"prompt_eval_count\":3,\"message\":{\"role\":\"assistant\",\"content\":\"\(long)\"}}",
        ] {
            var meter = OllamaStreamMeter()
            let bytes = Array(text.utf8)
            for start in stride(from: 0, to: bytes.count, by: 4096) { meter.observe(ByteBuffer(bytes: bytes[start..<min(start + 4096, bytes.count)])) }
            meter.finish()
            #expect(meter.promptEvalCount != nil)
        }
    }

    @Test func nonStreamAnswerWithoutNewline() {
        var meter = OllamaStreamMeter()
        let long = String(repeating: "word ", count: 20_000)
        meter.observe(ByteBuffer(string: "{\"model\":\"m\",\"message\":{\"role\":\"assistant\",\"content\":\"\(long)\"},\"done_reason\":\"length\",\"done\":true,\"prompt_eval_count\":3,\"eval_count\":4}"))
        meter.finish()
        #expect(meter.evalCount == 4)
        #expect(meter.promptEvalCount == 3)
        #expect(meter.doneReason == "length")
    }
}
