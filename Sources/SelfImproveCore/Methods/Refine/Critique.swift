import Foundation

/// A step-by-step critique in SCORE's "diff feedback" form (methods.md, section 3): for each
/// step of the solution, `Step i: <the step, copied>` then `Feedback: <on it>`, ending with
/// `[END]`; the last feedback states the right final answer as "The answer is X.".
public struct Critique: Sendable, Hashable {
    /// One `Step i:` entry and the feedback that follows it (nil: none followed).
    public struct Entry: Sendable, Hashable {
        public var number: Int
        public var step: String
        public var feedback: String?
    }

    public var entries: [Entry]
    /// `Feedback:` entries, counted apart from the steps (a rule compares the two counts).
    public var feedbackCount: Int

    /// Reads a critique's text (the text after `[END]` is ignored).
    public init(parsing text: String) {
        let body = text.range(of: "[END]").map { String(text[..<$0.lowerBound]) } ?? text
        var entries: [Entry] = []
        var feedbackCount = 0
        for rawLine in body.split(whereSeparator: \.isNewline) {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("Step "), let colon = line.firstIndex(of: ":"),
               let number = Int(line[line.index(line.startIndex, offsetBy: 5) ..< colon].trimmingCharacters(in: .whitespaces))
            {
                entries.append(Entry(number: number, step: line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces), feedback: nil))
            } else if line.hasPrefix("Feedback:") {
                feedbackCount += 1
                let feedback = line.dropFirst("Feedback:".count).trimmingCharacters(in: .whitespaces)
                if var last = entries.popLast() {
                    last.feedback = last.feedback.map { $0 + " " + feedback } ?? feedback
                    entries.append(last)
                }
            } else if var last = entries.popLast() {
                // A continuation line belongs to what came last: the feedback, else the step.
                if let feedback = last.feedback { last.feedback = feedback + " " + line } else { last.step += " " + line }
                entries.append(last)
            }
        }
        self.entries = entries
        self.feedbackCount = feedbackCount
    }

    /// The critique text the rebalanced set uses for a solution that is right: every step copied
    /// with "This step is correct.", the last feedback stating the answer.
    public static func allCorrect(steps: [String], answer: Answer?) -> String {
        var lines: [String] = []
        for (index, step) in steps.enumerated() {
            lines.append("Step \(index + 1): \(step)")
            let last = index == steps.count - 1
            lines.append("Feedback: This step is correct." + (last ? answer.map { " " + PromptBuilder.answerSentence($0.canonical) } ?? "" : ""))
        }
        return lines.joined(separator: "\n") + "\n[END]"
    }
}

/// SCORE's rule filters on a critique of a solution. Each rule can fail alone.
public enum CritiqueFilter {
    /// Why a critique was refused (nil in ``check(_:solution:answer:kind:)``: it passed).
    public enum Failure: String, Sendable, Hashable, CaseIterable {
        /// No `Step i:` entries at all.
        case empty = "no_steps"
        /// As many `Feedback:` entries as `Step i:` entries, and as many steps as the solution has.
        case countMismatch = "count_mismatch"
        /// Every step copied exactly from the solution, in order, numbered from 1.
        case stepNotCopied = "step_not_copied"
        /// The last feedback states the right answer ("The answer is X.").
        case wrongFinalAnswer = "wrong_final_answer"
    }

    /// Checks `critique` of `solution`.
    /// - Parameters:
    ///   - answer: The right answer, when it is known (a verified reference solution's); without
    ///     it the last rule cannot be checked and is skipped (the refinement's verification
    ///     still decides whether the pair is kept).
    /// - Returns: The first rule it fails, in the order above, or nil.
    public static func check(_ critique: Critique, solution: String, answer: Answer?, kind: AnswerKind) -> Failure? {
        let steps = SolutionSteps.split(solution)
        guard !critique.entries.isEmpty else { return .empty }
        guard critique.feedbackCount == critique.entries.count, critique.entries.count == steps.count,
              critique.entries.allSatisfy({ $0.feedback != nil })
        else { return .countMismatch }
        for (index, entry) in critique.entries.enumerated() where entry.number != index + 1 || entry.step != steps[index] {
            return .stepNotCopied
        }
        if let answer {
            let stated = critique.entries.last?.feedback.flatMap { AnswerExtractor.extract(from: $0, as: kind) }
            if stated != answer { return .wrongFinalAnswer }
        }
        return nil
    }
}
