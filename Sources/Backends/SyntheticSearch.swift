import Foundation
import SelfImproveCore

/// The simulator's side of a tree search: it continues a partial answer (the text after the
/// prompt's last `A:`) step by step, each new step right or wrong by construction, honours
/// stop strings as an OpenAI server does (the text ends before the first stop string, which is
/// left out), and judges partial answers for AlphaLLM's process and value critics.
extension SyntheticBackend {
    /// What a partial answer written in the simulator's form says: the value it reached and
    /// how many of the problem's steps it took, and whether each was right.
    struct PartialSolution {
        var value: Int
        var stepsTaken: Int
        /// Per written step (the opening sentence first): whether it is right.
        var stepsRight: [Bool]
    }

    /// Reads `partial` against `problem`: the opening sentence (`X starts with N things.`) and
    /// each equation `a op b = r.` in order. Nil when it is not in the simulator's form.
    static func read(partial: String, problem: ArithmeticReader.Problem) -> PartialSolution? {
        let sentences = partial.split(separator: ".").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        var solution = PartialSolution(value: problem.start, stepsTaken: 0, stepsRight: [])
        var expected = problem.start
        for sentence in sentences {
            if let range = sentence.range(of: " starts with ") {
                let number = Int(sentence[range.upperBound...].prefix { $0.isASCIIDigit })
                guard let number else { return nil }
                solution.value = number
                solution.stepsRight.append(number == problem.start)
                continue
            }
            let sides = sentence.split(separator: "=").map { $0.trimmingCharacters(in: .whitespaces) }
            guard sides.count == 2, let result = Int(sides[1]) else { continue }
            let terms = sides[0].split(separator: " ")
            guard terms.count == 3, let left = Int(terms[0]), let right = Int(terms[2]) else { return nil }
            var correct = false
            if solution.stepsTaken < problem.steps.count {
                let step = problem.steps[solution.stepsTaken]
                let symbol = String(UnicodeScalar(step.symbol))
                expected = step.apply(to: expected)
                correct = left == solution.value && String(terms[1]) == symbol && right == step.operand && result == step.apply(to: left)
            }
            solution.stepsRight.append(correct && result == expected)
            solution.value = result
            solution.stepsTaken += 1
        }
        return solution
    }

    /// The text after the prompt's last `A:` (empty when the prompt ends there).
    static func partialAnswer(in prompt: String) -> String {
        guard let marker = prompt.range(of: "\nA:", options: .backwards) else { return "" }
        return String(prompt[marker.upperBound...])
    }

    /// The rest of a solution after `partial`, with a step error rate, in the form ``solve``
    /// writes (the opening sentence when the partial answer has none).
    func continuation(of partial: String, problem: ArithmeticReader.Problem, errorRate: Double, random: inout SplitMix64) -> String? {
        guard let state = Self.read(partial: partial, problem: problem) else { return nil }
        var text = ""
        var value = state.value
        if state.stepsRight.isEmpty {
            text += " \(problem.subject) starts with \(problem.start) \(problem.things)."
            value = problem.start
        }
        for step in problem.steps.dropFirst(state.stepsTaken) {
            var result = step.apply(to: value)
            if random.chance(errorRate) { result += [-3, -2, -1, 1, 2, 3][Int(random.next() % 6)] }
            text += " \(value) \(String(UnicodeScalar(step.symbol))) \(step.operand) = \(result)."
            value = result
        }
        if random.chance(configuration.noAnswerRate) { return text + " I am not sure what to do next." }
        return text + " The answer is \(value)."
    }

    /// `text` cut before the first of `stop` (as OpenAI servers return it), and whether it was cut.
    static func applyStop(_ text: String, stop: [String]) -> (text: String, cut: Bool) {
        var end = text.endIndex
        for string in stop where !string.isEmpty {
            if let range = text.range(of: string), range.lowerBound < end { end = range.lowerBound }
        }
        return (String(text[..<end]), end != text.endIndex)
    }

    /// A step judge's one-token verdict on a partial answer: the process critic asks whether
    /// its last step is right, the value critic whether every step so far is (so it can still
    /// reach the answer); wrong with `judgeErrorRate`; the verdict gets 0.8 and the other 0.2.
    func stepVerdict(prompt: String, random: inout SplitMix64) -> SampledPath {
        let lines = prompt.split(separator: "\n", omittingEmptySubsequences: false)
        let question = lines.last { $0.hasPrefix("Q: ") }.map { String($0.dropFirst(3)) }
        let partial = lines.last { $0.hasPrefix("Partial answer: ") }.map { String($0.dropFirst(16)) } ?? ""
        var right = false
        if let problem = question.flatMap(ArithmeticReader.read), let state = Self.read(partial: partial, problem: problem) {
            right = prompt.hasPrefix("Will this") ? !state.stepsRight.contains(false) : state.stepsRight.last ?? false
        }
        if random.chance(configuration.judgeErrorRate) { right.toggle() }
        var path = SampledPath(text: right ? " True" : " False", completionTokens: 1, finishReason: "length")
        path.firstTokenAlternatives = [" True": log(right ? 0.8 : 0.2), " False": log(right ? 0.2 : 0.8)]
        return path
    }
}
