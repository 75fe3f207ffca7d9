import HTTPTypes
import Testing

@testable import Tollgate

@Suite struct OllamaEndpointTests {
    @Test func allowedEndpoints() {
        #expect(OllamaEndpoint.match(method: .post, rawPath: "/api/chat") == .endpoint(.chat))
        #expect(OllamaEndpoint.match(method: .get, rawPath: "/api/tags") == .endpoint(.tags))
        #expect(OllamaEndpoint.match(method: .head, rawPath: "/api/version") == .endpoint(.version))
        #expect(OllamaEndpoint.match(method: .get, rawPath: "/api/chat") == .wrongMethod(allowed: [.post]))
    }

    static let forbidden = [
        "/api/pull", "/api/push", "/api/create", "/api/copy", "/api/delete", "/api/blobs/sha256:abc", "/debug/vars",
        "/api//pull", "/api/pull/", "/API/PULL", "/Api/Chat", "/api/%70ull", "/api/chat/", "//api/chat", "/api/./chat",
        "/v1/../api/pull", "/api/chat;x", "/api/pull;", "/api/chat%2F", "/api/chat/../pull", "/api/me", "/api/status", "",
    ]

    @Test(arguments: forbidden)
    func variantsAreForbidden(_ path: String) {
        #expect(OllamaEndpoint.match(method: .post, rawPath: path[...]) == .forbidden)
    }
}
