/// A search tree as `records.jsonl` keeps it (the record's `search` member): compact, for
/// inspection and for the exports (preference pairs, step labels).
public struct SearchTreeRecord: Sendable, Hashable, Codable {
    /// A node: its step, its counts and its critics' scores.
    public struct Node: Sendable, Hashable, Codable {
        public var parent: Int?
        public var text: String
        public var depth: Int
        public var visits: Int
        public var value: Double
        public var terminal: Bool
        /// The answer a finished trajectory states (canonical).
        public var answer: String?
        /// Process reward of the node's step.
        public var process: Double?
        /// Outcome reward of a finished trajectory.
        public var outcome: Double?
        /// Value estimate of an open node (the rollouts' mean outcome, or the value judge).
        public var estimate: Double?
        /// The reward the node was backed up with when it was evaluated.
        public var reward: Double?
        public var completionTokens: Int
        /// A finished trajectory's index among the record's paths.
        public var path: Int?
        /// The node's rollouts' indices among the record's paths.
        public var rollouts: [Int]

        public init(parent: Int?, text: String, depth: Int, visits: Int, value: Double, terminal: Bool, answer: String? = nil, process: Double? = nil,
                    outcome: Double? = nil, estimate: Double? = nil, reward: Double? = nil, completionTokens: Int = 0, path: Int? = nil,
                    rollouts: [Int] = []) {
            self.parent = parent
            self.text = text
            self.depth = depth
            self.visits = visits
            self.value = value
            self.terminal = terminal
            self.answer = answer
            self.process = process
            self.outcome = outcome
            self.estimate = estimate
            self.reward = reward
            self.completionTokens = completionTokens
            self.path = path
            self.rollouts = rollouts
        }

        enum CodingKeys: String, CodingKey {
            case parent, text, depth, visits, value, terminal, answer, process, outcome, estimate, reward, path, rollouts
            case completionTokens = "completion_tokens"
        }
    }

    public var nodes: [Node]
    public var bestPath: Int?
    public var counters: SearchCounters
    public var labelThreshold: Double
    public var pairMargin: Double

    public init(nodes: [Node], bestPath: Int?, counters: SearchCounters, labelThreshold: Double, pairMargin: Double) {
        self.nodes = nodes
        self.bestPath = bestPath
        self.counters = counters
        self.labelThreshold = labelThreshold
        self.pairMargin = pairMargin
    }

    enum CodingKeys: String, CodingKey {
        case nodes, counters
        case bestPath = "best_path"
        case labelThreshold = "label_threshold"
        case pairMargin = "pair_margin"
    }

    /// Sibling preference pairs (TRL's preference format).
    public func preferencePairs(question: String) -> [SearchExport.PreferencePair] {
        SearchExport.preferencePairs(question: question, nodes: nodes, margin: pairMargin)
    }

    /// Finished trajectories with step labels (TRL's stepwise-supervision format).
    public func stepLabels(question: String) -> [SearchExport.StepLabels] {
        SearchExport.stepLabels(question: question, nodes: nodes, threshold: labelThreshold)
    }
}
