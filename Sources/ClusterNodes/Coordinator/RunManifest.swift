import ActorCluster
import Foundation
import SelfImproveCore

/// `manifest.json`: what a run was (config hash and text), what it produced (counts that match
/// the data files), how it went (timings, peak memory) and how it ended.
struct RunManifest {
    let object: [String: Any]

    init(config: ClusterConfig, progress: RunProgress, outcome: CoordinatorActor.Outcome, durableSequence: UInt64) {
        let seconds = max(0.001, progress.elapsed.seconds)
        // The run after its start-up: from the first lease granted (nodes started, connected).
        let startup = progress.firstLease.map { ($0 - progress.started).seconds } ?? 0
        let working = max(0.001, seconds - startup)
        // Steady state: from the first lease to the last path received. After it the run only
        // votes, scores and stores what it has (the tail).
        let steady = progress.firstLease.flatMap { first in progress.lastPath.map { max(0.001, ($0 - first).seconds) } } ?? working
        let tail = progress.lastPath.map { max(0, seconds - ($0 - progress.started).seconds) } ?? 0
        let status: String
        var reason: String?
        switch outcome {
        case .finished: status = "finished"
        case .interrupted: status = "interrupted"
        case let .failed(text): status = "failed"; reason = text
        }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        var object: [String: Any] = [
            "run": config.name,
            "status": status,
            "config_hash": config.hash,
            "config_hash_algorithm": "fnv1a-64 of the canonical YAML (overrides applied, keys sorted)",
            "config": config.canonicalText,
            "dataset": ["path": config.dataset.path, "questions": progress.total, "lines_skipped": progress.datasetLinesSkipped],
            "method": [
                "name": config.method.name.rawValue, "m": config.method.m, "paths_per_request": config.method.pathsPerRequest,
                "temperature": config.method.temperature, "top_p": config.method.topP, "max_tokens": config.method.maxTokens,
                "vote": config.method.vote.rawValue, "min_confidence": config.method.minConfidence ?? NSNull(),
                "min_path_score": config.method.minPathScore,
            ] as [String: Any],
            "counts": [
                "records": progress.done, "voted": progress.voted, "accepted": progress.accepted,
                "rejected": progress.done - progress.accepted, "paths": progress.pathsStored,
                "paths_received": progress.pathsReceived,
                "paths_dropped": progress.pathsDropped, "paths_given_up": progress.pathsGivenUp,
                "examples": progress.trainerExamples, "completion_tokens": progress.completionTokens,
                "leases_granted": progress.leasesGranted, "leases_expired": progress.leasesExpired,
                "leases_failed": progress.leasesFailed, "samplers_lost": progress.samplersLost,
                "durable_sequence": durableSequence,
            ] as [String: Any],
            "mean_confidence": progress.voted > 0 ? progress.confidenceSum / Double(progress.voted) : 0,
            "timings": [
                "started": formatter.string(from: progress.startedAt), "finished": formatter.string(from: Date()),
                "seconds": seconds, "paths_per_s": Double(progress.pathsThisRun) / seconds,
                "tokens_per_s": Double(progress.tokensThisRun) / seconds,
                "startup_seconds": startup,
                "working_paths_per_s": Double(progress.pathsThisRun) / working,
                "steady_seconds": steady, "tail_seconds": tail,
                "steady_paths_per_s": Double(progress.pathsThisRun) / steady,
                "steady_tokens_per_s": Double(progress.tokensThisRun) / steady,
            ] as [String: Any],
            "resumptions": progress.resumptions,
            "coordinator_peak_rss_bytes": ProcessMemory.peakResidentBytes() ?? 0,
            "nodes": config.nodes.map { node -> [String: Any] in
                var entry: [String: Any] = ["role": node.role.rawValue, "name": node.address.name]
                // A verifier run as a program of its own (e.g. the C node) says which.
                if node.role == .verifier, let command = config.verifiers.first(where: { $0.address.name == node.address.name })?.command {
                    entry["command"] = command
                }
                return entry
            },
        ]
        if let reason { object["reason"] = reason }
        if config.method.name == .verifyRefine {
            let counts = progress.verifyRefine
            func share(_ count: Int) -> Any { counts.labelled > 0 ? Double(count) / Double(counts.labelled) : NSNull() }
            object["verify_refine"] = [
                "questions": counts.questions, "refined": counts.refined, "labelled": counts.labelled,
                "right_before": counts.rightBefore, "right_after": counts.rightAfter, "accuracy_before": share(counts.rightBefore),
                "accuracy_after": share(counts.rightAfter), "right_to_wrong": counts.rightToWrong, "wrong_to_right": counts.wrongToRight,
                "threshold": config.method.refine?.threshold ?? 0,
                "verifiers": config.verifiers.first.map { $0.chain.map(\.kind.rawValue) } ?? [],
            ] as [String: Any]
        }
        if config.method.name == .refine {
            func entry(_ refine: RefineCounts) -> [String: Any] {
                ["solutions": refine.solutions, "judged_wrong": refine.judgedWrong, "critiqued": refine.critiqued,
                 "passed_filters": refine.passedFilters, "refined_right": refine.refinedRight, "rebalanced": refine.rebalanced,
                 "filtered": refine.filtered]
            }
            var refine = entry(progress.refine)
            // Per verifier node: the counts of the questions it labelled, with its chain.
            refine["by_verifier"] = Dictionary(uniqueKeysWithValues: progress.refineByVerifier.map { name, counts in
                var verifier = entry(counts)
                verifier["chain"] = config.verifiers.first { $0.address.name == name }.map { $0.chain.map(\.kind.rawValue) } ?? []
                return (name, verifier)
            })
            object["refine"] = refine
        }
        if let settings = config.method.search {
            let counts = progress.search, totals = counts.totals
            object["search"] = [
                "trees": counts.trees, "simulations": totals.simulations, "nodes": totals.expansions, "steps_drawn": totals.stepsDrawn,
                "merged": totals.merged, "empty_steps": totals.emptySteps, "rollouts": totals.rollouts, "critic_calls": totals.criticCalls,
                "completion_tokens": totals.completionTokens, "kept": counts.kept, "exhausted": counts.exhausted,
                "mean_depth": counts.trees > 0 ? Double(counts.depthSum) / Double(counts.trees) : 0,
                "budget": ["simulations": settings.simulations, "tokens": settings.tokenBudget.map { $0 as Any } ?? NSNull()] as [String: Any],
                "critics": ["value": settings.value.rawValue, "outcome": settings.outcome.rawValue,
                            "weights": ["value": settings.weights.value, "process": settings.weights.process, "outcome": settings.weights.outcome]] as [String: Any],
            ] as [String: Any]
        }
        let evaluation = progress.evaluation
        if evaluation.labelled > 0 {
            object["accuracy"] = [
                "labelled": evaluation.labelled, "first_path": evaluation.firstPathAccuracy ?? 0,
                "majority": evaluation.majorityAccuracy ?? 0, "pass_at_m": evaluation.passAtM ?? 0,
            ] as [String: Any]
        }
        self.object = object
    }

    /// Writes the manifest atomically.
    func write(to url: URL) throws {
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        try data.write(to: url, options: .atomic)
    }
}
