import Foundation

/// One line of offline vote input: paths drawn by any tool (e.g. a vLLM batch job),
/// `{"id", "question", "paths": [...], "gold"?}`.
public struct VoteInput: Sendable, Hashable {
    public var id: String
    public var question: String
    public var paths: [String]
    /// The gold answer's text, if labelled (a string or a number in the JSON).
    public var gold: String?

    public init(id: String, question: String, paths: [String], gold: String? = nil) {
        self.id = id
        self.question = question
        self.paths = paths
        self.gold = gold
    }

    /// Decodes one line; nil for a blank line.
    /// - Throws: ``DatasetError`` naming the source, the line and the problem.
    public static func decode(_ line: String, source: String, lineNumber: Int) throws(DatasetError) -> VoteInput? {
        let trimmed = line.trimmingCharacters(in: .whitespaces)
        if trimmed.isEmpty { return nil }
        func fail(_ reason: String) -> DatasetError { DatasetError(source: source, line: lineNumber, reason: reason) }
        guard let object = (try? JSONSerialization.jsonObject(with: Data(trimmed.utf8))) as? [String: Any] else {
            throw fail("not a JSON object")
        }
        guard let question = object["question"] as? String, !question.isEmpty else { throw fail("missing or empty string field 'question'") }
        guard let paths = object["paths"] as? [String] else { throw fail("field 'paths' must be a list of strings") }
        guard !paths.isEmpty else { throw fail("field 'paths' is empty") }
        let id = (object["id"] as? String) ?? (object["id"] as? Int).map(String.init) ?? "\(source):\(lineNumber)"
        var gold: String?
        switch object["gold"] {
        case nil, is NSNull: gold = nil
        case let text as String: gold = text
        case let number as NSNumber: gold = number.stringValue
        default: throw fail("field 'gold' must be a string or a number")
        }
        return VoteInput(id: id, question: question, paths: paths, gold: gold)
    }
}
