import ActorCluster
import Foundation
import SelfImproveCore

extension RunManifest {
    /// The manifest of a run that ended with `outcome`, from the coordinator's counts.
    init(config: ClusterConfig, progress: RunProgress, outcome: CoordinatorActor.Outcome, durableSequence: UInt64) {
        let seconds = max(0.001, progress.elapsed.seconds)
        // The run after its start-up: from the first lease granted (nodes started, connected).
        let startup = progress.firstLease.map { ($0 - progress.started).seconds } ?? 0
        let working = max(0.001, seconds - startup)
        // Steady state: from the first lease to the last path received. After it the run only
        // votes, scores and stores what it has (the tail).
        let steady = progress.firstLease.flatMap { first in progress.lastPath.map { max(0.001, ($0 - first).seconds) } } ?? working
        let tail = progress.lastPath.map { max(0, seconds - ($0 - progress.started).seconds) } ?? 0
        switch outcome {
        case .finished: (status, reason) = (.finished, nil)
        case .interrupted: (status, reason) = (.interrupted, nil)
        case let .failed(text): (status, reason) = (.failed, text)
        }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        run = config.name
        configHash = config.hash
        configHashAlgorithm = "fnv1a-64 of the canonical YAML (overrides applied, keys sorted)"
        self.config = config.canonicalText
        dataset = Dataset(path: config.dataset.path, questions: progress.total, linesSkipped: progress.datasetLinesSkipped)
        method = Method(name: config.method.name.rawValue, m: config.method.m, pathsPerRequest: config.method.pathsPerRequest,
                        temperature: config.method.temperature, topP: config.method.topP, maxTokens: config.method.maxTokens,
                        vote: config.method.vote.rawValue, minConfidence: config.method.minConfidence, minPathScore: config.method.minPathScore)
        counts = Counts(records: progress.done, voted: progress.voted, accepted: progress.accepted, rejected: progress.done - progress.accepted,
                        paths: progress.pathsStored, pathsReceived: progress.pathsReceived, pathsDropped: progress.pathsDropped,
                        pathsGivenUp: progress.pathsGivenUp, examples: Int(clamping: progress.trainerExamples),
                        completionTokens: progress.completionTokens, leasesGranted: progress.leasesGranted,
                        leasesExpired: progress.leasesExpired, leasesFailed: progress.leasesFailed, samplersLost: progress.samplersLost,
                        durableSequence: durableSequence)
        meanConfidence = progress.voted > 0 ? progress.confidenceSum / Double(progress.voted) : 0
        timings = Timings(started: formatter.string(from: progress.startedAt), finished: formatter.string(from: Date()), seconds: seconds,
                          pathsPerS: Double(progress.pathsThisRun) / seconds, tokensPerS: Double(progress.tokensThisRun) / seconds,
                          startupSeconds: startup, workingPathsPerS: Double(progress.pathsThisRun) / working, steadySeconds: steady,
                          tailSeconds: tail, steadyPathsPerS: Double(progress.pathsThisRun) / steady,
                          steadyTokensPerS: Double(progress.tokensThisRun) / steady)
        resumptions = progress.resumptions
        coordinatorPeakRssBytes = ProcessMemory.peakResidentBytes() ?? 0
        nodes = config.nodes.map { node in
            Node(role: node.role.rawValue, name: node.address.name,
                 command: node.role == .verifier ? config.verifiers.first { $0.address.name == node.address.name }?.command : nil)
        }
        verifyRefine = config.method.name == .verifyRefine ? Self.verifyRefine(progress.verifyRefine, config: config) : nil
        refine = config.method.name == .refine ? Self.refine(progress, config: config) : nil
        search = config.method.search.map { Self.search(progress.search, settings: $0) }
        let evaluation = progress.evaluation
        accuracy = evaluation.labelled > 0
            ? Accuracy(labelled: evaluation.labelled, firstPath: evaluation.firstPathAccuracy ?? 0, majority: evaluation.majorityAccuracy ?? 0,
                       passAtM: evaluation.passAtM ?? 0)
            : nil
    }

    private static func verifyRefine(_ counts: VerifyRefineCounts, config: ClusterConfig) -> VerifyRefine {
        func share(_ count: Int) -> Double? { counts.labelled > 0 ? Double(count) / Double(counts.labelled) : nil }
        return VerifyRefine(questions: counts.questions, refined: counts.refined, labelled: counts.labelled, rightBefore: counts.rightBefore,
                            rightAfter: counts.rightAfter, accuracyBefore: share(counts.rightBefore), accuracyAfter: share(counts.rightAfter),
                            rightToWrong: counts.rightToWrong, wrongToRight: counts.wrongToRight, threshold: config.method.refine?.threshold ?? 0,
                            verifiers: config.verifiers.first.map { $0.chain.map(\.kind.rawValue) } ?? [])
    }

    private static func refine(_ progress: RunProgress, config: ClusterConfig) -> Refine {
        func entry(_ refine: RefineCounts) -> Refine {
            Refine(solutions: refine.solutions, judgedWrong: refine.judgedWrong, critiqued: refine.critiqued, passedFilters: refine.passedFilters,
                   refinedRight: refine.refinedRight, rebalanced: refine.rebalanced, filtered: refine.filtered)
        }
        var refine = entry(progress.refine)
        // Per verifier node: the counts of the questions it labelled, with its chain.
        refine.byVerifier = Dictionary(uniqueKeysWithValues: progress.refineByVerifier.map { name, counts in
            var verifier = entry(counts)
            verifier.chain = config.verifiers.first { $0.address.name == name }.map { $0.chain.map(\.kind.rawValue) } ?? []
            return (name, verifier)
        })
        return refine
    }

    private static func search(_ counts: SearchCounts, settings: SearchSettings) -> Search {
        let totals = counts.totals
        return Search(trees: counts.trees, simulations: totals.simulations, nodes: totals.expansions, stepsDrawn: totals.stepsDrawn,
                      merged: totals.merged, emptySteps: totals.emptySteps, rollouts: totals.rollouts, criticCalls: totals.criticCalls,
                      completionTokens: totals.completionTokens, kept: counts.kept, exhausted: counts.exhausted,
                      meanDepth: counts.trees > 0 ? Double(counts.depthSum) / Double(counts.trees) : 0,
                      budget: Search.Budget(simulations: settings.simulations, tokens: settings.tokenBudget),
                      critics: Search.Critics(value: settings.value.rawValue, outcome: settings.outcome.rawValue,
                                              weights: ["value": settings.weights.value, "process": settings.weights.process,
                                                        "outcome": settings.weights.outcome]))
    }
}
