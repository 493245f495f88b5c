/// Decides whether a trained candidate replaces the current model: only when it is better on
/// the held-out evaluation set by a margin, judged with a paired interval over questions.
/// Published label-free self-training rises and then collapses; this gate is what makes it
/// safe to leave rounds running.
public struct PromotionGate: Sendable, Hashable, Codable {
    /// The per-question quantity compared.
    public enum Metric: String, Sendable, Hashable, Codable, CaseIterable {
        /// Fraction of a question's m paths that are right (needs labels). The default: the
        /// literal first path is far too noisy to judge a round on a hundred questions.
        case passAt1 = "pass_at_1"
        /// Whether the majority is right (needs labels).
        case majorityAtM = "maj_at_m"
        /// The vote's confidence (label-free; rewards sharpening as much as learning, so use
        /// it only where the evaluation set has no labels).
        case agreement
    }

    public var metric: Metric = .passAt1
    /// The lower end of the paired 95% interval of (candidate - current) must exceed this.
    public var minGain: Double = 0
    /// Refuse a candidate whose pass@m falls by more than this (sharpening into consistent
    /// wrong answers shows first as a falling pass@m); nil: not checked.
    public var maxPassAtMDrop: Double?
    /// Bootstrap resamples for the paired interval.
    public var resamples: Int = 2000
    public var seed: UInt64 = 2026

    public init() {}

    /// What the gate decided, and why.
    public struct Decision: Sendable, Hashable, Codable {
        public var promoted: Bool
        /// candidate - current for the gate's metric, with its paired 95% interval.
        public var difference: Estimate?
        /// Questions compared (those present in both evaluations).
        public var pairedQuestions: Int
        public var reason: String
    }

    /// Compares two evaluations of the same question set.
    public func decide(current: RoundEvaluation, candidate: RoundEvaluation) -> Decision {
        let currentByID = Dictionary(current.outcomes.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        var pairs: [(QuestionOutcome, QuestionOutcome)] = []
        for outcome in candidate.outcomes {
            guard let before = currentByID[outcome.id] else { continue }
            if metric != .agreement, !(outcome.isLabelled && before.isLabelled) { continue }
            pairs.append((before, outcome))
        }
        guard !pairs.isEmpty else {
            return Decision(promoted: false, difference: nil, pairedQuestions: 0,
                            reason: metric == .agreement ? "no question was evaluated for both models"
                                : "no labelled question was evaluated for both models (metric \(metric.rawValue) needs gold answers; use metric: agreement for unlabelled sets)")
        }
        let value: (QuestionOutcome) -> Double
        switch metric {
        case .passAt1: value = { $0.pathAccuracy }
        case .majorityAtM: value = { $0.majorityCorrect == true ? 1 : 0 }
        case .agreement: value = { $0.confidence }
        }
        guard let difference = PairedBootstrap.difference(baseline: pairs.map { value($0.0) }, candidate: pairs.map { value($0.1) },
                                                          resamples: resamples, seed: seed)
        else {
            return Decision(promoted: false, difference: nil, pairedQuestions: 0, reason: "nothing to compare")
        }
        let interval = "\(metric.rawValue) \(difference.pointsDescription) points over \(pairs.count) questions"
        if let drop = maxPassAtMDrop, candidate.labelled > 0, current.labelled > 0,
           candidate.passAtM.mean < current.passAtM.mean - drop
        {
            return Decision(promoted: false, difference: difference, pairedQuestions: pairs.count,
                            reason: "pass@m fell from \(current.passAtM.mean) to \(candidate.passAtM.mean), more than max_pass_at_m_drop \(drop) (\(interval))")
        }
        guard difference.lower > minGain else {
            return Decision(promoted: false, difference: difference, pairedQuestions: pairs.count,
                            reason: "not better by the margin: the interval's lower end is not above \(Estimate(mean: minGain, lower: minGain, upper: minGain).pointsDescription.prefix { $0 != " " }) points (\(interval))")
        }
        return Decision(promoted: true, difference: difference, pairedQuestions: pairs.count, reason: "better: \(interval)")
    }

    enum CodingKeys: String, CodingKey {
        case metric, resamples, seed
        case minGain = "min_gain"
        case maxPassAtMDrop = "max_pass_at_m_drop"
    }
}
