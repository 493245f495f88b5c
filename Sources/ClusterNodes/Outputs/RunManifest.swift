import Foundation

/// `manifest.json`: what a run was (config hash and text), what it produced (counts that match
/// the data files), how it went (timings, peak memory) and how it ended. The coordinator writes
/// it; the rounds driver, the report and the benchmarks read it through this type.
public struct RunManifest: Codable, Sendable {
    public enum Status: String, Codable, Sendable {
        case finished, interrupted, failed
    }

    public var run: String
    public var status: Status
    /// Why a failed run failed.
    public var reason: String?
    public var configHash: String
    public var configHashAlgorithm: String
    /// The canonical config (overrides applied).
    public var config: String
    public var dataset: Dataset
    public var method: Method
    public var counts: Counts
    public var meanConfidence: Double
    public var timings: Timings
    public var resumptions: Int
    public var coordinatorPeakRssBytes: UInt64
    public var nodes: [Node]
    /// verify_refine: how its answers went.
    public var verifyRefine: VerifyRefine?
    /// refine: how its solutions went through SCORE's stages.
    public var refine: Refine?
    /// search: what its trees did.
    public var search: Search?
    /// With gold labels: first-path, majority and pass@m accuracy.
    public var accuracy: Accuracy?

    public struct Dataset: Codable, Sendable {
        public var path: String
        public var questions: Int
        public var linesSkipped: Int
    }

    public struct Method: Codable, Sendable {
        public var name: String
        public var m: Int
        public var pathsPerRequest: Int
        public var temperature: Double
        public var topP: Double
        public var maxTokens: Int
        public var vote: String
        public var minConfidence: Double?
        public var minPathScore: Double
    }

    public struct Counts: Codable, Sendable {
        public var records: Int
        public var voted: Int
        public var accepted: Int
        public var rejected: Int
        /// Paths stored (in `records.jsonl`).
        public var paths: Int
        public var pathsReceived: Int
        public var pathsDropped: Int
        public var pathsGivenUp: Int
        /// Training examples the trainer wrote.
        public var examples: Int
        public var completionTokens: Int
        public var leasesGranted: Int
        public var leasesExpired: Int
        public var leasesFailed: Int
        public var samplersLost: Int
        public var durableSequence: UInt64

        /// The counts by their names in the file (the report's table).
        public var byName: [String: Int] {
            ["records": records, "voted": voted, "accepted": accepted, "rejected": rejected, "paths": paths, "paths_received": pathsReceived,
             "paths_dropped": pathsDropped, "paths_given_up": pathsGivenUp, "examples": examples, "completion_tokens": completionTokens,
             "leases_granted": leasesGranted, "leases_expired": leasesExpired, "leases_failed": leasesFailed, "samplers_lost": samplersLost,
             "durable_sequence": Int(clamping: durableSequence)]
        }
    }

    public struct Timings: Codable, Sendable {
        public var started: String
        public var finished: String
        public var seconds: Double
        public var pathsPerS: Double
        public var tokensPerS: Double
        /// From the start to the first lease granted (nodes starting and connecting).
        public var startupSeconds: Double
        public var workingPathsPerS: Double
        /// From the first lease to the last path received.
        public var steadySeconds: Double
        /// After the last path: voting, scoring and storing what was sampled.
        public var tailSeconds: Double
        public var steadyPathsPerS: Double
        public var steadyTokensPerS: Double
    }

    public struct Node: Codable, Sendable {
        public var role: String
        public var name: String
        /// A verifier run as a program of its own (e.g. the C node).
        public var command: [String]?
    }

    public struct VerifyRefine: Codable, Sendable {
        public var questions: Int
        public var refined: Int
        public var labelled: Int
        public var rightBefore: Int
        public var rightAfter: Int
        public var accuracyBefore: Double?
        public var accuracyAfter: Double?
        public var rightToWrong: Int
        public var wrongToRight: Int
        public var threshold: Double
        public var verifiers: [String]
    }

    public struct Refine: Codable, Sendable {
        public var solutions: Int
        public var judgedWrong: Int
        public var critiqued: Int
        public var passedFilters: Int
        public var refinedRight: Int
        public var rebalanced: Int
        /// Critiques refused, by rule.
        public var filtered: [String: Int]
        /// Per verifier node: the counts of the questions it labelled (the run's entry only).
        public var byVerifier: [String: Refine]?
        /// The verifier's chain (the per-verifier entries only).
        public var chain: [String]?
    }

    public struct Search: Codable, Sendable {
        public var trees: Int
        public var simulations: Int
        public var nodes: Int
        public var stepsDrawn: Int
        public var merged: Int
        public var emptySteps: Int
        public var rollouts: Int
        public var criticCalls: Int
        public var completionTokens: Int
        public var kept: Int
        public var exhausted: Int
        public var meanDepth: Double
        public var budget: Budget
        public var critics: Critics

        public struct Budget: Codable, Sendable {
            public var simulations: Int
            public var tokens: Int?
        }

        public struct Critics: Codable, Sendable {
            public var value: String
            public var outcome: String
            public var weights: [String: Double]
        }
    }

    public struct Accuracy: Codable, Sendable {
        public var labelled: Int
        public var firstPath: Double
        public var majority: Double
        public var passAtM: Double
    }

    /// Reads a manifest.
    /// - Throws: When the file is missing or is not a manifest.
    public static func read(_ url: URL) throws -> RunManifest {
        try JSONDecoder().decode(RunManifest.self, from: Data(contentsOf: url))
    }

    /// Writes the manifest atomically (keys sorted, readable).
    public func write(to url: URL) throws {
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try encoder.encode(self).write(to: url, options: .atomic)
    }
}

// The file's keys are snake_case; unset optional figures are written as null where readers
// expect the key (min_confidence, the accuracies, the token budget).
extension RunManifest {
    enum CodingKeys: String, CodingKey {
        case run, status, reason, config, dataset, method, counts, timings, resumptions, nodes, refine, search, accuracy
        case configHash = "config_hash", configHashAlgorithm = "config_hash_algorithm", meanConfidence = "mean_confidence"
        case coordinatorPeakRssBytes = "coordinator_peak_rss_bytes", verifyRefine = "verify_refine"
    }
}

extension RunManifest.Dataset {
    enum CodingKeys: String, CodingKey {
        case path, questions
        case linesSkipped = "lines_skipped"
    }
}

extension RunManifest.Method {
    enum CodingKeys: String, CodingKey {
        case name, m, temperature, vote
        case pathsPerRequest = "paths_per_request", topP = "top_p", maxTokens = "max_tokens", minConfidence = "min_confidence"
        case minPathScore = "min_path_score"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(name, forKey: .name)
        try container.encode(m, forKey: .m)
        try container.encode(pathsPerRequest, forKey: .pathsPerRequest)
        try container.encode(temperature, forKey: .temperature)
        try container.encode(topP, forKey: .topP)
        try container.encode(maxTokens, forKey: .maxTokens)
        try container.encode(vote, forKey: .vote)
        try container.encode(minConfidence, forKey: .minConfidence)
        try container.encode(minPathScore, forKey: .minPathScore)
    }
}

extension RunManifest.Counts {
    enum CodingKeys: String, CodingKey {
        case records, voted, accepted, rejected, paths, examples
        case pathsReceived = "paths_received", pathsDropped = "paths_dropped", pathsGivenUp = "paths_given_up"
        case completionTokens = "completion_tokens", leasesGranted = "leases_granted", leasesExpired = "leases_expired"
        case leasesFailed = "leases_failed", samplersLost = "samplers_lost", durableSequence = "durable_sequence"
    }
}

extension RunManifest.Timings {
    enum CodingKeys: String, CodingKey {
        case started, finished, seconds
        case pathsPerS = "paths_per_s", tokensPerS = "tokens_per_s", startupSeconds = "startup_seconds"
        case workingPathsPerS = "working_paths_per_s", steadySeconds = "steady_seconds", tailSeconds = "tail_seconds"
        case steadyPathsPerS = "steady_paths_per_s", steadyTokensPerS = "steady_tokens_per_s"
    }
}

extension RunManifest.VerifyRefine {
    enum CodingKeys: String, CodingKey {
        case questions, refined, labelled, threshold, verifiers
        case rightBefore = "right_before", rightAfter = "right_after", accuracyBefore = "accuracy_before"
        case accuracyAfter = "accuracy_after", rightToWrong = "right_to_wrong", wrongToRight = "wrong_to_right"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(questions, forKey: .questions)
        try container.encode(refined, forKey: .refined)
        try container.encode(labelled, forKey: .labelled)
        try container.encode(rightBefore, forKey: .rightBefore)
        try container.encode(rightAfter, forKey: .rightAfter)
        try container.encode(accuracyBefore, forKey: .accuracyBefore)
        try container.encode(accuracyAfter, forKey: .accuracyAfter)
        try container.encode(rightToWrong, forKey: .rightToWrong)
        try container.encode(wrongToRight, forKey: .wrongToRight)
        try container.encode(threshold, forKey: .threshold)
        try container.encode(verifiers, forKey: .verifiers)
    }
}

extension RunManifest.Refine {
    enum CodingKeys: String, CodingKey {
        case solutions, critiqued, rebalanced, filtered, chain
        case judgedWrong = "judged_wrong", passedFilters = "passed_filters", refinedRight = "refined_right", byVerifier = "by_verifier"
    }
}

extension RunManifest.Search {
    enum CodingKeys: String, CodingKey {
        case trees, simulations, nodes, merged, rollouts, kept, exhausted, budget, critics
        case stepsDrawn = "steps_drawn", emptySteps = "empty_steps", criticCalls = "critic_calls"
        case completionTokens = "completion_tokens", meanDepth = "mean_depth"
    }
}

extension RunManifest.Search.Budget {
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(simulations, forKey: .simulations)
        try container.encode(tokens, forKey: .tokens)
    }
}

extension RunManifest.Accuracy {
    enum CodingKeys: String, CodingKey {
        case labelled, majority
        case firstPath = "first_path", passAtM = "pass_at_m"
    }
}
