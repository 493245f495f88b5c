import Foundation
import SelfImproveCore
import Testing

/// η-MCTS's tree on hand-built cases: UCT, selection, adaptive branching, state merge,
/// backpropagation.
@Suite("Search tree")
struct SearchTreeTests {
    /// A root with three options visited 4, 2 and 0 times, values 0.5 and 1.0.
    private func threeOptions() -> (SearchTree, [Int]) {
        var tree = SearchTree()
        let a = tree.add(" 5 + 3 = 8.\n", under: SearchTree.root, terminal: false).node
        let b = tree.add(" 5 * 3 = 15.\n", under: SearchTree.root, terminal: false).node
        let c = tree.add(" 5 - 3 = 2.\n", under: SearchTree.root, terminal: false).node
        for _ in 0 ..< 2 { tree.backpropagate(from: a, value: 1) }
        for _ in 0 ..< 2 { tree.backpropagate(from: a, value: 0) }
        for _ in 0 ..< 2 { tree.backpropagate(from: b, value: 1) }
        return (tree, [a, b, c])
    }

    @Test func uctIsTheMeanPlusTheExplorationBonus() {
        let (tree, options) = threeOptions()
        #expect(tree.nodes[SearchTree.root].visits == 6)
        #expect(abs(tree.uct(options[0], exploration: 1) - (0.5 + (log(6.0) / 4).squareRoot())) < 1e-12)
        #expect(abs(tree.uct(options[1], exploration: 1) - (1.0 + (log(6.0) / 2).squareRoot())) < 1e-12)
        #expect(tree.uct(options[2], exploration: 1) == .infinity, "an unvisited option goes first")
        #expect(tree.uct(options[0], exploration: 0) == 0.5)
    }

    @Test func selectionTakesTheUnvisitedOptionThenTheBestUCT() {
        var (tree, options) = threeOptions()
        #expect(tree.select(exploration: 1) { _ in false } == options[2])
        tree.backpropagate(from: options[2], value: 0)
        // Now b (mean 1.0, 2 visits) beats a (0.5, 4) and c (0, 1) at C = 1 ...
        #expect(tree.select(exploration: 1) { _ in false } == options[1])
        // ... and with a large C the least visited, c, wins.
        #expect(tree.select(exploration: 10) { _ in false } == options[2])
        // A node still below its width is selected for expansion instead of descending.
        #expect(tree.select(exploration: 1) { $0 == SearchTree.root } == SearchTree.root)
    }

    @Test func selectionStopsAtTerminalNodesAndLeaves() {
        var tree = SearchTree()
        let done = tree.add(" The answer is 8.", under: SearchTree.root, terminal: true).node
        let leaf = tree.add(" 5 + 3 = 8.\n", under: SearchTree.root, terminal: false).node
        tree.backpropagate(from: done, value: 1)
        tree.backpropagate(from: leaf, value: 0)
        #expect(tree.select(exploration: 0) { _ in false } == done)
        #expect(tree.nodes[done].depth == 1)
        #expect(tree.text(to: done) == " The answer is 8.")
    }

    @Test func branchingIsWideAtTheRootNarrowBelowAndGrowsWithTheSpreadUpToItsCap() {
        let branching = Branching(rootMinimum: 4, rootMaximum: 10, belowMinimum: 2, belowMaximum: 4, alpha: 10)
        #expect(branching.width(depth: 0, spread: 0) == 4)
        #expect(branching.width(depth: 0, spread: 0.55) == 6)
        #expect(branching.width(depth: 0, spread: 1) == 10)
        #expect(branching.width(depth: 2, spread: 0) == 2)
        #expect(branching.width(depth: 2, spread: 0.25) == 3)
        #expect(branching.width(depth: 2, spread: 1) == 4)
    }

    @Test func theSpreadIsOverVisitedChildren() {
        let (tree, _) = threeOptions()
        #expect(tree.spread(of: SearchTree.root) == 0.5)
        #expect(SearchTree().spread(of: SearchTree.root) == 0)
    }

    @Test func nearDuplicateSiblingsAreMerged() {
        var tree = SearchTree()
        let first = tree.add(" Ana starts with 5 apples.\n", under: SearchTree.root, terminal: false, minDistance: 5)
        let again = tree.add(" Ana starts with 5 apple.\n", under: SearchTree.root, terminal: false, minDistance: 5)
        let other = tree.add(" 5 + 3 = 8, so Ana has 8 apples.\n", under: SearchTree.root, terminal: false, minDistance: 5)
        #expect(!first.merged && again.merged && again.node == first.node && !other.merged)
        #expect(tree.nodes[SearchTree.root].children == [first.node, other.node])
        // Merging only looks at siblings: the same text under another parent is a new node.
        let below = tree.add(" Ana starts with 5 apples.\n", under: other.node, terminal: false, minDistance: 5)
        #expect(!below.merged && tree.nodes[below.node].depth == 2)
        #expect(tree.path(to: below.node) == [other.node, below.node])
    }

    @Test func editDistanceIsLevenshteinAndStopsAtItsLimit() {
        #expect(EditDistance.between("kitten", "sitting") == 3)
        #expect(EditDistance.between("", "abc") == 3)
        #expect(EditDistance.between("same", "same") == 0)
        #expect(EditDistance.between("aaaaaaaaaa", "bbbbbbbbbb", atMost: 3) >= 3)
    }

    @Test func backpropagationVisitsTheWholePath() {
        var tree = SearchTree()
        let first = tree.add("a\n", under: SearchTree.root, terminal: false).node
        let second = tree.add("b\n", under: first, terminal: true).node
        tree.backpropagate(from: second, value: 0.75)
        tree.backpropagate(from: first, value: 0.25)
        #expect(tree.nodes.map(\.visits) == [2, 2, 1])
        #expect(tree.nodes[first].value == 0.5 && tree.nodes[second].value == 0.75)
        #expect(tree.text(to: second) == "a\nb\n")
    }
}
