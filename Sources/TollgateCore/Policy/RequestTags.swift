/// Attribution tags, as the multi-provider proxy's users know them: an `X-Proxy-Tag` header
/// (comma-separated), a model suffix `model@tag1,tag2`, a key's default tags, and a default tag
/// for requests that carry none.
public enum RequestTags {
    /// Most tags one request carries (the rest are dropped).
    public static let maximum = 16

    /// A tag is 1 to 64 letters, digits, `.`, `_`, `-` or `/`.
    public static func isValid<S: StringProtocol>(_ tag: S) -> Bool {
        !tag.isEmpty && tag.utf8.count <= 64
            && tag.utf8.allSatisfy { b in
                (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x2E || b == 0x5F || b == 0x2D || b == 0x2F
            }
    }

    /// The tags of a header or setting value; nil when one of them is not a valid tag.
    public static func parse(_ text: String) -> [String]? {
        var out: [String] = []
        for part in text.split(separator: ",") {
            let tag = String(part).trimmingSpaces()
            if tag.isEmpty { continue }
            guard isValid(tag) else { return nil }
            out.append(tag)
        }
        return out
    }

    /// `model@a,b` → (`model`, [a, b]). A suffix that is not a list of valid tags is part of the name.
    public static func split(model: String) -> (model: String, tags: [String]) {
        guard let at = model.lastIndex(of: "@"), at != model.startIndex else { return (model, []) }
        let suffix = String(model[model.index(after: at)...])
        guard let tags = parse(suffix), !tags.isEmpty else { return (model, []) }
        return (String(model[..<at]), tags)
    }

    /// Tags in order, without repeats, at most ``maximum``.
    public static func merge(_ lists: [String]...) -> [String] {
        var seen = Set<String>()
        var out: [String] = []
        for list in lists {
            for tag in list where seen.insert(tag).inserted {
                if out.count == maximum { return out }
                out.append(tag)
            }
        }
        return out
    }
}
