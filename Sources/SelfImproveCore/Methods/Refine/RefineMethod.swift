import Foundation

/// SCORE's method (methods.md, section 3): draw N solutions, have the verifier tier label each
/// right or wrong, write a step-by-step critique of each wrong one (beside a right solution of
/// the same question as reference, when there is one), keep the critiques that pass the rule
/// filters, write a refinement from each, and keep a (solution, critique, refinement) triple
/// when the verifier finds the refinement right. With `rebalance`, right solutions join the
/// data with an all-correct critique, so that a refiner learns to leave right answers alone.
///
/// Choices the paper leaves open, made here: one critique per wrong solution and one
/// refinement per kept critique (SCORE's code samples one each); the reference is the right
/// solution the verifiers scored highest; "right" is a verifier score of at least `rightAt`
/// (the verifier tier's combined score read as the probability of being right); without a
/// reference the final-answer rule cannot be checked and is skipped.
///
/// Keys: 0 for the solutions, `1_000 + i` for solution i's critique, `2_000 + i` for its
/// refinement (sampled, then scored under the same key).
public struct RefineMethod: QuestionMethod {
    public struct Settings: Sendable {
        /// Solutions per question (SCORE: 10).
        public var n: Int
        public var prompts: PromptBuilder
        /// A verifier score at or above this labels a text right.
        public var rightAt: Double
        /// Critiques per question at most (the wrong solutions first in index order).
        public var maxCritiques: Int
        public var critiqueTemperature: Double
        public var critiqueMaxTokens: Int
        public var refinementTemperature: Double
        /// Add right solutions with an all-correct critique to the data.
        public var rebalance: Bool
        let promptPrefix: String

        public init(n: Int, prompts: PromptBuilder, rightAt: Double = 0.5, maxCritiques: Int = 10, critiqueTemperature: Double = 0.7,
                    critiqueMaxTokens: Int = 512, refinementTemperature: Double = 0.7, rebalance: Bool = false) {
            self.n = max(1, n)
            self.prompts = prompts
            self.rightAt = rightAt
            self.maxCritiques = max(0, maxCritiques)
            self.critiqueTemperature = critiqueTemperature
            self.critiqueMaxTokens = max(1, critiqueMaxTokens)
            self.refinementTemperature = refinementTemperature
            self.rebalance = rebalance
            promptPrefix = prompts.fewShotChainOfThoughtPrefix()
        }
    }

    static let critiqueKeys = 1_000
    static let refinementKeys = 2_000

    public let question: Question
    private let settings: Settings
    private var solutions: [SampledPath?] = []
    private var scores: [Double] = []
    private var answers: [Answer?] = []
    private var reference: Int?
    private var attempts: [Int: RefineAttempt] = [:]
    private var rebalanced: [RefineAttempt] = []
    /// Keys whose paths or scores are awaited.
    private var awaited = Set<Int>()

    public init(question: Question, settings: Settings) {
        self.question = question
        self.settings = settings
    }

    public mutating func start() -> [MethodStep] {
        awaited = [0]
        return [.sample(SampleWork(key: 0, prompt: settings.prompts.fewShotChainOfThought(question.text, prefix: settings.promptPrefix), n: settings.n))]
    }

    public mutating func sampled(_ key: Int, paths: [SampledPath?]) -> [MethodStep] {
        if key == 0 {
            solutions = paths
            return [.score(ScoreWork(key: 0, texts: paths.map { $0?.text ?? "" }))]
        }
        if key >= Self.refinementKeys {
            let index = key - Self.refinementKeys
            guard let refinement = paths.first ?? nil else {
                attempts[index]?.outcome = .refinementGivenUp
                return done(key)
            }
            attempts[index]?.refinement = refinement
            return [.score(ScoreWork(key: key, texts: [refinement.text]))]
        }
        let index = key - Self.critiqueKeys
        guard let critique = paths.first ?? nil, let solution = solutions[safe: index] ?? nil else {
            attempts[index]?.outcome = .critiqueGivenUp
            return done(key)
        }
        var critiqueText = RefinePrompts.critiqueText(completion: critique.text)
        if let end = critiqueText.range(of: "[END]") { critiqueText = String(critiqueText[..<end.upperBound]) }
        attempts[index]?.critique = critique
        attempts[index]?.critiqueText = critiqueText
        let target = reference.flatMap { answers[safe: $0] ?? nil }
        if let failure = CritiqueFilter.check(Critique(parsing: critiqueText), solution: solution.text, answer: target, kind: question.kind) {
            attempts[index]?.outcome = .filtered(failure)
            return done(key)
        }
        awaited.insert(Self.refinementKeys + index)
        awaited.remove(key)
        return [.sample(SampleWork(key: Self.refinementKeys + index,
                                   prompt: RefinePrompts.refinement(question: question.text, solution: solution.text, critique: critiqueText),
                                   n: 1, temperature: settings.refinementTemperature))]
    }

    public mutating func scored(_ key: Int, scores: [Double], answers known: [Answer?]?) -> [MethodStep] {
        if key == 0 { return solutionsScored(scores, answers: known) }
        let index = key - Self.refinementKeys
        let text = attempts[index]?.refinement?.text ?? ""
        let score = scores.first ?? 0
        let answer = known?.first ?? AnswerExtractor.extract(from: text, as: question.kind)
        attempts[index]?.refinementScore = score
        attempts[index]?.refinementAnswer = answer
        attempts[index]?.outcome = score >= settings.rightAt ? .refinedRight : .refinedWrong
        return done(key)
    }

    /// The solutions' labels are in: critiques for the wrong ones.
    private mutating func solutionsScored(_ scores: [Double], answers known: [Answer?]?) -> [MethodStep] {
        self.scores = solutions.indices.map { solutions[$0] == nil ? 0 : scores[safe: $0] ?? 0 }
        answers = known.flatMap { $0.count == solutions.count ? $0 : nil }
            ?? solutions.map { path in path.flatMap { AnswerExtractor.extract(from: $0.text, as: question.kind) } }
        let right = solutions.indices.filter { solutions[$0] != nil && self.scores[$0] >= settings.rightAt }
        reference = right.max { self.scores[$0] != self.scores[$1] ? self.scores[$0] < self.scores[$1] : $0 > $1 }
        if settings.rebalance {
            rebalanced = right.map { index in
                let text = solutions[index]!.text
                var attempt = RefineAttempt(solution: index)
                attempt.critiqueText = Critique.allCorrect(steps: SolutionSteps.split(text), answer: answers[index])
                attempt.outcome = .rebalanced
                return attempt
            }
        }
        let wrong = solutions.indices.filter { solutions[$0] != nil && self.scores[$0] < settings.rightAt }.prefix(settings.maxCritiques)
        let referenceText = reference.flatMap { solutions[$0]?.text }
        var steps: [MethodStep] = []
        for index in wrong {
            attempts[index] = RefineAttempt(solution: index)
            awaited.insert(Self.critiqueKeys + index)
            steps.append(.sample(SampleWork(
                key: Self.critiqueKeys + index,
                prompt: RefinePrompts.critique(question: question.text, solution: solutions[index]!.text, reference: referenceText),
                n: 1, temperature: settings.critiqueTemperature, maxTokens: settings.critiqueMaxTokens, stop: RefinePrompts.critiqueStop)))
        }
        return steps + done(0)
    }

    /// `key` needs nothing more; the result once nothing is awaited.
    private mutating func done(_ key: Int) -> [MethodStep] {
        awaited.remove(key)
        guard awaited.isEmpty else { return [] }
        return [.finish(.refine(RefineResult(
            question: question, solutions: solutions, scores: scores, answers: answers, rightAt: settings.rightAt, reference: reference,
            attempts: attempts.values.sorted { $0.solution < $1.solution } + rebalanced)))]
    }
}

/// One wrong solution's way through critique and refinement (or a right one's rebalanced entry).
public struct RefineAttempt: Sendable, Hashable {
    /// How it ended.
    public enum Outcome: Sendable, Hashable {
        case pending
        case critiqueGivenUp
        case filtered(CritiqueFilter.Failure)
        case refinementGivenUp
        case refinedWrong
        case refinedRight
        /// A right solution with an all-correct critique (the rebalanced set).
        case rebalanced

        /// The name in records and counts.
        public var name: String {
            switch self {
            case .pending: "pending"
            case .critiqueGivenUp: "critique_given_up"
            case let .filtered(failure): "filtered_\(failure.rawValue)"
            case .refinementGivenUp: "refinement_given_up"
            case .refinedWrong: "refined_wrong"
            case .refinedRight: "refined_right"
            case .rebalanced: "rebalanced"
            }
        }
    }

    /// The solution's index.
    public var solution: Int
    public var critique: SampledPath?
    /// The critique as checked (from `Step 1:` to `[END]`).
    public var critiqueText: String?
    public var refinement: SampledPath?
    public var refinementScore: Double?
    public var refinementAnswer: Answer?
    public var outcome: Outcome = .pending

    public init(solution: Int) { self.solution = solution }

    /// Whether it becomes training data: a critique that passed the filters and a refinement
    /// the verifiers found right, or a rebalanced entry.
    public var kept: Bool { outcome == .refinedRight || outcome == .rebalanced }
}

/// SCORE's result for one question.
public struct RefineResult: Sendable {
    public var question: Question
    public var solutions: [SampledPath?]
    /// The verifier tier's score of each solution (0 where given up).
    public var scores: [Double]
    public var answers: [Answer?]
    public var rightAt: Double
    /// The right solution used as the critiques' reference.
    public var reference: Int?
    /// The wrong solutions' attempts in solution order, then the rebalanced entries.
    public var attempts: [RefineAttempt]

    /// Whether solution `index` was labelled right.
    public func isRight(_ index: Int) -> Bool { solutions[safe: index] != nil && (scores[safe: index] ?? 0) >= rightAt }
}

/// Makes ``RefineMethod``s (`method.name: refine`).
public struct RefineMethodFactory: QuestionMethodFactory {
    public let settings: RefineMethod.Settings
    public var name: MethodName { .refine }

    public init(settings: RefineMethod.Settings) { self.settings = settings }

    public func make(for question: Question) -> any QuestionMethod {
        RefineMethod(question: question, settings: settings)
    }
}

extension Array {
    subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}
