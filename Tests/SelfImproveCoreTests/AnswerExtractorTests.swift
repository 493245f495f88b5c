import SelfImproveCore
import Testing

@Suite("Answer extraction and normalisation")
struct AnswerExtractorTests {
    @Test(arguments: [
        ("She has 3 + 4 = 7 apples. The answer is 7.", "7"),
        ("So the answer is 1,200.", "1200"),
        ("The answer is $7.00", "7"),
        ("The answer is 7.0 kg.", "7"),
        ("The answer is -3 degrees", "-3"),
        ("The answer is 3/4.", "0.75"),
        ("The answer is 2/6", "1/3"),
        ("The answer is 1 1/2 cups", "1.5"),
        ("The answer is .5", "0.5"),
        ("The answer is 0.125.", "0.125"),
        ("the ANSWER IS 12", "12"),
        ("The answer is: 42", "42"),
        ("The answer is **18**.", "18"),
        ("The answer is 5. Then someone said the answer is 6.", "6"),
        ("The answer is 4.\nQ: next question. The answer is 9", "9"),
        ("The answer is 3, 4 or 5", "3"),
        ("The answer is €1,234.50.", "1234.5"),
    ])
    func numbers(path: String, expected: String) {
        #expect(AnswerExtractor.extract(from: path, as: .number)?.canonical == expected)
    }

    @Test(arguments: [
        "",
        "No final sentence here.",
        "The answer is",
        "The answer is unknown.",
        "The answer is 5 / 0",
        String(repeating: "The answer is ", count: 10_000),
        "The answer is 99999999999999999999999999",
        "Ответ: 5. The answer is пять.",
        "🙂 The answer is 🙂",
    ])
    func pathsWithoutAnAnswerGiveNoVote(path: String) {
        #expect(AnswerExtractor.extract(from: path, as: .number) == nil)
    }

    @Test func hugeInputIsHandled() {
        let path = String(repeating: "blah 1 + 1 = 2. ", count: 200_000) + "The answer is 2."
        #expect(AnswerExtractor.extract(from: path, as: .number)?.canonical == "2")
    }

    @Test func unicodeAroundTheAnswerIsFine() {
        #expect(AnswerExtractor.extract(from: "Très bien — the answer is 12 €.", as: .number)?.canonical == "12")
        #expect(AnswerExtractor.extract(from: "The answer is −4.", as: .number)?.canonical == "-4")
    }

    @Test(arguments: [
        ("The answer is (B).", "B"), ("The answer is b", "B"), ("So the answer is C) a tree.", "C"),
        ("The answer is option D.", "D"), ("The answer is A.", "A"),
    ])
    func choices(path: String, expected: String) {
        #expect(AnswerExtractor.extract(from: path, as: .choice)?.canonical == expected)
    }

    @Test func choiceWithoutALetterGivesNoVote() {
        #expect(AnswerExtractor.extract(from: "The answer is 42.", as: .choice) == nil)
    }

    @Test(arguments: [
        ("The answer is yes.", "yes"), ("The answer is No", "no"), ("The answer is neutral.", "neutral"),
        ("The answer is entailment", "yes"), ("The answer is contradiction.", "no"),
        ("The answer is it is not possible to tell.", "neutral"), ("The answer is true", "yes"),
    ])
    func labels(path: String, expected: String) {
        #expect(AnswerExtractor.extract(from: path, as: .label)?.canonical == expected)
    }

    @Test func labelsNeedWholeWords() {
        #expect(AnswerExtractor.extract(from: "The answer is nothing useful", as: .label) == nil)
        #expect(AnswerExtractor.extract(from: "The answer is yesterday", as: .label) == nil)
    }

    @Test func textIsTrimmedLowerCasedAndUnquoted() {
        #expect(AnswerExtractor.extract(from: "The answer is  \"New   York\".", as: .text)?.canonical == "new york")
    }

    @Test func equalNumbersAreTheSameVote() {
        #expect(Answer(parsing: "7.0", as: .number) == Answer(parsing: "7", as: .number))
        #expect(Answer(parsing: "1/2", as: .number) == Answer(parsing: "0.50", as: .number))
        #expect(Answer(parsing: "$1,000", as: .number) == Answer(parsing: "1000 dollars", as: .number))
    }
}
