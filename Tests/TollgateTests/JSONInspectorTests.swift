import Testing
import TollgateCore

@Suite struct JSONInspectorTests {
    let inspector = JSONInspector(limits: .init(maxDepth: 8))

    func inspect(_ text: String) throws(JSONInspector.Failure) -> JSONInspector.Document {
        try inspector.inspect(Array(text.utf8))
    }

    @Test func extractsTopLevelFields() throws {
        let doc = try inspect(#"{"model":"llama3.2","stream":false,"messages":[{"role":"user","content":"hello there"}],"options":{"num_ctx":4096}}"#)
        #expect(doc.string("model") == "llama3.2")
        #expect(doc.bool("stream") == false)
        #expect(doc.fields["messages"]?.kind == .array)
        #expect(doc.fields["options"]?.kind == .object)
        #expect(doc.promptTextBytes == "hello there".utf8.count)
    }

    @Test func unescapesStrings() throws {
        let doc = try inspect(#"{"model":"a\"b\\c\u00e9\ud83d\ude00\n"}"#)
        #expect(doc.string("model") == "a\"b\\cé😀\n")
    }

    @Test func countsPromptTextInArraysAndNestedKeys() throws {
        let doc = try inspect(#"{"model":"m","input":["abcd","efgh"],"system":"xy","images":["AAAAAAAAAAAAAAAA"]}"#)
        #expect(doc.promptTextBytes == 10)
    }

    @Test(arguments: [
        "", "   ", "{", #"{"model":}"#, #"{"model":"x",}"#, #"{"model":"x""#, #"{"a":tru}"#, #"{"a":01}"#, #"{"a":1.}"#,
        #"{"a":-}"#, #"{"a":"\x"}"#, #"{"a":"\u12"}"#, "{\"a\":\"\u{01}\"}", #"{"a":1} x"#, #"{'a':1}"#, #"{"a" 1}"#,
        #"{"a":[1,]}"#, #"{"a":[1 2]}"#, #"{"a":1e}"#,
    ])
    func rejectsMalformed(_ text: String) {
        #expect(throws: JSONInspector.Failure.self) { try inspect(text) }
    }

    @Test func rejectsInvalidUTF8() {
        var bytes = Array(#"{"model":""#.utf8)
        bytes += [0xC3, 0x28]  // invalid continuation
        bytes += Array(#""}"#.utf8)
        #expect(throws: JSONInspector.Failure.self) { try inspector.inspect(bytes) }
        var overlong = Array(#"{"model":""#.utf8)
        overlong += [0xC0, 0xAF]
        overlong += Array(#""}"#.utf8)
        #expect(throws: JSONInspector.Failure.self) { try inspector.inspect(overlong) }
        var truncated = Array(#"{"model":""#.utf8)
        truncated += [0xE2, 0x82]
        #expect(throws: JSONInspector.Failure.self) { try inspector.inspect(truncated) }
    }

    @Test func acceptsValidMultibyteUTF8() throws {
        let doc = try inspect(#"{"model":"模型-ü-😀"}"#)
        #expect(doc.string("model") == "模型-ü-😀")
    }

    @Test func enforcesDepth() throws {
        let ok = "{\"a\":" + String(repeating: "[", count: 7) + String(repeating: "]", count: 7) + "}"
        _ = try inspect(ok)
        let deep = "{\"a\":" + String(repeating: "[", count: 8) + String(repeating: "]", count: 8) + "}"
        #expect(throws: JSONInspector.Failure.tooDeep(limit: 8)) { try inspect(deep) }
        let hostile = "{\"tools\":" + String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000) + "}"
        #expect(throws: JSONInspector.Failure.tooDeep(limit: 8)) { try inspect(hostile) }
    }

    /// Numbers no server can hold (Go refuses them, Python makes them infinite) are refused; large
    /// but finite ones pass.
    @Test func refusesNumbersOutOfRange() throws {
        for ok in ["1e308", "-1.5e-400", "123456789012345678901234567890", "0.000001"] { _ = try inspect(#"{"n":\#(ok)}"#) }
        for bad in ["1e999", "-1E+400", String(repeating: "9", count: 400), #"[1,2,1e999]"#] {
            #expect(throws: (any Error).self, "\(bad.prefix(20))") { try inspect(#"{"n":\#(bad)}"#) }
        }
    }

    @Test func requiresObjectAndUniqueTopLevelKeys() {
        #expect(throws: JSONInspector.Failure.notAnObject) { try inspect("[1,2]") }
        #expect(throws: JSONInspector.Failure.notAnObject) { try inspect("\"model\"") }
        #expect(throws: JSONInspector.Failure.duplicateKey("model")) { try inspect(#"{"model":"a","model":"b"}"#) }
    }

    @Test func toleratesNullsAndNumbers() throws {
        let doc = try inspect(#"{"model":"m","options":{"temperature":null,"seed":-1.5e3,"big":1e300},"stream":null}"#)
        #expect(doc.fields["stream"]?.kind == .null)
        #expect(doc.bool("stream") == nil)
    }
}
