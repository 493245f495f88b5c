/// One evaluated question: how many of its paths were right, whether the vote was, and how
/// sure the vote was. The unit that paired comparisons between two models resample.
public struct QuestionOutcome: Sendable, Hashable, Codable {
    public var id: String
    /// Paths drawn (m, counting paths without an answer and given-up paths).
    public var paths: Int
    /// Paths whose answer equals the gold answer (0 when unlabelled).
    public var correctPaths: Int
    /// The vote's confidence (majority votes / m): the label-free agreement.
    public var confidence: Double
    /// Whether the majority answer is right; nil when the question has no gold answer.
    public var majorityCorrect: Bool?
    /// Whether the greedy (temperature 0) answer is right; nil when not measured or unlabelled.
    public var greedyCorrect: Bool?

    public init(id: String, paths: Int, correctPaths: Int, confidence: Double, majorityCorrect: Bool?, greedyCorrect: Bool? = nil) {
        self.id = id
        self.paths = paths
        self.correctPaths = correctPaths
        self.confidence = confidence
        self.majorityCorrect = majorityCorrect
        self.greedyCorrect = greedyCorrect
    }

    /// The fraction of this question's paths that are right: its pass@1 estimate over all m
    /// paths (far less noisy than the literal first path).
    public var pathAccuracy: Double { paths > 0 ? Double(correctPaths) / Double(paths) : 0 }
    /// Some path is right (pass@m).
    public var anyCorrect: Bool { correctPaths > 0 }
    public var isLabelled: Bool { majorityCorrect != nil }
}

/// A mean with its 95% confidence interval.
public struct Estimate: Sendable, Hashable, Codable {
    public var mean: Double
    public var lower: Double
    public var upper: Double

    public init(mean: Double, lower: Double, upper: Double) {
        self.mean = mean
        self.lower = lower
        self.upper = upper
    }

    /// `+10.0 [+5.9, +14.3]`: a difference of proportions in percentage points, one decimal.
    public var pointsDescription: String {
        func points(_ x: Double) -> String {
            let scaled = (x * 1000).rounded() / 10
            return (scaled >= 0 ? "+" : "") + "\(scaled)"
        }
        return "\(points(mean)) [\(points(lower)), \(points(upper))]"
    }

    /// The mean of `values` with a normal-approximation 95% interval (1.96 standard errors),
    /// clamped to [0, 1] since every quantity estimated here is a proportion.
    public static func ofProportions(_ values: [Double]) -> Estimate {
        guard !values.isEmpty else { return Estimate(mean: 0, lower: 0, upper: 0) }
        let n = Double(values.count)
        let mean = values.reduce(0, +) / n
        let variance = values.count > 1 ? values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / (n - 1) : 0
        let half = 1.96 * (variance / n).squareRoot()
        return Estimate(mean: mean, lower: max(0, mean - half), upper: min(1, mean + half))
    }
}

/// The figures of one model on the evaluation set: pass@1 over all m paths, maj@m, pass@m,
/// greedy accuracy (each with a 95% interval over questions), the mean vote confidence and its
/// calibration error; and, when measured, pass@k at a large k on a fixed subset and the same
/// figures on extra (out-of-distribution) sets.
public struct RoundEvaluation: Sendable, Hashable, Codable {
    public var questions: Int
    public var labelled: Int
    public var m: Int
    /// Mean over labelled questions of the fraction of right paths.
    public var passAt1: Estimate
    public var majorityAtM: Estimate
    public var passAtM: Estimate
    /// Greedy accuracy, when a greedy pass was made.
    public var greedy: Estimate?
    /// Mean vote confidence over all questions (label-free agreement).
    public var meanConfidence: Double
    /// Expected calibration error of vote confidence against majority correctness (labelled
    /// questions, ten bins); nil without labels.
    public var calibrationError: Double?
    /// The per-question outcomes, in question-id order: what paired comparisons resample.
    public var outcomes: [QuestionOutcome]
    /// pass@k at a large k on a fixed subset of the set (diversity), when measured.
    public var passAtK: PassAtKEvaluation?
    /// The same model on the rounds' extra evaluation sets, by name, when there are any.
    public var extra: [NamedEvaluation]?

    public init(outcomes: [QuestionOutcome]) {
        let sorted = outcomes.sorted { $0.id < $1.id }
        let labelled = sorted.filter(\.isLabelled)
        questions = sorted.count
        self.labelled = labelled.count
        m = sorted.map(\.paths).max() ?? 0
        passAt1 = .ofProportions(labelled.map(\.pathAccuracy))
        majorityAtM = .ofProportions(labelled.map { $0.majorityCorrect == true ? 1 : 0 })
        passAtM = .ofProportions(labelled.map { $0.anyCorrect ? 1 : 0 })
        let greedyOutcomes = labelled.compactMap(\.greedyCorrect)
        greedy = greedyOutcomes.isEmpty ? nil : .ofProportions(greedyOutcomes.map { $0 ? 1 : 0 })
        meanConfidence = sorted.isEmpty ? 0 : sorted.map(\.confidence).reduce(0, +) / Double(sorted.count)
        calibrationError = Calibration.expectedError(labelled.map { ($0.confidence, $0.majorityCorrect == true) })
        self.outcomes = sorted
    }

    /// The extra set named `name`, if it was evaluated.
    public func extra(named name: String) -> RoundEvaluation? {
        extra?.first { $0.name == name }?.evaluation
    }

    enum CodingKeys: String, CodingKey {
        case questions, labelled, m, greedy, outcomes, extra
        case passAt1 = "pass_at_1"
        case majorityAtM = "maj_at_m"
        case passAtM = "pass_at_m"
        case meanConfidence = "mean_confidence"
        case calibrationError = "calibration_error"
        case passAtK = "pass_at_k"
    }
}

/// An evaluation on a named extra set (`rounds.evaluation.extra`).
public struct NamedEvaluation: Sendable, Hashable, Codable {
    public var name: String
    public var evaluation: RoundEvaluation

    public init(name: String, evaluation: RoundEvaluation) {
        self.name = name
        self.evaluation = evaluation
    }
}

/// pass@k at a large k: n ≥ k paths per question on a fixed subset of the held-out set, each
/// question's pass@k from the unbiased estimator (``PassAtK``), their mean with a 95% interval.
/// Small-k accuracy can rise while large-k pass@k falls: the diversity collapse that Mind the
/// Gap (iteration.md) measured, which the gate can refuse.
public struct PassAtKEvaluation: Sendable, Hashable, Codable {
    public var k: Int
    /// Paths drawn per question (the most any question got).
    public var n: Int
    public var estimate: Estimate
    /// Questions with at least k paths (the ones estimated).
    public var questions: Int
    /// Per question: paths drawn and right ones.
    public var outcomes: [QuestionOutcome]

    /// Estimates from labelled outcomes with at least `k` paths; nil when none has.
    public init?(k: Int, outcomes: [QuestionOutcome]) {
        let usable = outcomes.filter { $0.isLabelled && $0.paths >= k }.sorted { $0.id < $1.id }
        let values = usable.compactMap { PassAtK.unbiased(n: $0.paths, correct: $0.correctPaths, k: k) }
        guard !values.isEmpty else { return nil }
        self.k = k
        n = usable.map(\.paths).max() ?? k
        estimate = .ofProportions(values)
        questions = values.count
        self.outcomes = usable
    }
}
