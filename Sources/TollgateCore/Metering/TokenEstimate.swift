/// Rough token estimates for when an upstream never reports its counts.
public enum TokenEstimate {
    /// About four bytes of English text per token, never less than one token for non-empty text.
    public static func fromTextBytes(_ bytes: Int) -> Int {
        bytes <= 0 ? 0 : max(1, (bytes + 3) / 4)
    }
}
