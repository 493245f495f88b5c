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
    /// Refuse a candidate whose large-k pass@k (``RoundEvaluation/passAtK``) falls by more
    /// than this below the model in force's, the fall standing out from the noise (the paired
    /// interval over the subset's questions lies below zero): diversity collapsing; nil: not
    /// checked. On a few dozen questions pass@k moves by whole questions, so a mean alone
    /// refused a candidate that had gained 5 points of pass@1 over three questions' pass@16.
    public var maxPassAtKDrop: Double?
    /// Refuse a candidate when more than this share of the held-out questions whose majority
    /// the model in force had right flip to wrong (``MajorityFlips``), and those flips
    /// outnumber the ones from wrong to right; nil: not checked. Re-evaluating the same model
    /// flips majorities near a tie both ways by chance (with m = 8 on 100 questions, a third of
    /// them in the main job's first run), so a share alone cannot tell collapse from noise; a
    /// majority vote that loses more ground than it gains can.
    public var maxRightToWrongShare: Double?
    /// Extra evaluation sets (by name) on which a candidate must not be worse: refused when the
    /// paired interval of its pass@1 difference there lies below zero.
    public var gatedExtraSets: [String] = []
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
        /// The rule that refused the candidate (`min_gain`, `max_pass_at_m_drop`,
        /// `max_pass_at_k_drop`, `max_right_to_wrong_flips`, `extra:NAME`); nil when promoted.
        public var rule: String?
        /// Held-out majorities that flipped against the model in force.
        public var flips: MajorityFlips?
        /// The candidate's pass@1 difference on each extra set, with its paired interval.
        public var extraDifferences: [String: Estimate]?

        public init(promoted: Bool, difference: Estimate?, pairedQuestions: Int, reason: String, rule: String? = nil,
                    flips: MajorityFlips? = nil, extraDifferences: [String: Estimate]? = nil)
        {
            self.promoted = promoted
            self.difference = difference
            self.pairedQuestions = pairedQuestions
            self.reason = reason
            self.rule = rule
            self.flips = flips
            self.extraDifferences = extraDifferences
        }

        enum CodingKeys: String, CodingKey {
            case promoted, difference, reason, rule, flips
            case pairedQuestions = "paired_questions"
            case extraDifferences = "extra_differences"
        }
    }

    /// Compares two evaluations of the same question set. The rules are checked in a fixed
    /// order, collapse warnings first; a refusal names the rule that refused.
    public func decide(current: RoundEvaluation, candidate: RoundEvaluation) -> Decision {
        let flips = MajorityFlips(before: current, after: candidate)
        let extraDifferences = extraSetDifferences(current: current, candidate: candidate)
        func refuse(_ rule: String, _ reason: String, difference: Estimate? = nil, paired: Int = 0) -> Decision {
            Decision(promoted: false, difference: difference, pairedQuestions: paired, reason: "refused by \(rule): \(reason)", rule: rule,
                     flips: flips, extraDifferences: extraDifferences.isEmpty ? nil : extraDifferences)
        }
        let currentByID = Dictionary(current.outcomes.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        var pairs: [(QuestionOutcome, QuestionOutcome)] = []
        for outcome in candidate.outcomes {
            guard let before = currentByID[outcome.id] else { continue }
            if metric != .agreement, !(outcome.isLabelled && before.isLabelled) { continue }
            pairs.append((before, outcome))
        }
        guard !pairs.isEmpty else {
            return refuse("min_gain", metric == .agreement ? "no question was evaluated for both models"
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
            return refuse("min_gain", "nothing to compare")
        }
        let interval = "\(metric.rawValue) \(difference.pointsDescription) points over \(pairs.count) questions"
        if let drop = maxPassAtMDrop, candidate.labelled > 0, current.labelled > 0,
           candidate.passAtM.mean < current.passAtM.mean - drop
        {
            return refuse("max_pass_at_m_drop", "pass@m fell from \(Self.format(current.passAtM.mean)) to \(Self.format(candidate.passAtM.mean)), more than \(drop) (\(interval))",
                          difference: difference, paired: pairs.count)
        }
        if let drop = maxPassAtKDrop, let before = current.passAtK, let after = candidate.passAtK, before.k == after.k,
           after.estimate.mean < before.estimate.mean - drop,
           let fall = pairedPassAtK(before, after), fall.upper < 0
        {
            return refuse("max_pass_at_k_drop", "pass@\(after.k) fell from \(Self.format(before.estimate.mean)) to \(Self.format(after.estimate.mean)), more than \(drop) (paired \(fall.pointsDescription) points; \(interval))",
                          difference: difference, paired: pairs.count)
        }
        if let share = maxRightToWrongShare, flips.rightToWrongShare > share, flips.rightToWrong > flips.wrongToRight {
            return refuse("max_right_to_wrong_flips", "\(flips.rightToWrong) of the \(flips.rightBefore) held-out majorities the model in force had right flipped to wrong (\(Self.format(flips.rightToWrongShare)) > \(share); \(flips.wrongToRight) flipped to right; \(interval))",
                          difference: difference, paired: pairs.count)
        }
        for name in gatedExtraSets {
            if let extra = extraDifferences[name], extra.upper < 0 {
                return refuse("extra:\(name)", "pass@1 on '\(name)' got worse, \(extra.pointsDescription) points (\(interval))",
                              difference: difference, paired: pairs.count)
            }
        }
        guard difference.lower > minGain else {
            return refuse("min_gain", "not better by the margin: the interval's lower end is not above \(Estimate(mean: minGain, lower: minGain, upper: minGain).pointsDescription.prefix { $0 != " " }) points (\(interval))",
                          difference: difference, paired: pairs.count)
        }
        return Decision(promoted: true, difference: difference, pairedQuestions: pairs.count, reason: "better: \(interval)",
                        flips: flips, extraDifferences: extraDifferences.isEmpty ? nil : extraDifferences)
    }

    /// The paired difference of per-question pass@k between two evaluations of the same subset.
    private func pairedPassAtK(_ before: PassAtKEvaluation, _ after: PassAtKEvaluation) -> Estimate? {
        let k = after.k
        let earlier = Dictionary(before.outcomes.compactMap { o in PassAtK.unbiased(n: o.paths, correct: o.correctPaths, k: k).map { (o.id, $0) } },
                                 uniquingKeysWith: { first, _ in first })
        let pairs = after.outcomes.compactMap { o in
            earlier[o.id].flatMap { then in PassAtK.unbiased(n: o.paths, correct: o.correctPaths, k: k).map { (then, $0) } }
        }
        return PairedBootstrap.difference(baseline: pairs.map(\.0), candidate: pairs.map(\.1), resamples: resamples, seed: seed)
    }

    /// The candidate's paired pass@1 difference on each extra set both models were evaluated on.
    private func extraSetDifferences(current: RoundEvaluation, candidate: RoundEvaluation) -> [String: Estimate] {
        var result: [String: Estimate] = [:]
        for named in candidate.extra ?? [] {
            guard let before = current.extra(named: named.name) else { continue }
            let earlier = Dictionary(before.outcomes.filter(\.isLabelled).map { ($0.id, $0.pathAccuracy) }, uniquingKeysWith: { first, _ in first })
            let pairs = named.evaluation.outcomes.filter(\.isLabelled).compactMap { outcome in earlier[outcome.id].map { ($0, outcome.pathAccuracy) } }
            if let difference = PairedBootstrap.difference(baseline: pairs.map(\.0), candidate: pairs.map(\.1), resamples: resamples, seed: seed) {
                result[named.name] = difference
            }
        }
        return result
    }

    /// Three decimals (the core does without Foundation's formatting).
    private static func format(_ value: Double) -> String {
        "\((value * 1000).rounded() / 1000)"
    }

    enum CodingKeys: String, CodingKey {
        case metric, resamples, seed
        case minGain = "min_gain"
        case maxPassAtMDrop = "max_pass_at_m_drop"
        case maxPassAtKDrop = "max_pass_at_k_drop"
        case maxRightToWrongShare = "max_right_to_wrong_flips"
        case gatedExtraSets = "gated_extra_sets"
    }
}
