/// Held-out questions whose majority answer changed correctness between the model in force and
/// a candidate. TTRL-Guard (iteration.md) found right→wrong flips to be the early warning of
/// collapse under majority-vote training: a majority locked on a wrong answer never recovers.
public struct MajorityFlips: Sendable, Hashable, Codable {
    /// Labelled questions evaluated for both models.
    public var paired: Int
    /// Of those, the ones the model in force had right.
    public var rightBefore: Int
    public var rightToWrong: Int
    public var wrongToRight: Int

    public init(paired: Int, rightBefore: Int, rightToWrong: Int, wrongToRight: Int) {
        self.paired = paired
        self.rightBefore = rightBefore
        self.rightToWrong = rightToWrong
        self.wrongToRight = wrongToRight
    }

    /// Compares the majority of each labelled question present in both evaluations.
    public init(before: RoundEvaluation, after: RoundEvaluation) {
        let earlier = Dictionary(before.outcomes.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        var paired = 0, rightBefore = 0, rightToWrong = 0, wrongToRight = 0
        for outcome in after.outcomes {
            guard let now = outcome.majorityCorrect, let then = earlier[outcome.id]?.majorityCorrect else { continue }
            paired += 1
            if then { rightBefore += 1 }
            if then, !now { rightToWrong += 1 }
            if !then, now { wrongToRight += 1 }
        }
        self.init(paired: paired, rightBefore: rightBefore, rightToWrong: rightToWrong, wrongToRight: wrongToRight)
    }

    /// Right→wrong flips as a share of the questions the model in force had right (0 when it
    /// had none).
    public var rightToWrongShare: Double { rightBefore > 0 ? Double(rightToWrong) / Double(rightBefore) : 0 }

    enum CodingKeys: String, CodingKey {
        case paired
        case rightBefore = "right_before"
        case rightToWrong = "right_to_wrong"
        case wrongToRight = "wrong_to_right"
    }
}
