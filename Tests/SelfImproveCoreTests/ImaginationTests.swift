import Foundation
import SelfImproveCore
import Testing

@Suite("Imagination")
struct ImaginationTests {
    @Test func questionPromptIsSeededAndEndsWithQ() {
        let questions = ["One plus one?", "Two plus two?", "Three plus three?", "Four plus four?"]
        let prompt = Imagination.questionGenerationPrompt(from: questions, count: 3, seed: 5)
        #expect(prompt == Imagination.questionGenerationPrompt(from: questions, count: 3, seed: 5))
        #expect(prompt.hasSuffix("\n\nQ:"))
        #expect(prompt.components(separatedBy: "Q: ").count - 1 == 3)
        #expect(Imagination.questionGenerationPrompt(from: [], count: 3, seed: 5) == "Q:")
    }

    @Test func generatedQuestionsAreParsedAndFiltered() {
        let text = " Lena has 5 pens and buys 2 more. How many pens does she have?\nA: 5 + 2 = 7.\n\nQ: Too short?\n\nQ: What is 3 times 4 apples?"
        #expect(Imagination.parseGeneratedQuestions(text) == [
            "Lena has 5 pens and buys 2 more. How many pens does she have?",
            "What is 3 times 4 apples?",
        ])
        #expect(Imagination.parseGeneratedQuestions("").isEmpty)
    }

    @Test func duplicatesDifferingInCaseAndPunctuationAreDropped() {
        var deduplicator = Imagination.Deduplicator(existing: ["How many apples are left?"])
        let repeated = deduplicator.insert("how many  apples are LEFT ?")
        let fresh = deduplicator.insert("How many pears are left?")
        let repeatedWithoutMark = deduplicator.insert("How many pears are left")
        #expect(!repeated)
        #expect(fresh)
        #expect(!repeatedWithoutMark)
    }

    @Test func selfGeneratedExemplarsComeFromAnsweredGreedyOutputs() {
        let exemplar = Imagination.exemplar(question: "Q?", greedyOutput: " First 2 + 3 = 5.\nSo the answer is 5.", kind: .number)
        #expect(exemplar == Exemplar(question: "Q?", reasoning: "First 2 + 3 = 5.", answer: "5"))
        #expect(Imagination.exemplar(question: "Q?", greedyOutput: "I do not know.", kind: .number) == nil)
        #expect(Imagination.exemplar(question: "Q?", greedyOutput: "The answer is 5.", kind: .number) == nil)
    }
}
