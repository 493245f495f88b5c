/// The outcome of a self-consistency vote over the m paths of one question.
public struct Vote: Sendable, Hashable, Codable {
    /// The most frequent answer; nil when no path gave one.
    public var majority: Answer?
    /// Votes per answer (paths without an answer are not counted here).
    public var counts: [Answer: Double]
    /// Paths voted over, answered or not (m).
    public var pathCount: Int
    /// Paths that gave an answer.
    public var answeredCount: Int
    /// Votes for the majority divided by m (with weights: by the total weight of all paths).
    public var confidence: Double
    /// Indices of the paths whose answer is the majority (LMSI keeps exactly these).
    public var majorityPaths: [Int]
    /// Whether the vote clears the threshold it was taken with (always true without one).
    public var accepted: Bool

    public init(majority: Answer?, counts: [Answer: Double], pathCount: Int, answeredCount: Int, confidence: Double,
                majorityPaths: [Int], accepted: Bool) {
        self.majority = majority
        self.counts = counts
        self.pathCount = pathCount
        self.answeredCount = answeredCount
        self.confidence = confidence
        self.majorityPaths = majorityPaths
        self.accepted = accepted
    }
}

/// Self-consistency voting (Wang et al.; LMSI's step 3).
///
/// Ties are broken deterministically and independently of path order: among the answers with
/// the most votes, the smallest by (kind, canonical text) wins. This keeps a vote a pure
/// function of the multiset of answers, which the order in which paths arrive from samplers
/// must not change.
public enum SelfConsistency {
    /// Majority vote with one vote per answered path.
    /// - Parameters:
    ///   - answers: One entry per path, nil where the path gave no answer.
    ///   - threshold: Minimum confidence to accept; nil accepts every vote with a majority
    ///     (the paper keeps all majority paths without a threshold).
    public static func vote(_ answers: [Answer?], threshold: Double? = nil) -> Vote {
        weightedVote(answers, weights: Array(repeating: 1, count: answers.count), threshold: threshold)
    }

    /// Majority vote where each path's vote counts `weights[i]` (a verifier score or a
    /// probability; negative, non-finite and missing weights count as zero). Confidence is the
    /// majority's weight over the weight of all paths.
    public static func weightedVote(_ answers: [Answer?], weights: [Double], threshold: Double? = nil) -> Vote {
        var counts: [Answer: Double] = [:]
        var total = 0.0
        var answered = 0
        for (index, answer) in answers.enumerated() {
            let raw = index < weights.count ? weights[index] : 0
            let weight = raw.isFinite ? max(0, raw) : 0
            total += weight
            guard let answer else { continue }
            answered += 1
            counts[answer, default: 0] += weight
        }
        let majority = counts.max { lhs, rhs in
            lhs.value != rhs.value ? lhs.value < rhs.value : lhs.key > rhs.key
        }?.key
        let majorityWeight = majority.flatMap { counts[$0] } ?? 0
        let confidence = total > 0 ? majorityWeight / total : 0
        let paths = majority.map { winner in answers.indices.filter { answers[$0] == winner } } ?? []
        let accepted = majority != nil && (threshold.map { confidence >= $0 } ?? true)
        return Vote(majority: majority, counts: counts, pathCount: answers.count, answeredCount: answered,
                    confidence: confidence, majorityPaths: paths, accepted: accepted)
    }
}
