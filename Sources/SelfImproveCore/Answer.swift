/// What kind of answer a task expects; decides how free text is normalised.
public enum AnswerKind: String, Sendable, Hashable, Codable, CaseIterable {
    /// A number: `1,200`, `$7.00`, `3/4`, `-2.5 kg` (GSM8K-like).
    case number
    /// A choice letter `A`...`Z` (OpenBookQA-like).
    case choice
    /// `yes`, `no` or `neutral` (ANLI-like; `entailment`/`contradiction` map to yes/no).
    case label
    /// Any other text, compared after trimming, lower-casing and collapsing spaces.
    case text
}

/// A normalised answer: two answers are the same vote exactly when they are equal.
public struct Answer: Sendable, Hashable, Codable, Comparable, CustomStringConvertible {
    public var kind: AnswerKind
    /// The canonical text: `"7"`, `"0.5"`, `"1/3"`, `"B"`, `"yes"`, `"paris"`.
    public var canonical: String

    public init(kind: AnswerKind, canonical: String) {
        self.kind = kind
        self.canonical = canonical
    }

    /// Normalises free text as an answer of `kind`; nil if it holds none.
    public init?(parsing text: String, as kind: AnswerKind) {
        guard let canonical = AnswerNormalizer.canonical(text, as: kind) else { return nil }
        self.init(kind: kind, canonical: canonical)
    }

    public var description: String { canonical }

    public static func < (lhs: Answer, rhs: Answer) -> Bool {
        (lhs.kind.rawValue, lhs.canonical) < (rhs.kind.rawValue, rhs.canonical)
    }
}
