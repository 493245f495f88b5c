/// A search's result for one question: the tree, every finished text it produced (finished
/// trajectories and rollouts, the record's paths), and the best trajectory.
public struct SearchResult: Sendable {
    /// One tree node as it ends up (index 0 is the root, the question): the form records keep.
    public typealias Node = SearchTreeRecord.Node

    public var question: Question
    public var nodes: [Node]
    /// Full texts after `A:`: finished trajectories and rollouts.
    public var paths: [SampledPath]
    public var answers: [Answer?]
    public var outcomes: [Double?]
    /// The best trajectory's index in `paths`.
    public var best: Int?
    /// Whether the best trajectory's outcome reward passed the keep threshold.
    public var kept: Bool
    public var counters: SearchCounters
    public var labelThreshold: Double
    public var pairMargin: Double

    public var bestAnswer: Answer? { best.flatMap { answers[$0] } }
}

/// Training data a search tree yields besides its best trajectory, in TRL's formats.
public enum SearchExport {
    /// A preference pair (TRL's `prompt`, `chosen`, `rejected`): two sibling steps after the
    /// same prefix, the higher-valued chosen.
    public struct PreferencePair: Sendable, Hashable, Codable {
        public var prompt: String
        public var chosen: String
        public var rejected: String
        /// The two nodes' values.
        public var chosenValue: Double
        public var rejectedValue: Double

        enum CodingKeys: String, CodingKey {
            case prompt, chosen, rejected
            case chosenValue = "chosen_value"
            case rejectedValue = "rejected_value"
        }
    }

    /// A finished trajectory's steps with a label each (TRL's stepwise supervision:
    /// `prompt`, `completions`, `labels`), for training a process reward model.
    public struct StepLabels: Sendable, Hashable, Codable {
        public var prompt: String
        public var completions: [String]
        public var labels: [Bool]
    }

    /// The prompt of exported data: the question in the training examples' zero-shot form
    /// (`Q: …\nA:`), then the steps before the pair's.
    static func prompt(_ question: String, prefix: String) -> String {
        PromptBuilder(exemplars: []).plain(question) + prefix
    }

    /// For every node with visited children: its best child against each child whose value is
    /// at least `margin` lower (ties broken by visits, then order).
    public static func preferencePairs(question: String, nodes: [SearchResult.Node], margin: Double) -> [PreferencePair] {
        var children = Array(repeating: [Int](), count: nodes.count)
        for (index, node) in nodes.enumerated() {
            if let parent = node.parent, children.indices.contains(parent) { children[parent].append(index) }
        }
        var pairs: [PreferencePair] = []
        for parent in nodes.indices {
            let visited = children[parent].filter { nodes[$0].visits > 0 }
            guard visited.count >= 2,
                  let best = visited.max(by: { (nodes[$0].value, nodes[$0].visits, -$0) < (nodes[$1].value, nodes[$1].visits, -$1) })
            else { continue }
            let prompt = prompt(question, prefix: text(to: parent, in: nodes))
            for other in visited where other != best && nodes[best].value - nodes[other].value >= margin {
                pairs.append(PreferencePair(prompt: prompt, chosen: nodes[best].text, rejected: nodes[other].text,
                                            chosenValue: nodes[best].value, rejectedValue: nodes[other].value))
            }
        }
        return pairs
    }

    /// Every finished trajectory with an answer, each step labelled good when its node's value
    /// is at least `threshold` (its subtree's mean reward: a soft Math-Shepherd label, cut).
    public static func stepLabels(question: String, nodes: [SearchResult.Node], threshold: Double) -> [StepLabels] {
        nodes.indices.filter { nodes[$0].terminal && nodes[$0].answer != nil }.map { leaf in
            let steps = chain(to: leaf, in: nodes)
            return StepLabels(prompt: prompt(question, prefix: ""), completions: steps.map { nodes[$0].text },
                              labels: steps.map { nodes[$0].value >= threshold })
        }
    }

    /// The nodes from the root's first option to `node`.
    static func chain(to node: Int, in nodes: [SearchResult.Node]) -> [Int] {
        var chain: [Int] = []
        var current: Int? = node
        var guardCount = 0
        while let index = current, nodes.indices.contains(index), nodes[index].parent != nil, guardCount <= nodes.count {
            chain.append(index)
            current = nodes[index].parent
            guardCount += 1
        }
        return chain.reversed()
    }

    static func text(to node: Int, in nodes: [SearchResult.Node]) -> String {
        chain(to: node, in: nodes).map { nodes[$0].text }.joined()
    }
}
