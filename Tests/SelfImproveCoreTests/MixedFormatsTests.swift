import Foundation
import SelfImproveCore
import Testing

@Suite("Prompts and LMSI mixed formats")
struct MixedFormatsTests {
    let prompts = PromptBuilder(exemplars: [
        Exemplar(question: "Ana has 2 pens and buys 3 more. How many pens?", reasoning: "2 + 3 = 5.", answer: "5"),
        Exemplar(question: "Ben has 10 cards and gives away 4. How many cards?", reasoning: "10 - 4 = 6.", answer: "6"),
    ])

    @Test func fourFormatsMatchTheGoldenText() {
        let examples = MixedFormats.examples(
            question: "Iris has 4 shells and finds 4 more. How many shells?",
            path: "4 + 4 = 8. The answer is 8.", answer: "8", prompts: prompts)
        #expect(examples.map(\.format) == TrainingExample.Format.mixed)
        #expect(examples[0].prompt == """
            Q: Ana has 2 pens and buys 3 more. How many pens?
            A: 2 + 3 = 5. The answer is 5.

            Q: Ben has 10 cards and gives away 4. How many cards?
            A: 10 - 4 = 6. The answer is 6.

            Q: Iris has 4 shells and finds 4 more. How many shells?
            A:
            """)
        #expect(examples[0].completion == " 4 + 4 = 8. The answer is 8.")
        #expect(examples[1].prompt == """
            Q: Ana has 2 pens and buys 3 more. How many pens?
            A: The answer is 5.

            Q: Ben has 10 cards and gives away 4. How many cards?
            A: The answer is 6.

            Q: Iris has 4 shells and finds 4 more. How many shells?
            A:
            """)
        #expect(examples[1].completion == " The answer is 8.")
        #expect(examples[2].prompt == "Q: Iris has 4 shells and finds 4 more. How many shells?\nA: Let's think step by step.")
        #expect(examples[2].completion == " 4 + 4 = 8. The answer is 8.")
        #expect(examples[3].prompt == "Q: Iris has 4 shells and finds 4 more. How many shells?\nA:")
        #expect(examples[3].completion == " The answer is 8.")
        #expect(examples[3].messages.map(\.role) == ["user", "assistant"])
        #expect(examples[3].messages[1].content == "The answer is 8.")
    }

    /// A model that goes on after its answer starts the next question the way the few-shot
    /// prompt separates exemplars; the stop sequences must cut exactly there, and never inside a
    /// training completion.
    @Test func stopSequencesEndAPathAtTheNextQuestion() throws {
        let prompt = prompts.fewShotChainOfThought("Iris has 4 shells and finds 4 more. How many shells?")
        let firstAnswer = try #require(prompt.range(of: "The answer is 5."))
        let continuation = String(prompt[firstAnswer.upperBound...])   // what follows an answer in the prompt's layout
        let cuts = PromptBuilder.stopSequences.compactMap { continuation.range(of: $0)?.lowerBound }
        #expect(cuts.min() == continuation.startIndex, "no stop sequence matches where the next question starts: \(continuation.prefix(12).debugDescription)")
        let examples = MixedFormats.examples(question: "Iris has 4 shells and finds 4 more. How many shells?",
                                             path: "4 + 4 = 8. The answer is 8.", answer: "8", prompts: prompts)
        for example in examples {
            #expect(!PromptBuilder.stopSequences.contains { example.completion.contains($0) }, "\(example.format)")
        }
    }
}
