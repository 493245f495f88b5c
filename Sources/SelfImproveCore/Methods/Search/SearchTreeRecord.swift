/// A search tree as `records.jsonl` keeps it (the record's `search` member): compact, for
/// inspection and for the exports (preference pairs, step labels).
public struct SearchTreeRecord: Sendable, Hashable, Codable {
    public struct Node: Sendable, Hashable, Codable {
        public var parent: Int?
        public var text: String
        public var depth: Int
        public var visits: Int
        public var value: Double
        public var terminal: Bool
        public var answer: String?
        public var process: Double?
        public var outcome: Double?
        public var estimate: Double?
        public var reward: Double?
        public var completionTokens: Int
        /// A finished trajectory's index among the record's paths.
        public var path: Int?
        /// The node's rollouts' indices among the record's paths.
        public var rollouts: [Int]

        public init(parent: Int?, text: String, depth: Int, visits: Int, value: Double, terminal: Bool, answer: String?, process: Double?,
                    outcome: Double?, estimate: Double?, reward: Double?, completionTokens: Int, path: Int?, rollouts: [Int]) {
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

    /// The nodes as the exports take them (answers as text).
    public var resultNodes: [SearchResult.Node] {
        nodes.map { node in
            SearchResult.Node(parent: node.parent, text: node.text, depth: node.depth, visits: node.visits, value: node.value,
                              terminal: node.terminal, answer: node.answer.map { Answer(kind: .text, canonical: $0) }, process: node.process,
                              outcome: node.outcome, estimate: node.estimate, reward: node.reward, completionTokens: node.completionTokens)
        }
    }

    /// Sibling preference pairs (TRL's preference format).
    public func preferencePairs(question: String) -> [SearchExport.PreferencePair] {
        SearchExport.preferencePairs(question: question, nodes: resultNodes, margin: pairMargin)
    }

    /// Finished trajectories with step labels (TRL's stepwise-supervision format).
    public func stepLabels(question: String) -> [SearchExport.StepLabels] {
        SearchExport.stepLabels(question: question, nodes: resultNodes, threshold: labelThreshold)
    }
}
