import SelfImproveCore

/// The configured verifiers of the tier, combined into one score per path: the weighted mean of
/// their scores (weights need not sum to 1). Each verifier's own score is kept for the record.
public struct VerifierChain: Sendable {
    public struct Entry: Sendable {
        public var verifier: any PathVerifier
        public var weight: Double

        public init(_ verifier: any PathVerifier, weight: Double = 1) {
            self.verifier = verifier
            self.weight = weight
        }
    }

    /// One path's scores.
    public struct Scores: Sendable, Hashable {
        public var combined: Double
        /// Each verifier's score by name.
        public var parts: [String: Double]
    }

    public var entries: [Entry] {
        didSet { isAnswerFormat = entries.map { $0.verifier is AnswerFormatVerifier } }
    }
    /// Per entry, whether it is the answer-format check (which a known answer settles): found
    /// once, not with a dynamic cast per path.
    private var isAnswerFormat: [Bool]

    public init(_ entries: [Entry]) {
        self.entries = entries
        self.isAnswerFormat = entries.map { $0.verifier is AnswerFormatVerifier }
    }

    /// The default tier: the answer-format check and the arithmetic-step checker, equally weighted.
    public static var `default`: VerifierChain {
        VerifierChain([Entry(AnswerFormatVerifier()), Entry(ArithmeticStepVerifier())])
    }

    /// Scores one path with every verifier. Scores outside [0, 1] are clamped; a verifier that
    /// throws fails the whole scoring (the caller decides whether to retry elsewhere).
    public func score(_ path: String, for question: Question) async throws -> Scores {
        try await score(path, for: question, knownAnswer: nil)
    }

    /// Scores one path whose answer the caller has already extracted (nil: none), so that
    /// ``AnswerFormatVerifier`` does not parse the path a second time.
    public func score(_ path: String, for question: Question, answer: Answer?) async throws -> Scores {
        try await score(path, for: question, knownAnswer: .some(answer))
    }

    /// The combined score alone of a path whose answer the caller has already extracted: what
    /// the verifier tier sends (it skips building each verifier's part, per path).
    public func combinedScore(_ path: String, for question: Question, answer: Answer?) async throws -> Double {
        try await score(path, for: question, knownAnswer: .some(answer), keepParts: false).combined
    }

    private func score(_ path: String, for question: Question, knownAnswer: Answer??, keepParts: Bool = true) async throws -> Scores {
        var parts: [String: Double] = [:]
        var weighted = 0.0, totalWeight = 0.0
        for (entry, isAnswerFormat) in zip(entries, isAnswerFormat) {
            let raw: Double
            if let knownAnswer, isAnswerFormat {
                raw = knownAnswer == nil ? 0 : 1
            } else {
                raw = try await entry.verifier.score(path, for: question)
            }
            let value = raw.isFinite ? min(1, max(0, raw)) : 0
            if keepParts { parts[entry.verifier.name] = value }
            let weight = max(0, entry.weight)
            weighted += weight * value
            totalWeight += weight
        }
        return Scores(combined: totalWeight > 0 ? weighted / totalWeight : 0, parts: parts)
    }

    /// Scores every path of a group, in order.
    public func score(group paths: [String], for question: Question) async throws -> [Scores] {
        var scores: [Scores] = []
        scores.reserveCapacity(paths.count)
        for path in paths { scores.append(try await score(path, for: question)) }
        return scores
    }
}
