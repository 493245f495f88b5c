/// A method is what the cluster computes for each question: LMSI's sample-and-vote, a tree
/// search, a critique-and-refine loop. Each is a pure state machine per question, driven by
/// the coordinator: it asks for paths to be drawn (``SampleWork``) and for texts to be scored
/// by the verifier tier (``ScoreWork``), takes the results, and finally yields its
/// ``MethodResult``. It does no I/O and knows nothing of leases, samplers or the journal, so
/// every method is testable without a socket and the coordinator's guarantees (leases, retries,
/// the record stream, crash recovery) hold for all of them alike.
///
/// The coordinator delivers one event at a time per question, in any order across questions.
/// A method that is lost with its coordinator is started again from ``start()`` on resume: its
/// state is rebuilt, never journaled half-way.
public protocol QuestionMethod: Sendable {
    /// The question this instance works on.
    var question: Question { get }

    /// The first requests.
    mutating func start() -> [MethodStep]

    /// The paths drawn for the request `key`: one entry per path asked for, nil where every
    /// attempt at it failed (given up by the lease book).
    mutating func sampled(_ key: Int, paths: [SampledPath?]) -> [MethodStep]

    /// The verifier tier's scores for the request `key`, one per text; `answers` holds the answer
    /// the verifiers extracted from each text, when they report them.
    mutating func scored(_ key: Int, scores: [Double], answers: [Answer?]?) -> [MethodStep]
}

/// What a method asks of the cluster next.
public enum MethodStep: Sendable {
    /// Draw paths.
    case sample(SampleWork)
    /// Score texts with the verifier tier.
    case score(ScoreWork)
    /// The question is done: this is its result (its last step).
    case finish(MethodResult)
}

/// Makes the method for each question of a run (one per `method.name`).
public protocol QuestionMethodFactory: Sendable {
    /// The method's name in the config (`method.name`).
    var name: MethodName { get }
    /// A fresh state machine for `question`.
    func make(for question: Question) -> any QuestionMethod
}

/// Paths a method wants drawn for one of its questions.
public struct SampleWork: Sendable, Hashable {
    /// Tells the method's requests for one question apart; the paths come back under it.
    public var key: Int
    /// The full prompt.
    public var prompt: String
    /// Paths to draw (the lease book splits them into requests of at most `paths_per_request`).
    public var n: Int
    /// Settings this request sets for itself (nil: the run's `method` settings).
    public var temperature: Double?
    public var maxTokens: Int?
    public var stop: [String]?
    /// Varies the draw (added to the run's seed): two requests of one question with the same
    /// prompt, such as a search expanding a node again, must not draw the same paths.
    public var seed: UInt64?
    /// The sampler pool (a `samplers` entry's name) that must serve it; nil: the run's main
    /// samplers. A search's fast rollouts may go to a smaller model this way.
    public var pool: String?
    /// What the request is for, for the run's counters (`expansion`, `rollout`, ...; nil: the
    /// method's main paths).
    public var purpose: String?

    public init(key: Int, prompt: String, n: Int, temperature: Double? = nil, maxTokens: Int? = nil, stop: [String]? = nil,
                seed: UInt64? = nil, pool: String? = nil, purpose: String? = nil) {
        self.key = key
        self.prompt = prompt
        self.n = n
        self.temperature = temperature
        self.maxTokens = maxTokens
        self.stop = stop
        self.seed = seed
        self.pool = pool
        self.purpose = purpose
    }

    /// Whether the request uses the run's sampling settings unchanged.
    public var usesRunSettings: Bool { temperature == nil && maxTokens == nil && stop == nil && seed == nil }
}

/// Texts a method wants the verifier tier to score (each against the method's question).
public struct ScoreWork: Sendable, Hashable {
    /// Which critic of the verifier tier scores the texts.
    public enum Critic: String, Sendable, Hashable {
        /// The verifier node's configured chain (checker, oracle, judge): labels and outcome rewards.
        case verifiers = ""
        /// A judge's P(True) that the last step of a partial solution is right (a process reward).
        case process
        /// A judge's P(True) that a partial solution will reach the right answer (a value estimate).
        case value
    }

    public var key: Int
    /// The texts; an empty one stands for a path that does not exist (scored, then ignored).
    public var texts: [String]
    public var critic: Critic
    /// Whether the run's statistics count the texts as critic calls (by default those scored by
    /// a critic other than the verifiers' chain).
    public var isCriticCall: Bool

    public init(key: Int, texts: [String], critic: Critic = .verifiers, isCriticCall: Bool? = nil) {
        self.key = key
        self.texts = texts
        self.critic = critic
        self.isCriticCall = isCriticCall ?? (critic != .verifiers)
    }
}

/// What a method yields for a question; the coordinator turns it into the record it journals
/// and streams to the trainer.
public enum MethodResult: Sendable {
    /// LMSI: m paths and their vote.
    case selfConsistency(SelfConsistencyResult)
    /// SCORE: solutions, their labels, critiques and refinements.
    case refine(RefineResult)
    /// SCORE at inference: an answer, its verification and perhaps its refinement.
    case verifyRefine(VerifyRefineResult)
    /// AlphaLLM: a search tree, its best trajectory and what it exports.
    case search(SearchResult)
}
