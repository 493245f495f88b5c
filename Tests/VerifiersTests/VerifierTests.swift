import SelfImproveCore
import Testing
import Verifiers

@Suite("Verifier tier")
struct VerifierTests {
    let question = Question(id: "q", text: "How many?", kind: .number)

    @Test(arguments: [
        ("2 + 3 = 5. 5 * 4 = 20. The answer is 20.", 1.0),
        ("2 + 3 = 6. 6 * 4 = 24. The answer is 24.", 0.5),
        ("10 - 4 = 5. 5 / 0 = 1.", 0.0),
        ("1,200 + 300 = 1,500 and 7.5 × 2 = 15 and 9 ÷ 3 = 3 and 4 x 4 = 16", 1.0),
        ("12 / 5 = 2.4. -3 + 1 = -2.", 1.0),
        ("No arithmetic here. The answer is 3.", 0.5),
    ])
    func arithmeticStepsAreRecomputed(path: String, expected: Double) async throws {
        #expect(try await ArithmeticStepVerifier().score(path, for: question) == expected)
    }

    @Test func theGoldOracleScoresTheAnswerAgainstTheLabel() async throws {
        let oracle = GoldAnswerVerifier()
        let labelled = Question(id: "q", text: "2 + 2?", kind: .number, gold: Answer(kind: .number, canonical: "4"))
        #expect(try await oracle.score(" 2 + 2 = 4. The answer is 4.", for: labelled) == 1)
        #expect(try await oracle.score(" 2 + 2 = 4. The answer is 4.0.", for: labelled) == 1, "compared as normalised answers")
        #expect(try await oracle.score(" 2 + 2 = 5. The answer is 5.", for: labelled) == 0)
        #expect(try await oracle.score(" I do not know.", for: labelled) == 0)
        let unlabelled = Question(id: "q", text: "2 + 2?", kind: .number)
        #expect(try await oracle.score(" The answer is 4.", for: unlabelled) == 0, "no label: never right")
    }

    @Test func answerFormatNeedsAnExtractableAnswer() async throws {
        #expect(try await AnswerFormatVerifier().score("So the answer is 4.", for: question) == 1)
        #expect(try await AnswerFormatVerifier().score("I give up.", for: question) == 0)
    }

    @Test func theDefaultChainAveragesAndKeepsEachPart() async throws {
        let scores = try await VerifierChain.default.score(group: [
            "2 + 2 = 4. The answer is 4.", "2 + 2 = 5. The answer is 5.", "I give up.",
        ], for: question)
        #expect(scores.map(\.combined) == [1.0, 0.5, 0.25])
        #expect(scores[1].parts == ["answer_format": 1, "arithmetic_steps": 0])
    }

    struct Wild: PathVerifier {
        let name = "wild"
        func score(_ path: String, for question: Question) async throws -> Double { .infinity }
    }

    @Test func outOfRangeScoresAreClampedAndWeightsApply() async throws {
        let chain = VerifierChain([.init(Wild(), weight: 3), .init(AnswerFormatVerifier(), weight: 1)])
        let score = try await chain.score("The answer is 1.", for: question)
        #expect(score.parts["wild"] == 0)
        #expect(score.combined == 0.25)
    }

    @Test(arguments: ["Ana has 5. 5 + 2 = 7. The answer is 7.", "5 * 3 = 14. The answer is 14.", "No idea.", "The answer is seven."])
    func aKnownAnswerScoresLikeExtractingIt(_ path: String) async throws {
        let answer = AnswerExtractor.extract(from: path, as: .number)
        let extracted = try await VerifierChain.default.score(path, for: question)
        let known = try await VerifierChain.default.score(path, for: question, answer: answer)
        #expect(extracted == known)
    }
}
