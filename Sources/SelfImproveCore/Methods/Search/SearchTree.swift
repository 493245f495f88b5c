import Foundation

/// The tree of AlphaLLM's η-MCTS over options (methods.md, section 2): the root is the
/// question, every other node an **option**, a span of generated text up to a termination
/// condition (a line break; the stop string is kept in the text). Pure: no sampling here, only
/// the bookkeeping every search step needs (selection, expansion with state merge,
/// backpropagation), so that it is tested on hand-built trees.
///
/// Selection is plain UCT as in AlphaLLM's code, `q/n + C·sqrt(ln N / n)` (no prior, no virtual
/// loss); an unvisited child is taken first. Values are means of the backed-up rewards.
public struct SearchTree: Sendable {
    public struct Node: Sendable, Hashable {
        /// The option's text (empty for the root).
        public var text: String
        public var parent: Int?
        public var children: [Int] = []
        public var visits = 0
        public var valueSum = 0.0
        /// Options from the root (the root is 0).
        public var depth: Int
        /// States the final answer (or reached the depth limit): never expanded.
        public var terminal: Bool

        /// The mean backed-up value (0 before any visit).
        public var value: Double { visits > 0 ? valueSum / Double(visits) : 0 }
    }

    public private(set) var nodes: [Node]

    public init() {
        nodes = [Node(text: "", parent: nil, depth: 0, terminal: false)]
    }

    public static let root = 0

    /// UCT of `child` under its parent; +∞ for an unvisited child (it goes first).
    public func uct(_ child: Int, exploration: Double) -> Double {
        let node = nodes[child]
        guard node.visits > 0 else { return .infinity }
        let parentVisits = node.parent.map { nodes[$0].visits } ?? node.visits
        return node.value + exploration * (log(Double(max(1, parentVisits))) / Double(node.visits)).squareRoot()
    }

    /// Descends from the root by UCT (ties: the earlier child) until a node that `wantsChildren`
    /// (still below its branching width), a terminal node, or a leaf; returns it.
    public func select(exploration: Double, wantsChildren: (Int) -> Bool) -> Int {
        var current = Self.root
        while !nodes[current].terminal, !nodes[current].children.isEmpty, !wantsChildren(current) {
            let children = nodes[current].children
            var best = children[0]
            for child in children.dropFirst() where uct(child, exploration: exploration) > uct(best, exploration: exploration) {
                best = child
            }
            current = best
        }
        return current
    }

    /// Adds an option under `parent`, unless it is a near-duplicate of a sibling (edit distance
    /// below `minDistance` characters, AlphaLLM's diversity rule): then nothing is added and the
    /// sibling is returned with `merged` true.
    @discardableResult
    public mutating func add(_ text: String, under parent: Int, terminal: Bool, minDistance: Int = 0) -> (node: Int, merged: Bool) {
        if minDistance > 0 {
            for sibling in nodes[parent].children where EditDistance.between(nodes[sibling].text, text, atMost: minDistance) < minDistance {
                return (sibling, true)
            }
        }
        let node = nodes.count
        nodes.append(Node(text: text, parent: parent, depth: nodes[parent].depth + 1, terminal: terminal))
        nodes[parent].children.append(node)
        return (node, false)
    }

    /// Adds `value` to the node and every ancestor, one visit each.
    public mutating func backpropagate(from node: Int, value: Double) {
        var current: Int? = node
        while let index = current {
            nodes[index].visits += 1
            nodes[index].valueSum += value
            current = nodes[index].parent
        }
    }

    /// The nodes from the root's first option to `node`, in order.
    public func path(to node: Int) -> [Int] {
        var path: [Int] = []
        var current: Int? = node
        while let index = current, index != Self.root {
            path.append(index)
            current = nodes[index].parent
        }
        return path.reversed()
    }

    /// The text from the root to `node` (the options joined as generated).
    public func text(to node: Int) -> String {
        path(to: node).map { nodes[$0].text }.joined()
    }

    /// The spread of `node`'s children's values (largest minus smallest; 0 with fewer than two
    /// visited children): how undecided the node is.
    public func spread(of node: Int) -> Double {
        let values = nodes[node].children.filter { nodes[$0].visits > 0 }.map { nodes[$0].value }
        guard values.count >= 2, let low = values.min(), let high = values.max() else { return 0 }
        return high - low
    }
}

/// AlphaLLM's adaptive branching: `max(c_min, min(floor(α·I(s)) + 1, c_max))` children, with
/// I(s) the spread of the children's values; wide at the root, narrow below.
public struct Branching: Sendable, Hashable {
    public var rootMinimum: Int
    public var rootMaximum: Int
    public var belowMinimum: Int
    public var belowMaximum: Int
    /// How fast the width grows with the spread.
    public var alpha: Double

    /// The code's defaults scaled to a small model: 4 to 10 at the root, 2 to 4 below.
    public init(rootMinimum: Int = 4, rootMaximum: Int = 10, belowMinimum: Int = 2, belowMaximum: Int = 4, alpha: Double = 10) {
        self.rootMinimum = max(1, rootMinimum)
        self.rootMaximum = max(self.rootMinimum, rootMaximum)
        self.belowMinimum = max(1, belowMinimum)
        self.belowMaximum = max(self.belowMinimum, belowMaximum)
        self.alpha = alpha
    }

    /// Children a node at `depth` may have, given its children's value spread.
    public func width(depth: Int, spread: Double) -> Int {
        let (minimum, maximum) = depth == 0 ? (rootMinimum, rootMaximum) : (belowMinimum, belowMaximum)
        let grown = spread.isFinite ? Int((alpha * max(0, spread)).rounded(.down)) + 1 : maximum
        return max(minimum, min(grown, maximum))
    }
}

/// Levenshtein distance on characters, for the state merge of sibling options.
public enum EditDistance {
    /// The distance between `a` and `b`, or any value of at least `limit` once it is known to
    /// reach it (cheaper for long, different options).
    public static func between(_ a: String, _ b: String, atMost limit: Int = .max) -> Int {
        let a = Array(a), b = Array(b)
        if abs(a.count - b.count) >= limit { return abs(a.count - b.count) }
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0 ... b.count)
        var current = Array(repeating: 0, count: b.count + 1)
        for i in 1 ... a.count {
            current[0] = i
            var rowMinimum = current[0]
            for j in 1 ... b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
                rowMinimum = min(rowMinimum, current[j])
            }
            if rowMinimum >= limit { return rowMinimum }
            swap(&previous, &current)
        }
        return previous[b.count]
    }
}
