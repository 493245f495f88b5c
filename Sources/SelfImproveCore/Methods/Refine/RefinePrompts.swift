/// SCORE's prompts (methods.md, section 3): the critique ("diff feedback": the solution to
/// check as Answer 1 beside a verified one as Answer 2, when one exists) and the refinement
/// written from a critique. The question stays on a `Q:` line of its own, as in every prompt
/// of the project.
public enum RefinePrompts {
    /// What the critique prompt asks for.
    public static let critiqueInstruction = """
        Check Answer 1 to the question step by step. Copy each step of Answer 1 exactly as "Step i: ..." \
        and follow it with "Feedback: ..." on that step; at the first wrong step, say what the right \
        result is. End the last feedback with "The answer is X." for the right final answer, then write [END].
        """

    /// The critique prompt; the model continues after its final `Step 1:`.
    public static func critique(question: String, solution: String, reference: String?) -> String {
        var prompt = critiqueInstruction + "\n\nQ: \(question)\nAnswer 1 (Incorrect): \(trimmed(solution))\n"
        if let reference { prompt += "Answer 2 (Correct): \(trimmed(reference))\n" }
        return prompt + "Critique:\nStep 1:"
    }

    /// The critique's full text from what the model wrote after the prompt's `Step 1:`.
    public static func critiqueText(completion: String) -> String {
        "Step 1:" + completion
    }

    /// The refinement prompt; the model continues with a corrected solution.
    public static func refinement(question: String, solution: String, critique: String) -> String {
        "Q: \(question)\nAnswer (Incorrect): \(trimmed(solution))\nCritique:\n\(critique)\n"
            + "Write the corrected solution step by step, ending with \"The answer is X.\"\nCorrected answer:"
    }

    /// The refiner's prompt at training and inference time: no reference and no label (the
    /// refiner sees what it will see when used); it continues with the critique after `Step 1:`.
    public static func selfCritique(question: String, solution: String) -> String {
        "Q: \(question)\nAnswer: \(trimmed(solution))\nCritique:\nStep 1:"
    }

    /// A judge's prompt: the model answers " correct" or " incorrect" (one token is read).
    public static func verification(question: String, solution: String) -> String {
        "Is the answer to the question correct or incorrect? Reply with one word: correct or incorrect.\n\n"
            + "Q: \(question)\nAnswer: \(trimmed(solution))\nJudgement (correct or incorrect):"
    }

    /// The training examples of one critiqued path: the refiner's (when `refinement` was kept)
    /// and the verifier's label of the path.
    public static func examples(question: String, solution: String, right: Bool, critique: String?, refinement: String?) -> [TrainingExample] {
        var examples: [TrainingExample] = []
        if let critique, let refinement {
            let body = critique.hasPrefix("Step 1:") ? String(critique.dropFirst("Step 1:".count)) : " " + critique
            examples.append(TrainingExample(format: .refine, prompt: selfCritique(question: question, solution: solution),
                                            completion: body + "\nCorrected answer:" + refinement))
        }
        examples.append(TrainingExample(format: .verifier, prompt: verification(question: question, solution: solution),
                                        completion: right ? " correct" : " incorrect"))
        return examples
    }

    /// Stop strings of a critique: its end marker, or the start of another question.
    public static let critiqueStop = ["[END]", "\nQ:"]

    private static func trimmed(_ text: String) -> String {
        String(text.drop(while: { $0 == " " }))
    }
}
