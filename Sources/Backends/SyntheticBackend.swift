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
        /// Chance that a critique (SCORE's prompts) breaks one of the rule filters: a feedback
        /// left out, a step not copied exactly, or the wrong final answer, one of the three.
        public var critiqueErrorRate: Double = 0.2
        /// The step error rate of refinements written from a critique.
        public var refinementStepErrorRate: Double = 0.05
        /// Chance that a judge's verdict (SCORE's and AlphaLLM's judge prompt) is the wrong one.
        public var judgeErrorRate: Double = 0.1
        /// Time to first token, per request.
        public var timeToFirstToken: Duration = .zero
        /// Generation speed per path; zero means instant.
        public var tokensPerSecond: Double = 0
        /// Requests served at once, like a server's parallel slots; later ones queue.
        public var concurrency: Int = 64
        public var seed: UInt64 = 1
        public var modelVersion = "synthetic-v1"
        /// The ``SyntheticModel`` file the settings above came from, if any.
        public var modelPath: String?

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
        let task = SimulatedRefineTask(prompt: request.prompt)
        let question = task?.question ?? Self.lastQuestion(in: request.prompt)
        let problem = question.flatMap(ArithmeticReader.read)
        let base = stableHash(request.prompt) ^ configuration.seed ^ (request.seed ?? 0) &* 0x9E37_79B9_7F4A_7C15
        var paths: [SampledPath] = []
        // The simulator writes no line breaks: only stop strings without one can match.
        let stops = request.stop.filter { !$0.contains("\n") }
        for index in 0 ..< request.n {
            var random = SplitMix64(seed: base &+ UInt64(index) &* 0xBF58_476D_1CE4_E5B9)
            if task == nil, Self.asksForAQuestion(request.prompt) {
                let text = Self.imaginedQuestion(prompt: request.prompt, random: &random)
                paths.append(SampledPath(text: text, completionTokens: max(1, Self.wordCount(text) * 4 / 3), finishReason: "stop"))
                continue
            }
            if case let .judgement(_, solution)? = task {
                paths.append(judgement(of: solution, problem: problem, random: &random))
                continue
            }
            if case .none = task, request.prompt.hasSuffix(StepJudgePrompts.verdictMarker) {
                paths.append(stepVerdict(prompt: request.prompt, random: &random))
                continue
            }
            var (text, words): (String, Int)
            switch task {
            case let .critique(_, solution)?:
                (text, words) = critique(of: solution, problem: problem, random: &random)
            case .refinement?, .judgement?:
                (text, words) = problem.map { solve($0, errorRate: configuration.refinementStepErrorRate, random: &random) } ?? guess(random: &random)
            case nil:
                let partial = Self.partialAnswer(in: request.prompt)
                if !partial.isEmpty, let problem, let rest = continuation(of: partial, problem: problem, errorRate: configuration.stepErrorRate, random: &random) {
                    (text, words) = (rest, Self.wordCount(rest))
                } else {
                    (text, words) = problem.map { solve($0, errorRate: configuration.stepErrorRate, random: &random) } ?? guess(random: &random)
                }
            }
            if !stops.isEmpty, case (let cut, true) = Self.applyStop(text, stop: stops) {
                (text, words) = (cut, Self.wordCount(cut))
            }
            let tokens = max(1, words * 4 / 3)
            paths.append(SampledPath(text: text, completionTokens: min(tokens, request.maxTokens), finishReason: "stop"))
        }
        let slowest = paths.map(\.completionTokens).max() ?? 0
        var delay = configuration.timeToFirstToken
        if configuration.tokensPerSecond > 0 {
            delay += .milliseconds(Int(Double(slowest) / configuration.tokensPerSecond * 1000))
        }
        if delay > .zero { try await Task.sleep(for: delay) }
        return SamplingResponse(paths: paths, promptTokens: Self.wordCount(request.prompt) * 4 / 3,
                                modelVersion: configuration.modelVersion)
    }

    /// Whether the prompt asks for a new question (LMSI's imagination prompt: questions, then
    /// a bare `Q:`).
    static func asksForAQuestion(_ prompt: String) -> Bool {
        var end = prompt.endIndex
        while end > prompt.startIndex, prompt[prompt.index(before: end)] == " " { end = prompt.index(before: end) }
        return prompt[..<end].hasSuffix("Q:")
    }

    /// A question written after an imagination prompt, as a small model writes them: mostly a
    /// new problem of the generator's kind (1 to 4 steps), sometimes a copy of a question the
    /// prompt shows (15%), sometimes no question at all (5%).
    static func imaginedQuestion(prompt: String, random: inout SplitMix64) -> String {
        let roll = Double(random.next() >> 11) / Double(1 << 53)
        let shown = prompt.components(separatedBy: "Q:").dropFirst()
            .map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.filter { !$0.isEmpty }
        if roll < 0.15, !shown.isEmpty {
            return " " + shown[Int(random.next(upTo: UInt64(shown.count)))]
        }
        if roll < 0.20 { return " I like to count things." }
        var generator = ArithmeticProblemGenerator(seed: random.next())
        return " " + generator.next().question
    }

    /// The question after the last `Q:` of a prompt, up to its `A:` line (byte scanning: the
    /// simulator serves benchmark loads).
    public static func lastQuestion(in prompt: String) -> String? {
        var prompt = prompt
        return prompt.withUTF8 { lastQuestion(in: $0) }
    }

    private static func lastQuestion(in bytes: UnsafeBufferPointer<UInt8>) -> String? {
        let q = UInt8(ascii: "Q"), a = UInt8(ascii: "A"), colon = UInt8(ascii: ":"), newline = UInt8(ascii: "\n")
        var start = bytes.count - 2
        while start >= 0, !(bytes[start] == q && bytes[start + 1] == colon) { start -= 1 }
        guard start >= 0 else { return nil }
        var begin = start + 2
        var end = begin
        while end < bytes.count, !(bytes[end] == newline && end + 2 < bytes.count && bytes[end + 1] == a && bytes[end + 2] == colon) { end += 1 }
        while begin < end, bytes[begin] == 0x20 || bytes[begin] == newline || bytes[begin] == 0x09 || bytes[begin] == 0x0D { begin += 1 }
        while end > begin, bytes[end - 1] == 0x20 || bytes[end - 1] == newline || bytes[end - 1] == 0x09 || bytes[end - 1] == 0x0D { end -= 1 }
        return end > begin ? String(decoding: UnsafeBufferPointer(rebasing: bytes[begin ..< end]), as: UTF8.self) : nil
    }

    /// Words separated by spaces, counted on the UTF-8 bytes.
    static func wordCount(_ text: String) -> Int {
        var count = 0
        var inWord = false
        for byte in text.utf8 {
            if byte == 0x20 || byte == 0x0A {
                inWord = false
            } else if !inWord {
                inWord = true
                count += 1
            }
        }
        return count
    }

    /// A worked solution (with a leading space, as a completion after `A:` has) and its word
    /// count. Written as ASCII bytes, counting words as they are written: the simulator serves
    /// benchmark loads, where building sentences as strings and counting afterwards cost more
    /// than the rest of the sampler's work.
    private func solve(_ problem: ArithmeticReader.Problem, errorRate: Double, random: inout SplitMix64) -> (String, Int) {
        var value = problem.start
        var text: [UInt8] = []
        text.reserveCapacity(64 + problem.subject.utf8.count + problem.things.utf8.count + 48 * problem.steps.count)
        // " <subject> starts with <value> <things>." (subject and things are single words)
        text.append(0x20)
        text.append(contentsOf: problem.subject.utf8)
        text.append(" starts with ")
        text.append(decimal: value)
        text.append(0x20)
        text.append(contentsOf: problem.things.utf8)
        text.append(0x2E)
        var words = 5
        for step in problem.steps {
            var result = step.apply(to: value)
            if random.chance(errorRate) {
                result += [-3, -2, -1, 1, 2, 3][Int(random.next() % 6)]
            }
            // " <value> <op> <operand> = <result>."
            text.append(0x20)
            text.append(decimal: value)
            text.append(0x20)
            text.append(step.symbol)
            text.append(0x20)
            text.append(decimal: step.operand)
            text.append(" = ")
            text.append(decimal: result)
            text.append(0x2E)
            words += 5
            value = result
        }
        if random.chance(configuration.noAnswerRate) {
            text.append(" I am not sure what to do next.")
            return (String(decoding: text, as: UTF8.self), words + 8)
        }
        text.append(" The answer is ")
        text.append(decimal: value)
        text.append(0x2E)
        return (String(decoding: text, as: UTF8.self), words + 4)
    }

    private func guess(random: inout SplitMix64) -> (String, Int) {
        (" Let me think. The answer is \(random.next() % 100).", 7)
    }
}

/// Reads questions written by ``ArithmeticProblemGenerator`` back into steps.
enum ArithmeticReader {
    struct Step {
        /// `+`, `-`, `*` or `/`, as an ASCII byte.
        var symbol: UInt8
        var operand: Int

        func apply(to value: Int) -> Int {
            switch symbol {
            case UInt8(ascii: "+"): value + operand
            case UInt8(ascii: "-"): value - operand
            case UInt8(ascii: "*"): value * operand
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

    /// Reads a problem in the generator's wording (`X has N things.`, then `gets N more`,
    /// `finds N more`, `gives away N`, `becomes N times`, `among N friends`). Word matching,
    /// not `Regex`: the simulator answers tens of thousands of requests a second in benchmarks.
    static func read(_ question: String) -> Problem? {
        var sentences = question.split(separator: ".", omittingEmptySubsequences: false)[...]
        guard let first = sentences.popFirst(), sentences.count >= 1 else { return nil }
        let opening = first.split(separator: " ", omittingEmptySubsequences: false)
        guard opening.count == 4, opening[1] == "has", let start = Int(opening[2]),
              opening[0].allSatisfy(\.isWordCharacter), !opening[0].isEmpty,
              opening[3].allSatisfy(\.isWordCharacter), !opening[3].isEmpty
        else { return nil }
        var steps: [Step] = []
        for sentence in sentences {
            let words = sentence.split(separator: " ")
            /// The number after `index` followed by a word starting with `next` (if given).
            func number(after index: Int, then next: String?) -> Int? {
                guard index + 1 < words.count, let value = Int(words[index + 1].prefix(while: \.isASCIIDigit)),
                      !words[index + 1].isEmpty, words[index + 1].first!.isASCIIDigit
                else { return nil }
                if let next { guard index + 2 < words.count, words[index + 2].hasPrefix(next) else { return nil } }
                return value
            }
            func find(_ keys: [String], then next: String?, offset: Int = 0) -> Int? {
                for index in words.indices where keys.contains(String(words[index])) {
                    if offset == 1 {
                        guard index + 1 < words.count, words[index + 1] == "away" else { continue }
                    }
                    if let value = number(after: index + offset, then: next) { return value }
                }
                return nil
            }
            if let amount = find(["gets", "finds"], then: "more") {
                steps.append(Step(symbol: UInt8(ascii: "+"), operand: amount))
            } else if let amount = find(["gives"], then: nil, offset: 1) {
                steps.append(Step(symbol: UInt8(ascii: "-"), operand: amount))
            } else if let factor = find(["becomes"], then: "times") {
                steps.append(Step(symbol: UInt8(ascii: "*"), operand: factor))
            } else if let divisor = find(["among"], then: "friends") {
                steps.append(Step(symbol: UInt8(ascii: "/"), operand: divisor))
            }
        }
        return Problem(subject: String(opening[0]), things: String(opening[3]), start: start, steps: steps)
    }
}

extension Character {
    var isWordCharacter: Bool { isLetter || isNumber || self == "_" }
    var isASCIIDigit: Bool { ("0" ... "9").contains(self) }
}

extension [UInt8] {
    fileprivate mutating func append(_ text: StaticString) {
        text.withUTF8Buffer { append(contentsOf: $0) }
    }

    /// `value` in decimal (a small string: no allocation).
    fileprivate mutating func append(decimal value: Int) {
        append(contentsOf: String(value).utf8)
    }
}
