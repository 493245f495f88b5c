/// What every question of a search run shares (`method.name: search`, `method.search` in the
/// config). Defaults follow AlphaLLM's code where it fits a small model and short steps; each
/// departure is named.
public struct SearchSettings: Sendable, Hashable {
    /// Where a node's value comes from besides the process and outcome rewards.
    public enum ValueSource: String, Sendable, Hashable {
        /// The mean outcome reward of `rollouts` fast completions from the node (AlphaLLM's fast
        /// rollouts; Math-Shepherd's soft label).
        case rollouts
        /// A judge's P(True) that the partial solution will reach the right answer.
        case judge
    }

    /// What the outcome reward of a finished trajectory is.
    public enum OutcomeSource: String, Sendable, Hashable {
        /// The verifier tier's configured chain (the arithmetic-step checker, the `gold` oracle
        /// where the config has it, an LLM judge).
        case verifiers
        /// Agreement with the tree's majority answer so far (label-free, self-consistency as
        /// the reward).
        case majority
    }

    /// Weights of the three critics in a node's reward (their weighted mean over the critics
    /// that apply to the node: the outcome reward only to finished trajectories).
    public struct Weights: Sendable, Hashable {
        public var value: Double
        public var process: Double
        public var outcome: Double

        public init(value: Double = 1, process: Double = 0, outcome: Double = 1) {
            self.value = max(0, value)
            self.process = max(0, process)
            self.outcome = max(0, outcome)
        }
    }

    /// UCT's exploration constant C (AlphaLLM: 1.0 for GSM8K with the small model).
    public var exploration: Double = 1
    public var branching = Branching()
    /// Options from the root at most; a node this deep is terminal (AlphaLLM's code: 10).
    public var maxDepth = 8
    /// Siblings closer than this many characters (edit distance) are merged; 1 merges exact
    /// duplicates only. AlphaLLM resamples below 20 on GSM8K's long lines; this project's
    /// steps are short sentences where one character ("= 23" / "= 24") is the whole difference.
    public var mergeDistance = 1
    /// Where an option ends (AlphaLLM: a line break). This project's exemplars write one
    /// sentence per step on one line, so its default is the end of a sentence.
    public var stepStop = [". "]
    public var stepMaxTokens = 48
    /// Temperature of expansions (nil: the run's `method.temperature`).
    public var expansionTemperature: Double?
    /// The first child of a node is greedy (temperature 0), as in AlphaLLM's code.
    public var greedyFirst = true
    /// Completions per node in one request (AlphaLLM: 4 at temperature 1.0).
    public var rollouts = 4
    public var rolloutTemperature = 1.0
    /// nil: the run's `method.max_tokens`.
    public var rolloutMaxTokens: Int?
    /// The sampler pool that serves rollouts (nil: every sampler).
    public var rolloutPool: String?
    public var value = ValueSource.rollouts
    public var outcome = OutcomeSource.verifiers
    public var weights = Weights()
    /// Simulations (select, expand, evaluate, back up) per question.
    public var simulations = 16
    /// Completion tokens per question (expansions and rollouts); no new simulation starts
    /// once they are spent (the last one may go over by its own cost). nil: no token budget.
    public var tokenBudget: Int?
    /// The best trajectory becomes training data when its outcome reward is at least this
    /// (0.75: above the default chain's 0.5 for an answer with a wrong step).
    public var keepThreshold = 0.75
    /// A step is labelled good (TRL stepwise labels) when its node's value is at least this.
    public var labelThreshold = 0.5
    /// Sibling preference pairs need values at least this far apart.
    public var pairMargin = 0.2

    public init() {}
}
