import Foundation

/// LMSI's imagination: self-generated questions and self-generated exemplars.
public enum Imagination {
    /// A prompt that shows `count` existing questions, chosen and ordered at random (seeded),
    /// as `Q: ...` blocks and ends with `Q:` so the model writes a new question.
    public static func questionGenerationPrompt(from questions: [String], count: Int, seed: UInt64) -> String {
        var random = SplitMix64(seed: seed)
        var pool = questions
        var chosen: [String] = []
        while chosen.count < count, !pool.isEmpty {
            chosen.append(pool.remove(at: Int(random.next(upTo: UInt64(pool.count)))))
        }
        return chosen.map { "Q: \($0)" }.joined(separator: "\n\n") + (chosen.isEmpty ? "Q:" : "\n\nQ:")
    }

    /// The questions in a model's continuation of ``questionGenerationPrompt(from:count:seed:)``:
    /// the text up to the first answer (`A:`), then any further `Q:` blocks; each trimmed, and
    /// only those that read as a question (end with `?`, at least three words).
    public static func parseGeneratedQuestions(_ text: String) -> [String] {
        var questions: [String] = []
        let blocks = ("Q:" + text).components(separatedBy: "Q:").dropFirst()
        for block in blocks {
            var candidate = block
            if let answer = candidate.range(of: "\nA:") ?? candidate.range(of: "A:") { candidate = String(candidate[..<answer.lowerBound]) }
            let trimmed = candidate.split(whereSeparator: \.isNewline).joined(separator: " ")
                .split(separator: " ").joined(separator: " ")
            if trimmed.hasSuffix("?"), trimmed.split(separator: " ").count >= 3 {
                questions.append(trimmed)
            }
        }
        return questions
    }

    /// The key two questions share when they differ only in case, spacing and punctuation.
    public static func normalizedKey(_ question: String) -> String {
        String(question.lowercased().map { $0.isLetter || $0.isNumber ? $0 : " " })
            .split(separator: " ").joined(separator: " ")
    }

    /// Keeps the first of every set of questions with the same ``normalizedKey(_:)``.
    public struct Deduplicator: Sendable {
        private var seen: Set<String> = []

        public init(existing: [String] = []) {
            for question in existing { seen.insert(normalizedKey(question)) }
        }

        /// Whether `question` is new (and remembers it).
        public mutating func insert(_ question: String) -> Bool {
            seen.insert(normalizedKey(question)).inserted
        }
    }

    /// A self-generated exemplar from a greedy zero-shot output (`A: Let's think step by step.`):
    /// the output's reasoning up to its answer sentence, and the answer. Nil if the output states
    /// no answer of `kind`.
    public static func exemplar(question: String, greedyOutput: String, kind: AnswerKind) -> Exemplar? {
        guard let answer = AnswerExtractor.extract(from: greedyOutput, as: kind),
              let marker = greedyOutput.range(of: AnswerExtractor.marker, options: [.caseInsensitive, .backwards])
        else { return nil }
        var reasoning = String(greedyOutput[..<marker.lowerBound]).trimmingCharacters(in: .whitespacesAndNewlines)
        for prefix in ["So", "so", "Therefore,", "Thus,"] where reasoning.hasSuffix(prefix) {
            reasoning = String(reasoning.dropLast(prefix.count)).trimmingCharacters(in: .whitespaces)
        }
        guard !reasoning.isEmpty else { return nil }
        return Exemplar(question: question, reasoning: reasoning.split(whereSeparator: \.isNewline).joined(separator: " "), answer: answer.canonical)
    }
}
