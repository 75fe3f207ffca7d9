import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The mock's OpenAI-compatible (`/v1/chat/completions`, `/v1/completions`, `/v1/embeddings`,
/// `/v1/models`) and Anthropic (`/v1/messages`) answers, with the same behaviours as its Ollama
/// ones: `chunks` pieces "tok0 ", "tok1 ", …, caps from `max_tokens`, a tool call when tools are
/// offered, the tool result echoed, thinking when asked, failures on command.
extension MockOllamaResponder {
    static func data(_ object: Any) -> String {
        String(decoding: (try? JSONSerialization.data(withJSONObject: object, options: [.fragmentsAllowed])) ?? Data(), as: UTF8.self)
    }

    /// What the mock says to a chat request in any cloud dialect.
    struct Plan {
        var pieces: [String]
        var toolCall: (name: String, arguments: String)?
        var thinking: String?
        var cut: Bool
        var promptTokens: Int
    }

    static func plan(json: [String: Any], behavior: MockOllama.Behavior, anthropic: Bool) -> Plan {
        let messages = json["messages"] as? [[String: Any]] ?? []
        let tools = json["tools"] as? [[String: Any]] ?? []
        let firstTool = anthropic ? tools.first?["name"] as? String : (tools.first?["function"] as? [String: Any])?["name"] as? String
        var toolResult: String?
        if let last = messages.last {
            if !anthropic, last["role"] as? String == "tool" { toolResult = last["content"] as? String }
            if anthropic, let blocks = last["content"] as? [[String: Any]], let r = blocks.first(where: { $0["type"] as? String == "tool_result" }) {
                toolResult = (r["content"] as? String) ?? ((r["content"] as? [[String: Any]])?.first?["text"] as? String)
            }
        }
        let cap = (json["max_completion_tokens"] as? Int) ?? (json["max_tokens"] as? Int)
        let count = behavior.endless ? 1_000_000 : min(behavior.chunks, cap ?? Int.max)
        var pieces = (0..<min(count, 100_000)).map { "tok\($0) " }
        if let toolResult { pieces.insert("tool said: \(toolResult) ", at: 0) }
        let thinks = anthropic ? (json["thinking"] as? [String: Any])?["type"] as? String == "enabled" : json["reasoning_effort"] != nil
        let call = firstTool != nil && toolResult == nil ? (firstTool!, behavior.toolArguments) : nil
        return Plan(
            pieces: call == nil ? pieces : [], toolCall: call, thinking: thinks ? "thinking it over" : nil,
            cut: !behavior.endless && (cap ?? Int.max) < behavior.chunks, promptTokens: behavior.promptEvalCount ?? 26
        )
    }

    /// Writes `events` (each after the behaviour's delay), failing or dropping after `k` content pieces as told.
    func streamed(_ contentType: String, head: [String], pieces: [String], tail: [String], errorEvent: String) -> Response {
        let behavior = mock.behavior, mock = self.mock
        return Response(
            status: .ok, headers: [.contentType: contentType],
            body: ResponseBody { writer in
                do {
                    for h in head {
                        mock.recordSent(ByteBuffer(string: h))
                        try await writer.write(ByteBuffer(string: h))
                    }
                    for (k, piece) in pieces.enumerated() {
                        if behavior.chunkDelay > .zero { try await Task.sleep(for: behavior.chunkDelay) }
                        if let e = behavior.errorLineAfterChunk, k == e {
                            try await writer.write(ByteBuffer(string: errorEvent))
                            try await writer.finish(nil)
                            mock.markCompleted()
                            return
                        }
                        if let d = behavior.dropAfterChunk, k == d { throw MockOllama.MockError.dropped }
                        if let h = behavior.holdAfterChunk, k == h { await mock.waitForRelease(atLeast: 1) }
                        mock.recordSent(ByteBuffer(string: piece))
                        try await writer.write(ByteBuffer(string: piece))
                    }
                    for t in tail {
                        mock.recordSent(ByteBuffer(string: t))
                        try await writer.write(ByteBuffer(string: t))
                    }
                    try await writer.finish(nil)
                    mock.markCompleted()
                } catch MockOllama.MockError.dropped {
                    throw MockOllama.MockError.dropped
                } catch {
                    mock.markCancelled()
                    throw error
                }
            }
        )
    }

    func cloudAnswer(path: String, json: [String: Any], model: String, behavior: MockOllama.Behavior) -> Response? {
        switch path {
        case "/v1/models":
            return Self.json(["object": "list", "data": behavior.remoteModels.map { ["id": $0, "object": "model", "created": 1_700_000_000, "owned_by": "mock"] }])
        case "/v1/embeddings":
            let inputs = (json["input"] as? [Any])?.count ?? 1
            return Self.json([
                "object": "list", "model": model,
                "data": (0..<inputs).map { ["object": "embedding", "index": $0, "embedding": [0.1, -0.2, 0.3]] as [String: Any] },
                "usage": ["prompt_tokens": behavior.promptEvalCount ?? 0, "total_tokens": behavior.promptEvalCount ?? 0],
            ])
        case "/v1/chat/completions", "/v1/completions":
            return openAIChat(json: json, model: model, behavior: behavior, completion: path == "/v1/completions")
        case "/v1/messages/count_tokens":
            return Self.json(["input_tokens": (behavior.promptEvalCount ?? 26) + 1000])
        case "/v1/messages":
            return anthropicMessages(json: json, model: model, behavior: behavior)
        default:
            return nil
        }
    }

    func openAIChat(json: [String: Any], model: String, behavior: MockOllama.Behavior, completion: Bool) -> Response {
        let plan = Self.plan(json: json, behavior: behavior, anthropic: false)
        let completionTokens = plan.toolCall == nil ? plan.pieces.count : 1
        var usage: [String: Any] = ["prompt_tokens": plan.promptTokens, "completion_tokens": completionTokens, "total_tokens": plan.promptTokens + completionTokens]
        if let cost = behavior.reportedCost { usage["cost"] = cost }
        let finish = plan.toolCall != nil ? "tool_calls" : plan.cut ? "length" : "stop"
        let callID = "call_mock_\(mock.hitCount)"
        if (json["stream"] as? Bool) != true {
            mock.markCompleted()
            if completion {
                return Self.json(["id": "cmpl-mock", "object": "text_completion", "model": model, "choices": [["index": 0, "text": plan.pieces.joined(), "finish_reason": finish]], "usage": usage])
            }
            var message: [String: Any] = ["role": "assistant", "content": plan.toolCall == nil ? plan.pieces.joined() : NSNull()]
            if let t = plan.thinking { message["reasoning_content"] = t }
            if let call = plan.toolCall {
                message["tool_calls"] = [["id": callID, "type": "function", "function": ["name": call.name, "arguments": call.arguments]]]
            }
            return Self.json([
                "id": "chatcmpl-mock", "object": "chat.completion", "created": 1_700_000_000, "model": model,
                "choices": [["index": 0, "message": message, "finish_reason": finish]], "usage": usage,
            ])
        }
        func chunk(_ delta: [String: Any], finish: String? = nil) -> String {
            let choice: [String: Any] = completion
                ? ["index": 0, "text": delta["content"] ?? "", "finish_reason": finish ?? NSNull()]
                : ["index": 0, "delta": delta, "finish_reason": finish ?? NSNull()]
            return "data: " + Self.data(["id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": model, "choices": [choice]]) + "\n\n"
        }
        var head = [chunk(["role": "assistant", "content": ""])]
        if let t = plan.thinking { head.append(chunk(["reasoning_content": t])) }
        var pieces = plan.pieces.map { chunk(["content": $0]) }
        if let call = plan.toolCall {
            // The arguments in two fragments, as OpenAI streams them.
            let half = call.arguments.index(call.arguments.startIndex, offsetBy: call.arguments.count / 2)
            pieces = [
                chunk(["tool_calls": [["index": 0, "id": callID, "type": "function", "function": ["name": call.name, "arguments": ""]]]]),
                chunk(["tool_calls": [["index": 0, "function": ["arguments": String(call.arguments[..<half])]]]]),
                chunk(["tool_calls": [["index": 0, "function": ["arguments": String(call.arguments[half...])]]]]),
            ]
        }
        var tail = [chunk([:], finish: finish)]
        if ((json["stream_options"] as? [String: Any])?["include_usage"] as? Bool) == true {
            tail.append("data: " + Self.data(["id": "chatcmpl-mock", "object": "chat.completion.chunk", "model": model, "choices": [Any](), "usage": usage]) + "\n\n")
        }
        tail.append("data: [DONE]\n\n")
        return streamed(
            "text/event-stream", head: head, pieces: pieces, tail: tail,
            errorEvent: "data: " + Self.data(["error": ["message": "mock model crashed", "type": "server_error"]]) + "\n\n"
        )
    }

    func anthropicMessages(json: [String: Any], model: String, behavior: MockOllama.Behavior) -> Response {
        var plan = Self.plan(json: json, behavior: behavior, anthropic: true)
        // A stop sequence ends the text before it, and the answer names it.
        let stopSequences = json["stop_sequences"] as? [String] ?? []
        var matched: String?
        if let at = plan.pieces.firstIndex(where: { piece in stopSequences.contains { piece.contains($0) } }) {
            matched = stopSequences.first { plan.pieces[at].contains($0) }
            plan.pieces = Array(plan.pieces[..<at])
        }
        let output = plan.toolCall == nil ? plan.pieces.count : 1
        let stop = plan.toolCall != nil ? "tool_use" : matched != nil ? "stop_sequence" : plan.cut ? "max_tokens" : "end_turn"
        let stopSequence: Any = matched ?? NSNull()
        let toolID = "toolu_mock_\(mock.hitCount)"
        if (json["stream"] as? Bool) != true {
            mock.markCompleted()
            var content: [[String: Any]] = []
            if let t = plan.thinking { content.append(["type": "thinking", "thinking": t, "signature": "sig"]) }
            if let call = plan.toolCall {
                let input = (try? JSONSerialization.jsonObject(with: Data(call.arguments.utf8))) ?? [String: Any]()
                content.append(["type": "tool_use", "id": toolID, "name": call.name, "input": input])
            } else {
                content.append(["type": "text", "text": plan.pieces.joined()])
            }
            return Self.json([
                "id": "msg_mock", "type": "message", "role": "assistant", "model": model, "content": content, "stop_reason": stop,
                "stop_sequence": stopSequence, "usage": ["input_tokens": plan.promptTokens, "output_tokens": output],
            ])
        }
        func event(_ type: String, _ data: [String: Any]) -> String {
            var d = data
            d["type"] = type
            return "event: \(type)\ndata: \(Self.data(d))\n\n"
        }
        var head = [
            event("message_start", ["message": ["id": "msg_mock", "type": "message", "role": "assistant", "model": model, "content": [Any](), "usage": ["input_tokens": plan.promptTokens, "output_tokens": 1]]]),
            event("ping", [:]),
        ]
        var index = 0
        if let t = plan.thinking {
            head += [
                event("content_block_start", ["index": 0, "content_block": ["type": "thinking", "thinking": ""]]),
                event("content_block_delta", ["index": 0, "delta": ["type": "thinking_delta", "thinking": t]]),
                event("content_block_delta", ["index": 0, "delta": ["type": "signature_delta", "signature": "sig"]]),
                event("content_block_stop", ["index": 0]),
            ]
            index = 1
        }
        var pieces: [String]
        var tail: [String]
        if let call = plan.toolCall {
            let half = call.arguments.index(call.arguments.startIndex, offsetBy: call.arguments.count / 2)
            head.append(event("content_block_start", ["index": index, "content_block": ["type": "tool_use", "id": toolID, "name": call.name, "input": [String: Any]()]]))
            pieces = [
                event("content_block_delta", ["index": index, "delta": ["type": "input_json_delta", "partial_json": String(call.arguments[..<half])]]),
                event("content_block_delta", ["index": index, "delta": ["type": "input_json_delta", "partial_json": String(call.arguments[half...])]]),
            ]
        } else {
            head.append(event("content_block_start", ["index": index, "content_block": ["type": "text", "text": ""]]))
            pieces = plan.pieces.map { event("content_block_delta", ["index": index, "delta": ["type": "text_delta", "text": $0]]) }
        }
        tail = [
            event("content_block_stop", ["index": index]),
            event("message_delta", ["delta": ["stop_reason": stop, "stop_sequence": stopSequence], "usage": ["output_tokens": output]]),
            event("message_stop", [:]),
        ]
        return streamed(
            "text/event-stream", head: head, pieces: pieces, tail: tail,
            errorEvent: event("error", ["error": ["type": "overloaded_error", "message": "mock model crashed"]])
        )
    }
}
