import Foundation

/// How the lines of a JSONL data set map to questions.
public enum DatasetFormat: Sendable, Hashable {
    /// GSM8K: `question`, and `answer` whose last line is `#### N` (commas and `$` stripped).
    case gsm8k
    /// Multiple choice (OpenBookQA-like): `question`; `choices` as a list of strings, a
    /// `{"A": ...}` object, or `[{"label": "A", "text": ...}]`; optional `answer` letter
    /// (`answerKey` also accepted).
    case multipleChoice
    /// Inference (ANLI-like): `premise`, `hypothesis`, optional `label` (`e`/`n`/`c`, words,
    /// or 0/1/2 for entailment/neutral/contradiction).
    case inference
    /// Any JSONL: the names of the question and (optional) answer fields, and the answer kind.
    case generic(questionField: String, answerField: String?, kind: AnswerKind)

    /// The answer kind questions of this format have.
    public var kind: AnswerKind {
        switch self {
        case .gsm8k: .number
        case .multipleChoice: .choice
        case .inference: .label
        case let .generic(_, _, kind): kind
        }
    }

    /// Decodes one line; nil for a blank line.
    /// - Throws: ``DatasetError`` naming the source, the line and what is wrong.
    public func decode(_ line: String, source: String, lineNumber: Int) throws(DatasetError) -> Question? {
        guard line.contains(where: { !$0.isWhitespace }) else { return nil }
        // JSON allows surrounding whitespace, so the line goes to the parser as it is.
        let trimmed = line
        func fail(_ reason: String) -> DatasetError { DatasetError(source: source, line: lineNumber, reason: reason) }
        let object: [String: Any]
        do {
            guard let parsed = try JSONSerialization.jsonObject(with: Data(trimmed.utf8)) as? [String: Any] else {
                throw fail("not a JSON object")
            }
            object = parsed
        } catch let error as DatasetError {
            throw error
        } catch {
            throw fail("invalid JSON (\(trimmed.prefix(60))...)")
        }
        let id = (object["id"] as? String) ?? (object["id"] as? Int).map(String.init) ?? "\(source):\(lineNumber)"
        func text(_ field: String) throws(DatasetError) -> String {
            guard let value = object[field] else { throw fail("missing field '\(field)'") }
            guard let string = value as? String else { throw fail("field '\(field)' is not a string") }
            guard string.contains(where: { !$0.isWhitespace }) else { throw fail("field '\(field)' is empty") }
            return string
        }
        switch self {
        case .gsm8k:
            let question = try text("question")
            var gold: Answer?
            if object["answer"] != nil {
                let answer = try text("answer")
                guard let last = answer.split(separator: "\n").last, last.hasPrefix("####") else {
                    throw fail("field 'answer' has no final '#### N' line")
                }
                guard let parsed = Answer(parsing: String(last.dropFirst(4)), as: .number) else {
                    throw fail("'\(last)' holds no number")
                }
                gold = parsed
            }
            return Question(id: id, text: question, kind: .number, gold: gold)

        case .multipleChoice:
            let question = try text("question")
            var choices: [(String, String)] = []
            switch object["choices"] {
            case let list as [String]:
                choices = list.enumerated().map { (String(UnicodeScalar(UInt8(65 + $0.offset % 26))), $0.element) }
            case let map as [String: String]:
                choices = map.sorted { $0.key < $1.key }.map { ($0.key.uppercased(), $0.value) }
            case let items as [[String: Any]]:
                for item in items {
                    guard let label = item["label"] as? String, let value = item["text"] as? String else {
                        throw fail("each choice needs 'label' and 'text'")
                    }
                    choices.append((label.uppercased(), value))
                }
            case nil:
                throw fail("missing field 'choices'")
            default:
                throw fail("field 'choices' is not a list or object of strings")
            }
            guard choices.count >= 2 else { throw fail("fewer than two choices") }
            let rendered = question + "\nAnswer Choices: " + choices.map { "(\($0.0)) \($0.1)" }.joined(separator: " ")
            var gold: Answer?
            if let key = (object["answer"] ?? object["answerKey"]) as? String {
                guard let letter = Answer(parsing: key, as: .choice), choices.contains(where: { $0.0 == letter.canonical }) else {
                    throw fail("answer '\(key)' is not one of the choices")
                }
                gold = letter
            }
            return Question(id: id, text: rendered, kind: .choice, gold: gold)

        case .inference:
            let premise = try text("premise")
            let hypothesis = try text("hypothesis")
            let rendered = "Premise: \(premise)\nHypothesis: \(hypothesis)\nDoes the premise entail the hypothesis? Answer yes, no or neutral."
            var gold: Answer?
            switch object["label"] {
            case nil:
                break
            case let number as Int:
                guard (0 ... 2).contains(number) else { throw fail("label \(number) is not 0, 1 or 2") }
                gold = Answer(kind: .label, canonical: ["yes", "neutral", "no"][number])
            case let label as String:
                let words = ["e": "entailment", "n": "neutral", "c": "contradiction"]
                guard let parsed = Answer(parsing: words[label.lowercased()] ?? label, as: .label) else {
                    throw fail("label '\(label)' is not entailment/neutral/contradiction")
                }
                gold = parsed
            default:
                throw fail("field 'label' is not a string or number")
            }
            return Question(id: id, text: rendered, kind: .label, gold: gold)

        case let .generic(questionField, answerField, kind):
            let question = try text(questionField)
            var gold: Answer?
            if let answerField, let value = object[answerField] {
                let raw = (value as? String) ?? (value as? NSNumber).map { "\($0)" }
                guard let raw, let parsed = Answer(parsing: raw, as: kind) else {
                    throw fail("field '\(answerField)' holds no \(kind.rawValue) answer")
                }
                gold = parsed
            }
            return Question(id: id, text: question, kind: kind, gold: gold)
        }
    }
}
