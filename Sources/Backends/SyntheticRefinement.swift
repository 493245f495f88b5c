import Foundation
import SelfImproveCore

/// Which of SCORE's prompts (``RefinePrompts``) the simulator was given, with what it reads
/// from it.
enum SimulatedRefineTask {
    /// A critique of `solution` (the prompt ends with `Critique:\nStep 1:`).
    case critique(question: String, solution: String)
    /// A refinement written from a critique (the prompt ends with `Corrected answer:`).
    case refinement(question: String)
    /// A judge's verdict on `solution` (the prompt ends with `Judgement (correct or incorrect):`).
    case judgement(question: String, solution: String)

    init?(prompt: String) {
        if prompt.hasSuffix("Critique:\nStep 1:") {
            guard let question = Self.line(after: "Q: ", in: prompt),
                  let solution = Self.line(after: "Answer 1 (Incorrect): ", in: prompt) ?? Self.line(after: "Answer: ", in: prompt)
            else { return nil }
            self = .critique(question: question, solution: solution)
        } else if prompt.hasSuffix("Judgement (correct or incorrect):") {
            guard let question = Self.line(after: "Q: ", in: prompt), let solution = Self.line(after: "Answer: ", in: prompt) else { return nil }
            self = .judgement(question: question, solution: solution)
        } else if prompt.hasSuffix("Corrected answer:") {
            guard let question = Self.line(after: "Q: ", in: prompt) else { return nil }
            self = .refinement(question: question)
        } else {
            return nil
        }
    }

    var question: String {
        switch self {
        case let .critique(question, _), let .refinement(question), let .judgement(question, _): question
        }
    }

    /// The rest of the last line that starts with `marker`.
    private static func line(after marker: String, in prompt: String) -> String? {
        let lines = prompt.split(separator: "\n", omittingEmptySubsequences: false)
        guard let line = lines.last(where: { $0.hasPrefix(marker) }) else { return nil }
        return String(line.dropFirst(marker.count))
    }
}

extension SyntheticBackend {
    /// A judge's one-token verdict: " correct" when the solution's answer is the problem's
    /// (worked out again), " incorrect" otherwise, wrong with `judgeErrorRate`; the first-token
    /// alternatives give the verdict 0.8 and the other 0.2.
    func judgement(of solution: String, problem: ArithmeticReader.Problem?, random: inout SplitMix64) -> SampledPath {
        var right = false
        if let problem {
            let value = problem.steps.reduce(problem.start) { $1.apply(to: $0) }
            right = AnswerExtractor.extract(from: solution, as: .number)?.canonical == String(value)
        }
        if random.chance(configuration.judgeErrorRate) { right.toggle() }
        var path = SampledPath(text: right ? " correct" : " incorrect", completionTokens: 1, finishReason: "length")
        path.firstTokenAlternatives = [" correct": log(right ? 0.8 : 0.2), " incorrect": log(right ? 0.2 : 0.8)]
        return path
    }

    /// A critique of a solution in SCORE's form, written as the prompt asks: every step copied,
    /// feedback on each (the first wrong one named with the right result), the right answer in
    /// the last feedback. With `critiqueErrorRate` it breaks one rule filter, so that the filters
    /// have something to refuse. Returned as the text after the prompt's `Step 1:` (the server
    /// stops at `[END]` and leaves it out).
    func critique(of solution: String, problem: ArithmeticReader.Problem?, random: inout SplitMix64) -> (String, Int) {
        let steps = SolutionSteps.split(solution)
        var feedback: [String] = []
        var value = problem?.start ?? 0
        var arithmetic = 0
        var wrongSeen = false
        for step in steps {
            if let problem, step.contains(" = "), arithmetic < problem.steps.count {
                let right = problem.steps[arithmetic].apply(to: value)
                let written = Int(step.split(separator: "=").last?.trimmingCharacters(in: .whitespaces).dropLast() ?? "")
                let symbol = Character(UnicodeScalar(problem.steps[arithmetic].symbol))
                let corrected = "\(value) \(symbol) \(problem.steps[arithmetic].operand) = \(right)."
                if written == right, !wrongSeen {
                    feedback.append("This step is correct.")
                } else if !wrongSeen {
                    feedback.append("This step is wrong: \(corrected)")
                    wrongSeen = true
                } else {
                    feedback.append("This step builds on the error; it should be \(corrected)")
                }
                value = right
                arithmetic += 1
            } else {
                feedback.append("This step is correct.")
            }
        }
        if !feedback.isEmpty {
            let answer = problem.map { _ in PromptBuilder.answerSentence(String(value)) } ?? "The answer is unknown."
            feedback[feedback.count - 1] = wrongSeen ? answer : "This step is correct. " + answer
        }
        var copied = steps
        if random.chance(configuration.critiqueErrorRate), !steps.isEmpty {
            switch random.next() % 3 {
            case 0: feedback.removeLast()                                   // a feedback left out
            case 1: copied[0] = copied[0].replacingOccurrences(of: " ", with: "  ")   // a step not copied
            default: feedback[feedback.count - 1] = PromptBuilder.answerSentence(String(value + 1))   // the wrong answer
            }
        }
        var lines: [String] = []
        for (index, step) in copied.enumerated() {
            lines.append(index == 0 ? " \(step)" : "Step \(index + 1): \(step)")
            if index < feedback.count { lines.append("Feedback: \(feedback[index])") }
        }
        let text = lines.joined(separator: "\n")
        return (text, Self.wordCount(text))
    }
}
