/// AlphaLLM's judge critics' prompts: a process reward (is the last step of a partial answer
/// right?) and a value estimate (will the partial answer reach the right answer?), each read
/// as P(True) / (P(True) + P(False)) from one generated token. The partial answer stays on
/// one `Partial answer:` line; the question on its `Q:` line, as in every prompt of the project.
public enum StepJudgePrompts {
    /// The judge's prompt for `critic` (`process` or `value`); the model continues with " True"
    /// or " False".
    public static func prompt(for critic: ScoreWork.Critic, question: String, partial: String) -> String {
        let ask = critic == .value
            ? "Will this partial answer lead to the right final answer if it is continued?"
            : "Is the last step of this partial answer correct?"
        return "\(ask) Reply with one word: True or False.\n\n"
            + "Q: \(question)\nPartial answer: \(oneLine(partial))\nVerdict (True or False):"
    }

    /// The marker the prompt ends with (the simulator recognises the prompt by it).
    public static let verdictMarker = "Verdict (True or False):"

    /// The partial answer on one line, without the leading space a completion has.
    static func oneLine(_ text: String) -> String {
        text.split(whereSeparator: \.isNewline).joined(separator: " ").trimmingLeadingSpaces()
    }
}

extension String {
    func trimmingLeadingSpaces() -> String { String(drop { $0 == " " }) }
}
