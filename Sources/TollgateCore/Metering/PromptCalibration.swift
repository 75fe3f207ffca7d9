import Foundation

/// Learns, per provider and model, how the prompt tokens a provider reports compare with the
/// gateway's estimate, so that a request cut before the provider reported its usage is charged
/// about what it would have been charged had it completed — not every byte of 30 KB of tool
/// definitions a chat template drops, and not only the words of the last message either.
///
/// A ratio per part of the estimate (``PromptEstimate``), each per size bucket, since a short
/// prompt carries the template's fixed overhead and a long one does not:
/// - **text** (conversation and system prompt), learned from requests without tools or images;
/// - **tools**, learned from what is left of the reported count once the text's share is taken
///   out (a template that drops the tools leaves almost nothing);
/// - **images**, per image, learned the same way from requests with images and no tools.
///
/// When the text alone is more than the provider reported, the text was over-counted: that request
/// teaches the text ratio (same tokenizer, with tools or without) and the tools almost nothing. An
/// empty bucket borrows from an adjacent one only, never from far away; with nothing learned the
/// raw estimate stands.
///
/// Each cell holds a decayed geometric mean of ratios (0.5× and 2× balance). Its sums are kept scaled
/// by 2^(t/halfLife) from a fixed epoch, so that a sample is two numbers to add: instances share cells
/// through the store by adding their own samples, in any order, without reading first.
public struct PromptCalibration: Sendable {
    /// Whose counts a cell learns: one provider's model.
    public struct Subject: Hashable, Sendable {
        public let provider: String
        public let model: String
        public init(provider: String, model: String) {
            self.provider = provider
            self.model = model
        }
    }

    /// A cell of a subject: `text.3`, `tools.4`, `image`. A part and a bucket rather than text, so
    /// that looking cells up on every request allocates nothing.
    public struct Cell: Hashable, Sendable {
        public enum Part: String, Sendable { case text, tools, image }
        public let part: Part
        let bucket: Int8

        init(_ part: Part, _ bucket: Int = 0) {
            self.part = part
            self.bucket = Int8(bucket)
        }

        /// The name the store keeps it under.
        public var name: String { part == .image ? "image" : "\(part.rawValue).\(bucket)" }

        public init?(name: String) {
            let pieces = name.split(separator: ".", omittingEmptySubsequences: false)
            guard let part = Part(rawValue: String(pieces[0])) else { return nil }
            switch (part, pieces.count) {
            case (.image, 1): self.init(.image)
            case (.text, 2), (.tools, 2):
                guard let bucket = Int8(pieces[1]), (0...6).contains(bucket) else { return nil }
                self.init(part, Int(bucket))
            default: return nil
            }
        }
    }

    /// The scaled weight and weighted sum of log-ratios of a cell.
    public struct Sums: Sendable, Equatable {
        public var weight: Double
        public var logSum: Double
        public init(weight: Double, logSum: Double) {
            self.weight = weight
            self.logSum = logSum
        }
        public static let zero = Sums(weight: 0, logSum: 0)
        public static func + (a: Sums, b: Sums) -> Sums { Sums(weight: a.weight + b.weight, logSum: a.logSum + b.logSum) }
    }

    public typealias Cells = [Subject: [Cell: Sums]]

    /// 2026-01-01T00:00:00Z: where the scale is 1. With a week's half-life the sums stay within a
    /// double's range for about 20,000 years.
    public static let epoch: Double = 1_767_225_600
    /// A cell is used once its decayed weight is at least this: one sample within one half-life.
    public static let trusted = 0.5

    public private(set) var cells: Cells
    /// Seconds after which a sample counts half.
    public let halfLife: Double

    public init(cells: Cells = [:], halfLife: Double = 7 * 86_400) {
        self.cells = cells
        self.halfLife = halfLife
    }

    /// Replaces every cell (what the store holds, plus what was not yet written to it).
    public mutating func replace(with cells: Cells) { self.cells = cells }

    /// Adds one set of cells to another.
    public static func merge(_ a: Cells, _ b: Cells) -> Cells {
        a.merging(b) { x, y in x.merging(y, uniquingKeysWith: +) }
    }

    func scale(at now: Double) -> Double { exp2((now - Self.epoch) / halfLife) }

    /// Buckets of tokens: under 64, 256, 1 Ki, 4 Ki, 16 Ki, 64 Ki, and more.
    static func bucket(_ tokens: Int) -> Int {
        var b = 0
        var limit = 64
        while tokens >= limit, b < 6 {
            b += 1
            limit *= 4
        }
        return b
    }

    /// A cell's ratio, when it has seen enough lately.
    static func ratio(_ sums: Sums?, scale: Double) -> Double? {
        guard let sums, sums.weight > 0, sums.weight / scale >= trusted else { return nil }
        return exp(sums.logSum / sums.weight)
    }

    /// What one subject's cells predict, at one moment.
    struct View {
        let cells: [Cell: Sums]
        let scale: Double

        func ratio(_ cell: Cell) -> Double? { PromptCalibration.ratio(cells[cell], scale: scale) }

        /// The ratio of a part for a size: its bucket's, else an adjacent bucket's, else 1.
        func partRatio(_ part: Cell.Part, tokens: Int) -> Double {
            let b = PromptCalibration.bucket(tokens)
            if let r = ratio(Cell(part, b)) { return r }
            if b > 0, let r = ratio(Cell(part, b - 1)) { return r }
            return ratio(Cell(part, b + 1)) ?? 1
        }

        var imageTokens: Double { Double(PromptEstimate.tokensPerImage) * (ratio(Cell(.image)) ?? 1) }

        func textShare(_ e: PromptEstimate) -> Double { Double(e.textTokens) * partRatio(.text, tokens: e.textTokens) }

        /// The calibrated estimate, part by part.
        func byParts(_ e: PromptEstimate) -> Double {
            textShare(e) + Double(e.toolTokens) * partRatio(.tools, tokens: e.toolTokens) + Double(e.images) * imageTokens
        }
    }

    /// The calibrated estimate of a prompt on one provider's model (the raw estimate where nothing is known).
    public func estimate(_ e: PromptEstimate, for subject: Subject, now: Double) -> Int {
        guard e.total > 0 else { return 0 }
        guard let mine = cells[subject] else { return e.total }
        return max(1, Int(View(cells: mine, scale: scale(at: now)).byParts(e).rounded()))
    }

    /// Learns from a request the provider reported `reported` prompt tokens for; returns what was
    /// added to each cell (to be added to the store's cells).
    @discardableResult
    public mutating func observe(_ e: PromptEstimate, reported: Int, for subject: Subject, now: Double) -> [Cell: Sums] {
        guard reported > 0, e.total > 0 else { return [:] }
        let y = Double(reported)
        let scale = scale(at: now)
        var mine = cells[subject] ?? [:]
        var added: [Cell: Sums] = [:]
        func add(_ cell: Cell, _ ratio: Double) {
            // A count far off the estimate (a cached prompt, a broken counter) moves a cell, never overturns it.
            let bounded = min(max(ratio, 1e-4), 1e3)
            let sample = Sums(weight: scale, logSum: scale * log(bounded))
            mine[cell, default: .zero] = mine[cell, default: .zero] + sample
            added[cell, default: .zero] = added[cell, default: .zero] + sample
        }
        let textCell = Cell(.text, Self.bucket(e.textTokens))
        if e.toolTokens == 0, e.images == 0 {
            add(textCell, y / Double(e.textTokens))
        } else {
            // What the text does not explain belongs to the tools (or the images).
            let view = View(cells: mine, scale: scale)
            let rest = y - view.textShare(e) - (e.toolTokens > 0 ? Double(e.images) * view.imageTokens : 0)
            // The text alone is more than was reported: it was over-counted, and the rest is next to nothing.
            if rest < 0, e.textTokens > 0 { add(textCell, y / Double(e.textTokens)) }
            if e.toolTokens > 0 {
                add(Cell(.tools, Self.bucket(e.toolTokens)), max(rest, 0.5) / Double(e.toolTokens))
            } else {
                add(Cell(.image), max(rest, 0.5) / Double(e.images * PromptEstimate.tokensPerImage))
            }
        }
        cells[subject] = mine
        return added
    }
}
