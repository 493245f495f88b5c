import Foundation
import SelfImproveCore

/// A **simulator** of a language model for tests and load runs: it answers the project's
/// arithmetic word problems (``ArithmeticProblemGenerator``) in the prompts' format, making
/// step errors at a configurable rate so that votes disagree as they do with a real model, and
/// it waits as a latency model says. It is not a model: it reads the question with fixed
/// patterns, and anything else gets a guess.
///
/// Deterministic: the same seed, prompt and request give the same paths.
public struct SyntheticBackend: ModelBackend {
    /// How the simulator behaves.
    public struct Configuration: Sendable, Hashable {
        /// Chance that one arithmetic step comes out wrong (later steps build on the error).
        public var stepErrorRate: Double = 0.15
        /// Chance that a path ends without "The answer is ..." (no vote).
        public var noAnswerRate: Double = 0.05
        /// Time to first token, per request.
        public var timeToFirstToken: Duration = .zero
        /// Generation speed per path; zero means instant.
        public var tokensPerSecond: Double = 0
        /// Requests served at once, like a server's parallel slots; later ones queue.
        public var concurrency: Int = 64
        public var seed: UInt64 = 1
        public var modelVersion = "synthetic-v1"

        public init() {}

        /// No latency at all, for pipeline benchmarks.
        public static var instant: Configuration { Configuration() }
    }

    public let configuration: Configuration
    /// The server's slots; shared by copies of this backend.
    public let slots: ConcurrencyLimiter

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
        self.slots = ConcurrencyLimiter(limit: configuration.concurrency)
    }

    public func sample(_ request: SamplingRequest) async throws -> SamplingResponse {
        try await slots.run { try await generate(request) }
    }

    private func generate(_ request: SamplingRequest) async throws -> SamplingResponse {
        guard request.n >= 1 else { throw BackendError("n must be at least 1, got \(request.n)") }
        let question = Self.lastQuestion(in: request.prompt)
        let problem = question.flatMap(ArithmeticReader.read)
        let base = stableHash(request.prompt) ^ configuration.seed ^ (request.seed ?? 0) &* 0x9E37_79B9_7F4A_7C15
        var paths: [SampledPath] = []
        for index in 0 ..< request.n {
            var random = SplitMix64(seed: base &+ UInt64(index) &* 0xBF58_476D_1CE4_E5B9)
            let text = problem.map { solve($0, random: &random) } ?? guess(random: &random)
            let tokens = max(1, text.split(separator: " ").count * 4 / 3)
            paths.append(SampledPath(text: " " + text, completionTokens: min(tokens, request.maxTokens), finishReason: "stop"))
        }
        let slowest = paths.map(\.completionTokens).max() ?? 0
        var delay = configuration.timeToFirstToken
        if configuration.tokensPerSecond > 0 {
            delay += .milliseconds(Int(Double(slowest) / configuration.tokensPerSecond * 1000))
        }
        if delay > .zero { try await Task.sleep(for: delay) }
        return SamplingResponse(paths: paths, promptTokens: request.prompt.split(separator: " ").count * 4 / 3,
                                modelVersion: configuration.modelVersion)
    }

    /// The question after the last `Q:` of a prompt.
    static func lastQuestion(in prompt: String) -> String? {
        guard let range = prompt.range(of: "Q:", options: .backwards) else { return nil }
        var question = prompt[range.upperBound...]
        if let answer = question.range(of: "\nA:") { question = question[..<answer.lowerBound] }
        let trimmed = question.trimmingCharacters(in: .whitespacesAndNewlines)
        return trimmed.isEmpty ? nil : trimmed
    }

    private func solve(_ problem: ArithmeticReader.Problem, random: inout SplitMix64) -> String {
        var value = problem.start
        var sentences = ["\(problem.subject) starts with \(value) \(problem.things)."]
        for step in problem.steps {
            var result = step.apply(to: value)
            if random.chance(configuration.stepErrorRate) {
                result += [-3, -2, -1, 1, 2, 3][Int(random.next() % 6)]
            }
            sentences.append("\(value) \(step.symbol) \(step.operand) = \(result).")
            value = result
        }
        if random.chance(configuration.noAnswerRate) {
            return sentences.joined(separator: " ") + " I am not sure what to do next."
        }
        return sentences.joined(separator: " ") + " The answer is \(value)."
    }

    private func guess(random: inout SplitMix64) -> String {
        "Let me think. The answer is \(random.next() % 100)."
    }
}

/// Reads questions written by ``ArithmeticProblemGenerator`` back into steps.
enum ArithmeticReader {
    struct Step {
        var symbol: String
        var operand: Int

        func apply(to value: Int) -> Int {
            switch symbol {
            case "+": value + operand
            case "-": value - operand
            case "*": value * operand
            default: operand == 0 ? value : value / operand
            }
        }
    }

    struct Problem {
        var subject: String
        var things: String
        var start: Int
        var steps: [Step]
    }

    static func read(_ question: String) -> Problem? {
        guard let opening = question.firstMatch(of: /^(?<who>\w+) has (?<count>\d+) (?<things>\w+)\./),
              let start = Int(opening.output.count)
        else { return nil }
        var steps: [Step] = []
        for sentence in question.split(separator: ".").dropFirst() {
            if let match = sentence.firstMatch(of: /gets (?<n>\d+) more|finds (?<m>\d+) more/) {
                steps.append(Step(symbol: "+", operand: Int(match.output.n ?? match.output.m ?? "0") ?? 0))
            } else if let match = sentence.firstMatch(of: /gives away (?<n>\d+)/) {
                steps.append(Step(symbol: "-", operand: Int(match.output.n) ?? 0))
            } else if let match = sentence.firstMatch(of: /becomes (?<n>\d+) times/) {
                steps.append(Step(symbol: "*", operand: Int(match.output.n) ?? 1))
            } else if let match = sentence.firstMatch(of: /among (?<n>\d+) friends/) {
                steps.append(Step(symbol: "/", operand: Int(match.output.n) ?? 1))
            }
        }
        return Problem(subject: String(opening.output.who), things: String(opening.output.things), start: start, steps: steps)
    }
}
