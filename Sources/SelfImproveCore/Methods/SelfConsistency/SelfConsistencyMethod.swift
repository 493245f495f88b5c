/// LMSI's method (methods.md, section 1): draw m paths with a few-shot chain-of-thought
/// prompt, have the verifier tier score them (when the run has verifiers), vote, and keep the
/// majority's paths.
///
/// One ``SampleWork`` of m paths (the lease book splits it over samplers), then at most one
/// ``ScoreWork`` of the m texts, then the result.
public struct SelfConsistencyMethod: QuestionMethod {
    /// What every question of a run shares.
    public struct Settings: Sendable {
        /// Paths per question.
        public var m: Int
        public var prompts: PromptBuilder
        /// Vote with each path weighing its verifier score, instead of one vote per path.
        public var weighted: Bool
        /// Accept a vote only at or above this confidence (nil: every vote with a majority).
        public var minConfidence: Double?
        /// Keep only majority paths whose verifier score is at least this (0: all).
        public var minPathScore: Double
        /// Whether paths go to the verifier tier before the vote.
        public var scoresPaths: Bool
        /// The question's text is the whole prompt (no exemplars, no `Q:`/`A:` frame): for data
        /// sets of ready prompts, such as the rounds' imagination phase.
        public var rawPrompts: Bool
        /// The exemplars' part of every prompt, built once.
        let promptPrefix: String

        public init(m: Int, prompts: PromptBuilder, weighted: Bool, minConfidence: Double?, minPathScore: Double, scoresPaths: Bool,
                    rawPrompts: Bool = false)
        {
            self.m = max(1, m)
            self.prompts = prompts
            self.weighted = weighted
            self.minConfidence = minConfidence
            self.minPathScore = minPathScore
            self.scoresPaths = scoresPaths
            self.rawPrompts = rawPrompts
            promptPrefix = prompts.fewShotChainOfThoughtPrefix()
        }
    }

    public let question: Question
    private let settings: Settings
    private var paths: [SampledPath?] = []

    public init(question: Question, settings: Settings) {
        self.question = question
        self.settings = settings
    }

    public mutating func start() -> [MethodStep] {
        let prompt = settings.rawPrompts ? question.text : settings.prompts.fewShotChainOfThought(question.text, prefix: settings.promptPrefix)
        return [.sample(SampleWork(key: 0, prompt: prompt, n: settings.m))]
    }

    public mutating func sampled(_ key: Int, paths: [SampledPath?]) -> [MethodStep] {
        self.paths = paths
        guard settings.scoresPaths else { return [.finish(.selfConsistency(decide(scores: nil, answers: nil)))] }
        return [.score(ScoreWork(key: 0, texts: paths.map { $0?.text ?? "" }))]
    }

    public mutating func scored(_ key: Int, scores: [Double], answers: [Answer?]?) -> [MethodStep] {
        [.finish(.selfConsistency(decide(scores: scores, answers: answers)))]
    }

    /// The vote: answers (the verifiers' when they gave them, extracted here otherwise), one vote
    /// per path or weighted by score, and the majority paths kept.
    func decide(scores: [Double]?, answers known: [Answer?]?) -> SelfConsistencyResult {
        let answers = known.flatMap { $0.count == paths.count ? $0 : nil }
            ?? paths.map { path in path.flatMap { AnswerExtractor.extract(from: $0.text, as: question.kind) } }
        let scores = scores.flatMap { $0.count == paths.count ? $0 : nil }
        let vote: Vote
        if settings.weighted {
            let weights = paths.indices.map { paths[$0] == nil ? 0 : scores?[$0] ?? 0 }
            vote = SelfConsistency.weightedVote(answers, weights: weights, threshold: settings.minConfidence)
        } else {
            vote = SelfConsistency.vote(answers, threshold: settings.minConfidence)
        }
        let minimum = settings.minPathScore
        let kept = vote.accepted ? vote.majorityPaths.filter { minimum <= 0 || (scores?[$0] ?? 0) >= minimum } : []
        return SelfConsistencyResult(question: question, paths: paths, answers: answers, scores: scores, vote: vote, kept: kept)
    }
}

/// LMSI's result for one question.
public struct SelfConsistencyResult: Sendable {
    public var question: Question
    /// One entry per path index `0 ..< m`, nil where it was given up.
    public var paths: [SampledPath?]
    public var answers: [Answer?]
    /// The verifier tier's score per path (nil: the run has no verifiers).
    public var scores: [Double]?
    public var vote: Vote
    /// The paths kept for training (empty when the vote was not accepted).
    public var kept: [Int]

    /// Whether the question yields training data.
    public var accepted: Bool { vote.accepted && !kept.isEmpty }
}

/// Makes ``SelfConsistencyMethod``s (`method.name: lmsi`).
public struct SelfConsistencyMethodFactory: QuestionMethodFactory {
    public let settings: SelfConsistencyMethod.Settings
    public var name: MethodName { .lmsi }

    public init(settings: SelfConsistencyMethod.Settings) { self.settings = settings }

    public func make(for question: Question) -> any QuestionMethod {
        SelfConsistencyMethod(question: question, settings: settings)
    }
}
