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
/// greedy accuracy (each with a 95% interval over questions) and the mean vote confidence.
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
    /// The per-question outcomes, in question-id order: what paired comparisons resample.
    public var outcomes: [QuestionOutcome]

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
        self.outcomes = sorted
    }

    enum CodingKeys: String, CodingKey {
        case questions, labelled, m, greedy, outcomes
        case passAt1 = "pass_at_1"
        case majorityAtM = "maj_at_m"
        case passAtM = "pass_at_m"
        case meanConfidence = "mean_confidence"
    }
}
