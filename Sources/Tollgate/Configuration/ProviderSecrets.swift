import Crypto
import Foundation

/// Seals provider keys added through the admin API (AES-GCM, with a key derived from the server
/// secret by HKDF), so the database never holds them in clear. A key sealed under another server
/// secret does not open (the provider then runs without its key, and says so).
struct ProviderSecrets: Sendable {
    let key: SymmetricKey

    init(serverSecret: String) {
        key = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: Data(serverSecret.utf8)), info: Data("tollgate provider keys v1".utf8), outputByteCount: 32
        )
    }

    func seal(_ plaintext: String) throws -> String {
        guard let combined = try AES.GCM.seal(Data(plaintext.utf8), using: key).combined else { throw CryptoKitError.incorrectParameterSize }
        return "v1:" + combined.base64EncodedString()
    }

    func open(_ sealed: String) -> String? {
        guard sealed.hasPrefix("v1:"), let data = Data(base64Encoded: String(sealed.dropFirst(3))),
            let box = try? AES.GCM.SealedBox(combined: data), let plain = try? AES.GCM.open(box, using: key)
        else { return nil }
        return String(data: plain, encoding: .utf8)
    }
}
