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
        var path = path
        return path.withUTF8 { finalAnswerText(in: $0) }
    }

    private static let markerBytes = Array(marker.utf8)

    /// On the UTF-8 bytes (every path of every group goes through here, on the verifiers).
    private static func finalAnswerText(in bytes: UnsafeBufferPointer<UInt8>) -> String? {
        let marker = markerBytes
        guard bytes.count >= marker.count else { return nil }
        // The last case-insensitive (ASCII) occurrence of the marker.
        var found: Int?
        var start = bytes.count - marker.count
        while start >= 0 {
            var matches = true
            for offset in 0 ..< marker.count where bytes[start + offset] | 0x20 != marker[offset] | 0x20 || (marker[offset] == 0x20) != (bytes[start + offset] == 0x20) {
                matches = false
                break
            }
            if matches {
                found = start
                break
            }
            start -= 1
        }
        guard let found else { return nil }
        var end = found + marker.count
        var tailStart = end
        while end < bytes.count, bytes[end] != 0x0A, bytes[end] != 0x0D { end += 1 }
        // Trim spaces, tabs, and the ':' and '*' some models put before the answer.
        trim: while tailStart < end {
            switch bytes[tailStart] {
            case 0x20, 0x09, UInt8(ascii: ":"), UInt8(ascii: "*"): tailStart += 1
            default: break trim
            }
        }
        while end > tailStart, bytes[end - 1] == 0x20 || bytes[end - 1] == 0x09 { end -= 1 }
        let tail = UnsafeBufferPointer(rebasing: bytes[tailStart ..< end])
        var text = String(decoding: tail, as: UTF8.self)
        // Printable ASCII holds no other newline or whitespace: the checks below would find nothing.
        if !tail.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) {
            if let newline = text.firstIndex(where: \.isNewline) { text = String(text[..<newline]) }
            if text.first?.isWhitespace == true || text.last?.isWhitespace == true {
                // Rare: Unicode spaces (no-break space, ...); Foundation knows them all.
                text = text.trimmingCharacters(in: .whitespaces)
            }
        }
        return text.isEmpty ? nil : text
    }
}
