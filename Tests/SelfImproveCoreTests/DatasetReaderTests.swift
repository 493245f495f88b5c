import SelfImproveCore
import Testing

@Suite("Data set readers")
struct DatasetReaderTests {
    private func read(_ lines: [String], _ format: DatasetFormat, policy: DatasetReader<[String]>.Policy = .strict) throws(DatasetError) -> ([Question], DatasetReader<[String]>.Iterator) {
        var iterator = DatasetReader(lines: lines, format: format, source: "test.jsonl", policy: policy).makeIterator()
        var questions: [Question] = []
        while let question = try iterator.next() { questions.append(question) }
        return (questions, iterator)
    }

    @Test func gsm8kGoldComesFromTheHashLine() throws {
        let (questions, _) = try read([
            #####"{"question": "How many?", "answer": "3 + 4 = 7\n#### 1,207"}"#####,
            "",
            #####"{"id": "q2", "question": "Cost?", "answer": "#### $12"}"#####,
            #"{"question": "Unlabelled?"}"#,
        ], .gsm8k)
        #expect(questions.map(\.gold?.canonical) == ["1207", "12", nil])
        #expect(questions[0].id == "test.jsonl:1")
        #expect(questions[1].id == "q2")
    }

    @Test(arguments: [
        ("not json", "invalid JSON"),
        (#"["a list"]"#, "not a JSON object"),
        (#####"{"answer": "#### 3"}"#####, "missing field 'question'"),
        (#"{"question": 5}"#, "not a string"),
        (#"{"question": "Q?", "answer": "no hash line"}"#, "#### N"),
        (#####"{"question": "Q?", "answer": "#### lots"}"#####, "holds no number"),
    ])
    func malformedLinesNameFileAndLine(line: String, reason: String) {
        do {
            _ = try read([#"{"question": "fine"}"#, line], .gsm8k)
            Issue.record("accepted \(line)")
        } catch {
            #expect(error.source == "test.jsonl")
            #expect(error.line == 2)
            #expect(error.reason.contains(reason))
            #expect(error.description.hasPrefix("test.jsonl:2: "))
        }
    }

    @Test func skippingCountsEveryBadLineAndLosesNoGoodOne() throws {
        let (questions, iterator) = try read([
            #"{"question": "one"}"#, "garbage", #"{"question": "two"}"#, "{", #"{"question": "three"}"#,
        ], .gsm8k, policy: .skip(keepErrors: 1))
        #expect(questions.map(\.text) == ["one", "two", "three"])
        #expect(iterator.skipped == 2)
        #expect(iterator.errors.count == 1)
        #expect(iterator.errors.first?.line == 2)
    }

    @Test func multipleChoiceInEveryShape() throws {
        let (questions, _) = try read([
            #"{"question": "Sky?", "choices": ["blue", "green"], "answer": "A"}"#,
            #"{"question": "Sea?", "choices": {"B": "wet", "A": "dry"}, "answerKey": "b"}"#,
            #"{"question": "Sun?", "choices": [{"label": "a", "text": "hot"}, {"label": "b", "text": "cold"}]}"#,
        ], .multipleChoice)
        #expect(questions[0].text == "Sky?\nAnswer Choices: (A) blue (B) green")
        #expect(questions.map(\.gold?.canonical) == ["A", "B", nil])
        #expect(throws: DatasetError.self) { _ = try read([#"{"question": "Q", "choices": ["x", "y"], "answer": "E"}"#], .multipleChoice) }
    }

    @Test func inferenceLabelsInEveryShape() throws {
        let (questions, _) = try read([
            #"{"premise": "P", "hypothesis": "H", "label": "e"}"#,
            #"{"premise": "P", "hypothesis": "H", "label": 2}"#,
            #"{"premise": "P", "hypothesis": "H", "label": "neutral"}"#,
            #"{"premise": "P", "hypothesis": "H"}"#,
        ], .inference)
        #expect(questions.map(\.gold?.canonical) == ["yes", "no", "neutral", nil])
        #expect(throws: DatasetError.self) { _ = try read([#"{"premise": "P", "hypothesis": "H", "label": 7}"#], .inference) }
    }

    @Test func genericFieldsFromConfiguration() throws {
        let (questions, _) = try read([#"{"prompt": "2+2?", "target": 4}"#, #"{"prompt": "3+3?"}"#],
                                      .generic(questionField: "prompt", answerField: "target", kind: .number))
        #expect(questions.map(\.gold?.canonical) == ["4", nil])
    }
}
