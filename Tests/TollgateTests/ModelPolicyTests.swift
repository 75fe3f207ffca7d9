import Foundation
import Testing
import TollgateCore

@Suite struct ModelPolicyTests {
    @Test func openPolicyPassesTheRequestedModel() {
        #expect(ModelPolicy().resolve(requested: "llama3.2") == .use(model: "llama3.2", rewritten: false))
        #expect(ModelPolicy().resolve(requested: nil) == .missing)
        #expect(ModelPolicy().resolve(requested: "") == .missing)
        #expect(ModelPolicy(defaultModel: "qwen3").resolve(requested: nil) == .use(model: "qwen3", rewritten: true))
    }

    @Test func aliasesAndTags() {
        let policy = ModelPolicy(aliases: ["llama": "llama3.2:3b", "fast:latest": "qwen3:0.6b"])
        #expect(policy.resolve(requested: "llama") == .use(model: "llama3.2:3b", rewritten: true))
        #expect(policy.resolve(requested: "fast") == .use(model: "qwen3:0.6b", rewritten: true))
        #expect(ModelPolicy.sameModel("llama3.2", "llama3.2:latest"))
        #expect(!ModelPolicy.sameModel("llama3.2", "llama3.2:3b"))
        #expect(ModelPolicy.normalized("hf.co/org/model") == "hf.co/org/model:latest")
        #expect(ModelPolicy.normalized("registry:5000/org/model:q4") == "registry:5000/org/model:q4")
    }

    @Test func allowListWithExactNamesAndPrefixes() {
        let policy = ModelPolicy(aliases: ["big": "llama3.3:70b"], allowed: ModelPattern.list("llama3.2, qwen*"))
        #expect(policy.resolve(requested: "llama3.2:latest") == .use(model: "llama3.2:latest", rewritten: false))
        #expect(policy.resolve(requested: "qwen3:8b") == .use(model: "qwen3:8b", rewritten: false))
        #expect(policy.resolve(requested: "llama3.2:1b") == .denied(model: "llama3.2:1b", allowed: ["llama3.2", "qwen*"]))
        // An alias cannot smuggle in a model the key may not use.
        #expect(policy.resolve(requested: "big") == .denied(model: "llama3.3:70b", allowed: ["llama3.2", "qwen*"]))
        #expect(ModelPattern.list(" a ,, b* ,") == [ModelPattern("a"), ModelPattern("b*")])
    }

    @Test func theModelLockReplacesEveryModel() {
        let policy = ModelPolicy(forceModel: "llama3.2:3b", defaultModel: "x", aliases: ["a": "b"], allowed: [ModelPattern("qwen*")])
        #expect(policy.resolve(requested: "gpt-4o") == .use(model: "llama3.2:3b", rewritten: true))
        #expect(policy.resolve(requested: nil) == .use(model: "llama3.2:3b", rewritten: true))
        #expect(policy.resolve(requested: "llama3.2:3b") == .use(model: "llama3.2:3b", rewritten: false))
    }
}

@Suite struct RequestRewriterTests {
    func document(_ text: String) throws -> JSONInspector.Document {
        try JSONInspector().inspect(Array(text.utf8))
    }

    @Test func unchangedBodyIsReturnedAsSent() throws {
        let text = #"{ "model" : "m",  "messages":[{"role":"user","content":"é"}] }"#
        let rewriter = RequestRewriter(try document(text))
        #expect(rewriter.isEmpty)
        #expect(rewriter.body() == Array(text.utf8))
    }

    @Test func replacesTheModelAndKeepsEveryOtherByte() throws {
        let text = #"{"messages":[{"role":"user","content":"a \"quoted\" \u00e9"}], "model" : "gpt-4o" ,"stream":true}"#
        var rewriter = RequestRewriter(try document(text))
        rewriter.setString("model", "llama3.2:3b")
        let out = String(decoding: rewriter.body(), as: UTF8.self)
        #expect(out == #"{"messages":[{"role":"user","content":"a \"quoted\" \u00e9"}], "model" : "llama3.2:3b" ,"stream":true}"#)
        #expect(try document(out).string("model") == "llama3.2:3b")
    }

    @Test func insertsMissingKeysAndOptions() throws {
        var rewriter = RequestRewriter(try document(#"{"prompt":"hi"}"#))
        rewriter.setString("model", "m")
        try rewriter.editOptions { if $0["num_predict"] == nil { $0.update("num_predict", .number(256)) } }
        let out = try document(String(decoding: rewriter.body(), as: UTF8.self))
        #expect(out.string("model") == "m")
        #expect(out.string("prompt") == "hi")
        let options = try JSONSerialization.jsonObject(with: Data(out.raw("options")!)) as? [String: Any]
        #expect(options?["num_predict"] as? Int == 256)

        var empty = RequestRewriter(try document("{ }"))
        empty.setString("model", "m")
        #expect(String(decoding: empty.body(), as: UTF8.self) == #"{ "model":"m"}"#)
    }

    @Test func editsExistingOptionsOnlyWhenTheyChange() throws {
        let text = #"{"model":"m","options":{"temperature":null,"num_ctx":1000000,"seed":7}}"#
        var same = RequestRewriter(try document(text))
        try same.editOptions { _ in }
        #expect(same.body() == Array(text.utf8))

        var clamped = RequestRewriter(try document(text))
        try clamped.editOptions { options in
            if let ctx = options["num_ctx"]?.intValue, ctx > 8192 { options.update("num_ctx", .number(8192)) }
            options.update("num_predict", .number(512))
        }
        let out = try document(String(decoding: clamped.body(), as: UTF8.self))
        let options = try JSONSerialization.jsonObject(with: Data(out.raw("options")!)) as? [String: Any]
        #expect(options?["num_ctx"] as? Int == 8192)
        #expect(options?["num_predict"] as? Int == 512)
        #expect(options?["seed"] as? Int == 7)
        #expect(options?["temperature"] is NSNull)
        #expect(out.string("model") == "m")
        // Only the changed values differ: the client's keys keep their order and spelling.
        #expect(String(decoding: out.raw("options")!, as: UTF8.self) == #"{"temperature":null,"num_ctx":8192,"seed":7,"num_predict":512}"#)
    }
}
