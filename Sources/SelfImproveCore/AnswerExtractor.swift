import Foundation

/// Finds the final answer of a reasoning path: the text after the **last** "The answer is"
/// (so "So the answer is" counts too), up to the end of that line, normalised.
///
/// No answer means no vote: the result is nil, never an error.
public enum AnswerExtractor {
    /// The phrase that introduces a final answer (matched case-insensitively).
    public static let marker = "the answer is"

    /// The answer of `path`, or nil when it states none (or an unparsable one).
    public static func extract(from path: String, as kind: AnswerKind) -> Answer? {
        guard let tail = finalAnswerText(in: path) else { return nil }
        return Answer(parsing: tail, as: kind)
    }

    /// The raw text after the last marker, up to the end of its line.
    public static func finalAnswerText(in path: String) -> String? {
        guard let range = path.range(of: marker, options: [.caseInsensitive, .backwards]) else { return nil }
        var tail = path[range.upperBound...]
        if let newline = tail.firstIndex(where: \.isNewline) { tail = tail[..<newline] }
        var text = String(tail).trimmingCharacters(in: .whitespaces)
        while let first = text.first, ":*".contains(first) {
            text.removeFirst()
            text = text.trimmingCharacters(in: .whitespaces)
        }
        return text.isEmpty ? nil : text
    }
}
