import SelfImproveCore
import Wire

extension SinkRecord {
    /// The trainer's view of a streamed record: the stored record plus the LMSI training
    /// examples of its kept paths, in the chosen formats.
    /// - Parameters:
    ///   - wire: The record as the coordinator sent it.
    ///   - prompts: The exemplars the paths were sampled with.
    ///   - formats: Which of the four mixed formats to write.
    init(wire: Selfimprove_V1_TrainingRecord, prompts: PromptBuilder, formats: [TrainingExample.Format]) {
        let paths = wire.paths.map { path in
            VoteRecord.Path(
                index: Int(path.index), text: path.text, answer: path.hasAnswer ? path.answer : nil,
                sampler: path.sampler.isEmpty ? nil : path.sampler,
                modelVersion: path.modelVersion.isEmpty ? nil : path.modelVersion,
                score: path.hasScore ? path.score : nil,
                completionTokens: path.givenUp ? nil : Int(path.completionTokens),
                givenUp: path.givenUp ? true : nil)
        }
        var record = VoteRecord(
            id: wire.questionID, question: wire.question, paths: paths,
            majority: wire.hasMajority ? wire.majority : nil, confidence: wire.confidence, accepted: wire.accepted,
            keptPaths: wire.keptPaths.map { Int($0) }, gold: wire.hasGold ? wire.gold : nil,
            majorityCorrect: wire.hasMajorityCorrect ? wire.majorityCorrect : nil, vote: wire.vote.isEmpty ? nil : wire.vote)
        var examples: [TrainingExample] = []
        let method = MethodName(recordName: wire.method)
        if method == .refine || method == .verifyRefine {
            record.method = wire.method
            record.rightAt = method == .refine ? wire.rightAt : nil
            record.reference = wire.hasReferencePath ? Int(wire.referencePath) : nil
            record.labelledBy = wire.labelledBy.isEmpty ? nil : wire.labelledBy
            record.refinements = wire.refinements.map { attempt in
                VoteRecord.Refinement(
                    path: Int(attempt.pathIndex), critique: attempt.critique, outcome: attempt.outcome,
                    refinement: attempt.refinement.isEmpty ? nil : attempt.refinement,
                    refinementAnswer: attempt.hasRefinementAnswer ? attempt.refinementAnswer : nil,
                    refinementScore: attempt.hasRefinementScore ? attempt.refinementScore : nil, kept: attempt.kept,
                    sampler: attempt.sampler.isEmpty ? nil : attempt.sampler, modelVersion: attempt.modelVersion.isEmpty ? nil : attempt.modelVersion,
                    completionTokens: attempt.outcome == "rebalanced" ? nil : Int(attempt.completionTokens))
            }
            // verify_refine evaluates: it makes no training data.
            examples = method == .refine ? Self.refineExamples(wire, formats: formats) : []
        } else {
            if method == .search {
                record.method = wire.method
                record.search = SearchTreeRecord(wire: wire.search)
            }
            // LMSI's kept paths; a search's best trajectory when it was kept.
            if wire.accepted, wire.hasMajority, !formats.isEmpty {
                for index in record.keptPaths where paths.indices.contains(index) {
                    examples += MixedFormats.examples(question: wire.question, path: paths[index].text, answer: wire.majority, prompts: prompts)
                        .filter { formats.contains($0.format) }
                }
            }
        }
        self.init(sequence: wire.sequence, record: record, examples: examples,
                  preferences: record.search?.preferencePairs(question: wire.question) ?? [],
                  stepLabels: record.search?.stepLabels(question: wire.question) ?? [])
    }

    /// SCORE's data from a refine record: per path, the verifier's label example and, where the
    /// path's critique and refinement were kept (or it was rebalanced), the refiner's example.
    private static func refineExamples(_ wire: Selfimprove_V1_TrainingRecord, formats: [TrainingExample.Format]) -> [TrainingExample] {
        let kept = Dictionary(wire.refinements.filter(\.kept).map { (Int($0.pathIndex), $0) }, uniquingKeysWith: { first, _ in first })
        var examples: [TrainingExample] = []
        for path in wire.paths where !path.givenUp {
            let attempt = kept[Int(path.index)]
            let refinement = attempt.map { $0.outcome == "rebalanced" ? path.text : $0.refinement }
            examples += RefinePrompts.examples(question: wire.question, solution: path.text, right: path.score >= wire.rightAt,
                                               critique: attempt?.critique, refinement: refinement)
        }
        return examples.filter { formats.contains($0.format) }
    }
}

extension SearchTreeRecord {
    /// The tree as the coordinator sent it.
    init(wire: Selfimprove_V1_SearchSummary) {
        var counters = SearchCounters()
        counters.simulations = Int(wire.simulations)
        counters.expansions = Int(wire.expansions)
        counters.stepsDrawn = Int(wire.stepsDrawn)
        counters.merged = Int(wire.merged)
        counters.emptySteps = Int(wire.emptySteps)
        counters.rollouts = Int(wire.rollouts)
        counters.criticCalls = Int(wire.criticCalls)
        counters.completionTokens = Int(wire.completionTokens)
        counters.exhausted = wire.exhausted
        self.init(
            nodes: wire.nodes.map { node in
                Node(parent: node.hasParent ? Int(node.parent) : nil, text: node.text, depth: Int(node.depth), visits: Int(node.visits),
                     value: node.value, terminal: node.terminal, answer: node.hasAnswer ? node.answer : nil,
                     process: node.hasProcess ? node.process : nil, outcome: node.hasOutcome ? node.outcome : nil,
                     estimate: node.hasEstimate ? node.estimate : nil, reward: node.hasReward ? node.reward : nil,
                     completionTokens: Int(node.completionTokens), path: node.hasPath ? Int(node.path) : nil, rollouts: node.rollouts.map { Int($0) })
            },
            bestPath: wire.hasBestPath ? Int(wire.bestPath) : nil, counters: counters, labelThreshold: wire.labelThreshold, pairMargin: wire.pairMargin)
    }
}
