/// The questions a run has seen, for telling a newly written question from one it already has:
/// the same text up to case, spacing and punctuation (``Imagination/normalizedKey(_:)``), or
/// nearly the same, judged by the Jaccard similarity of the two questions' sets of word pairs
/// (bigrams). A question that differs from a held-out one in a single number shares most of
/// its word pairs with it (13 of 17 in a one-step problem, 0.76) and counts as a near duplicate
/// at the default threshold of 0.7: held-out sets stay held out.
public struct QuestionIndex: Sendable {
    /// Which group of the index a match came from (`held_out`, `pool`, `imagined`, ...).
    public struct Match: Sendable, Hashable {
        public var group: String
        /// The question matched.
        public var question: String
        /// 1 for an exact duplicate, else the bigram Jaccard similarity.
        public var similarity: Double
        public var isExact: Bool { similarity >= 1 }
    }

    /// At or above this similarity a question is a near duplicate.
    public let threshold: Double
    private var exact: [String: Int] = [:]
    private var entries: [(question: String, group: String, bigrams: Set<String>)] = []
    /// Which entries hold each bigram.
    private var postings: [String: [Int]] = [:]

    public init(threshold: Double) {
        self.threshold = threshold
    }

    /// Questions indexed.
    public var count: Int { entries.count }

    /// Adds `question` under `group`.
    public mutating func insert(_ question: String, group: String) {
        let key = Imagination.normalizedKey(question)
        if exact[key] != nil { return }
        let index = entries.count
        let bigrams = Self.bigrams(key)
        entries.append((question, group, bigrams))
        exact[key] = index
        for bigram in bigrams { postings[bigram, default: []].append(index) }
    }

    /// The closest indexed question at or above the threshold (an exact one first), if any.
    public func match(_ question: String) -> Match? {
        let key = Imagination.normalizedKey(question)
        if let index = exact[key] {
            return Match(group: entries[index].group, question: entries[index].question, similarity: 1)
        }
        let bigrams = Self.bigrams(key)
        guard !bigrams.isEmpty else { return nil }
        var shared: [Int: Int] = [:]
        for bigram in bigrams {
            for index in postings[bigram] ?? [] { shared[index, default: 0] += 1 }
        }
        var best: Match?
        for (index, common) in shared {
            let union = bigrams.count + entries[index].bigrams.count - common
            let similarity = Double(common) / Double(union)
            if similarity >= threshold, similarity > (best?.similarity ?? 0) {
                best = Match(group: entries[index].group, question: entries[index].question, similarity: similarity)
            }
        }
        return best
    }

    /// The word pairs of a normalized question (a one-word question: the word itself).
    static func bigrams(_ key: String) -> Set<String> {
        let words = key.split(separator: " ")
        guard words.count > 1 else { return Set(words.map(String.init)) }
        return Set((1 ..< words.count).map { words[$0 - 1] + " " + words[$0] })
    }
}
