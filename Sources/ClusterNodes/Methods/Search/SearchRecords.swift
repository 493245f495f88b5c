import SelfImproveCore
import Wire

/// What the search trees of a run did, summed over finished questions (journaled, so that a
/// resumed run reports all of it).
struct SearchCounts: Sendable, Hashable {
    var trees = 0
    var totals = SearchCounters()
    /// Sum of the trees' depths (deepest node).
    var depthSum = 0
    /// Best trajectories kept as training data.
    var kept = 0
    /// Trees that ended before their budget (nothing left to grow).
    var exhausted = 0

    static func += (lhs: inout SearchCounts, rhs: SearchCounts) {
        lhs.trees += rhs.trees
        lhs.totals += rhs.totals
        lhs.depthSum += rhs.depthSum
        lhs.kept += rhs.kept
        lhs.exhausted += rhs.exhausted
    }

    var journal: Selfimprove_V1_JournalSearchCounts {
        var counts = Selfimprove_V1_JournalSearchCounts()
        counts.trees = UInt64(trees)
        counts.simulations = UInt64(totals.simulations)
        counts.expansions = UInt64(totals.expansions)
        counts.stepsDrawn = UInt64(totals.stepsDrawn)
        counts.merged = UInt64(totals.merged)
        counts.emptySteps = UInt64(totals.emptySteps)
        counts.rollouts = UInt64(totals.rollouts)
        counts.criticCalls = UInt64(totals.criticCalls)
        counts.completionTokens = UInt64(totals.completionTokens)
        counts.depthSum = UInt64(depthSum)
        counts.kept = UInt64(kept)
        counts.exhausted = UInt64(exhausted)
        return counts
    }

    init() {}

    init(journal counts: Selfimprove_V1_JournalSearchCounts) {
        trees = Int(counts.trees)
        totals.simulations = Int(counts.simulations)
        totals.expansions = Int(counts.expansions)
        totals.stepsDrawn = Int(counts.stepsDrawn)
        totals.merged = Int(counts.merged)
        totals.emptySteps = Int(counts.emptySteps)
        totals.rollouts = Int(counts.rollouts)
        totals.criticCalls = Int(counts.criticCalls)
        totals.completionTokens = Int(counts.completionTokens)
        depthSum = Int(counts.depthSum)
        kept = Int(counts.kept)
        exhausted = Int(counts.exhausted)
    }
}

extension MethodRecords {
    /// AlphaLLM: the record's paths are the tree's finished trajectories and rollouts (each
    /// with its answer and outcome reward); `majority` is the best trajectory's answer, kept
    /// (as LMSI-style training data) when its outcome reward passed the threshold; the tree
    /// goes along for the exports (preference pairs, step labels) and for inspection.
    static func verdict(for result: SearchResult) -> GroupVerdict {
        var record = Selfimprove_V1_TrainingRecord()
        record.method = MethodName.search.recordName
        record.questionID = result.question.id
        record.question = result.question.text
        let (paths, _) = recordPaths(result.paths.map { Optional($0) }, answers: result.answers, scores: result.outcomes.map { $0 ?? 0 })
        record.paths = paths
        let best = result.best
        let answer = result.bestAnswer
        if let answer { record.majority = answer.canonical }
        let bestReward = best.flatMap { path in result.nodes.first { $0.path == path }?.reward } ?? best.flatMap { result.outcomes[$0] } ?? 0
        record.confidence = bestReward
        record.accepted = result.kept
        record.keptPaths = result.kept ? best.map { [UInt32($0)] } ?? [] : []
        if let gold = result.question.gold {
            record.gold = gold.canonical
            record.majorityCorrect = answer == gold
        }
        var summary = Selfimprove_V1_SearchSummary()
        summary.nodes = result.nodes.map { node in
            var wire = Selfimprove_V1_SearchNode()
            if let parent = node.parent { wire.parent = UInt32(parent) }
            wire.text = node.text
            wire.depth = UInt32(node.depth)
            wire.visits = UInt32(clamping: node.visits)
            wire.value = node.value
            wire.terminal = node.terminal
            if let answer = node.answer { wire.answer = answer }
            if let process = node.process { wire.process = process }
            if let outcome = node.outcome { wire.outcome = outcome }
            if let estimate = node.estimate { wire.estimate = estimate }
            if let reward = node.reward { wire.reward = reward }
            wire.completionTokens = UInt32(clamping: node.completionTokens)
            if let path = node.path { wire.path = UInt32(path) }
            wire.rollouts = node.rollouts.map { UInt32($0) }
            return wire
        }
        if let best { summary.bestPath = UInt32(best) }
        let counters = result.counters
        summary.simulations = UInt32(clamping: counters.simulations)
        summary.expansions = UInt32(clamping: counters.expansions)
        summary.stepsDrawn = UInt32(clamping: counters.stepsDrawn)
        summary.merged = UInt32(clamping: counters.merged)
        summary.emptySteps = UInt32(clamping: counters.emptySteps)
        summary.rollouts = UInt32(clamping: counters.rollouts)
        summary.criticCalls = UInt32(clamping: counters.criticCalls)
        summary.completionTokens = UInt64(counters.completionTokens)
        summary.labelThreshold = result.labelThreshold
        summary.pairMargin = result.pairMargin
        summary.exhausted = counters.exhausted
        record.search = summary

        let answered = result.answers.compactMap { $0 }
        let vote = Vote(majority: answer, counts: Dictionary(answered.map { ($0, 1.0) }, uniquingKeysWith: +), pathCount: result.paths.count,
                        answeredCount: answered.count, confidence: bestReward, majorityPaths: best.map { [$0] } ?? [], accepted: result.kept)
        var counts = SearchCounts()
        counts.trees = 1
        counts.totals = counters
        counts.depthSum = result.nodes.map(\.depth).max() ?? 0
        counts.kept = result.kept ? 1 : 0
        counts.exhausted = counters.exhausted ? 1 : 0
        return GroupVerdict(record: record, answers: result.answers, vote: vote, gold: result.question.gold,
                            completionTokens: counters.completionTokens, search: counts)
    }
}
