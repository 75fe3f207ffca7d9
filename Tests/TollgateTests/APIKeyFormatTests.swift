import Testing
import TollgateCore

@Suite struct APIKeyFormatTests {
    @Test func generatedKeysParseBack() {
        for _ in 0..<100 {
            let key = APIKeyFormat.generate()
            #expect(key.plaintext.hasPrefix("tg-"))
            let parsed = APIKeyFormat.parse(key.plaintext[...])
            #expect(parsed == .init(publicID: key.publicID, secret: key.secret))
            #expect(APIKeyFormat.isValidPublicID(key.publicID))
        }
    }

    @Test func keysAreUnique() {
        let keys = Set((0..<1000).map { _ in APIKeyFormat.generate().plaintext })
        #expect(keys.count == 1000)
    }

    @Test(arguments: [
        "", "tg-", "sk-abc", "Bearer tg-abc", "tg-abcdefghij-", "' OR '1'='1",
        "tg-ABCDEFGHIJ-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",  // id alphabet is lower case
        "tg-abcdefghij_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "tg-abcdefghij-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",  // short secret
        "tg-abcdefghij-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\u{0}",
        "tg-abcdefghij-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",  // long secret
    ])
    func rejectsMalformed(_ text: String) {
        #expect(APIKeyFormat.parse(text[...]) == nil)
    }

    @Test func digestDependsOnServerSecretIdAndSecret() {
        let a = KeyHasher(serverSecret: String(repeating: "a", count: 32))
        let b = KeyHasher(serverSecret: String(repeating: "b", count: 32))
        let d = a.digest(publicID: "abcdefghij", secret: "s1")
        #expect(d.count == 64)
        #expect(d == a.digest(publicID: "abcdefghij", secret: "s1"))
        #expect(d != a.digest(publicID: "abcdefghij", secret: "s2"))
        #expect(d != a.digest(publicID: "abcdefghik", secret: "s1"))
        #expect(d != b.digest(publicID: "abcdefghij", secret: "s1"))
        #expect(KeyHasher.constantTimeEquals(d, d))
        #expect(!KeyHasher.constantTimeEquals(d, String(d.dropLast()) + "0") || d.hasSuffix("0"))
        #expect(!KeyHasher.constantTimeEquals(d, ""))
    }
}
