import Foundation

/// Turns free answer text into the canonical form of an ``AnswerKind``.
public enum AnswerNormalizer {
    /// The canonical text of the first answer of `kind` in `text`, or nil if there is none.
    public static func canonical(_ text: String, as kind: AnswerKind) -> String? {
        switch kind {
        case .number: number(in: text)?.canonical
        case .choice: choice(in: text)
        case .label: label(in: text)
        case .text: plainText(text)
        }
    }

    // MARK: Numbers

    /// `$1,234.50` → 1234.5; `7.0` → 7; `3/4` → 3/4; `1 1/2` → 3/2; `-2 kg` → -2.
    static func number(in text: String) -> Rational? {
        if let fast = asciiDecimal(in: text) { return fast }
        var cleaned: [Unicode.Scalar] = []
        let scalars = Array(text.unicodeScalars.prefix(512))
        cleaned.reserveCapacity(scalars.count)
        for (index, scalar) in scalars.enumerated() {
            switch scalar {
            case "$", "€", "£", "¥", "₹":
                continue
            case ",":
                // A thousands separator sits between digits: keep "3, 4" apart, drop "1,200"'s comma.
                let before = index > 0 ? scalars[index - 1] : " "
                let after = index + 1 < scalars.count ? scalars[index + 1] : " "
                if before.isASCIIDigit, after.isASCIIDigit { continue }
                cleaned.append(" ")
            default:
                cleaned.append(scalar)
            }
        }
        guard let (sign, number) = firstNumber(in: cleaned) else { return nil }
        return Rational(parsing: Substring(sign + number))
    }

    /// The common case without the general scanner: ASCII text without fractions (`/`), where
    /// the first number is `[sign]digits[.digits]` or `.digits`. Returns nil (not "no number")
    /// whenever the text needs the general path, which gives the same answer slower.
    private static func asciiDecimal(in text: String) -> Rational?? {
        let bytes = Array(text.utf8.prefix(512))
        var cleaned: [UInt8] = []
        cleaned.reserveCapacity(bytes.count)
        for (index, byte) in bytes.enumerated() {
            guard byte < 0x80, byte != UInt8(ascii: "/") else { return .none }
            if byte == UInt8(ascii: "$") { continue }
            if byte == UInt8(ascii: ",") {
                let before = index > 0 ? bytes[index - 1] : 0x20
                let after = index + 1 < bytes.count ? bytes[index + 1] : 0x20
                if before.isDigit, after.isDigit { continue }
                cleaned.append(0x20)
                continue
            }
            cleaned.append(byte)
        }
        for start in cleaned.indices {
            var position = start
            var negative = false
            if cleaned[position] == UInt8(ascii: "-") || cleaned[position] == UInt8(ascii: "+") {
                negative = cleaned[position] == UInt8(ascii: "-")
                position += 1
            }
            var value: Int64 = 0
            var digits = 0
            while position < cleaned.count, cleaned[position].isDigit {
                value = value &* 10 &+ Int64(cleaned[position] - UInt8(ascii: "0"))
                digits += 1
                position += 1
            }
            var scale: Int64 = 1
            if position + 1 < cleaned.count, cleaned[position] == UInt8(ascii: "."), cleaned[position + 1].isDigit {
                position += 1
                var fraction: [UInt8] = []
                while position < cleaned.count, cleaned[position].isDigit {
                    fraction.append(cleaned[position])
                    position += 1
                }
                while fraction.last == UInt8(ascii: "0") { fraction.removeLast() }
                for digit in fraction {
                    value = value &* 10 &+ Int64(digit - UInt8(ascii: "0"))
                    scale = scale &* 10
                    digits += 1
                }
                if fraction.isEmpty, digits == 0 { digits = 1 }   // ".0"
            }
            guard digits > 0 else { continue }
            guard digits <= 18 else { return .none }
            return .some(Rational(negative ? -value : value, scale))
        }
        return .some(nil)
    }

    /// The first number in `characters` with an optional sign before it: a mixed number
    /// (`1 1/2`), a fraction (`3 / 4`), or a decimal (`12`, `2.5`, `.5`), tried in that order
    /// at each position. Returns the sign (`""` or `"-"`) and the number with spaces around
    /// the slash removed. Hand-written: a `Regex` here cost more than everything else in a vote.
    private static func firstNumber(in characters: [Unicode.Scalar]) -> (sign: String, number: String)? {
        func digits(from start: Int) -> Int {
            var end = start
            while end < characters.count, characters[end].isASCIIDigit { end += 1 }
            return end
        }
        func spaces(from start: Int) -> Int {
            var end = start
            while end < characters.count, characters[end].properties.isWhitespace { end += 1 }
            return end
        }
        func text(_ start: Int, _ end: Int) -> String { String(String.UnicodeScalarView(characters[start ..< end])) }
        /// `\s* / \s* digits+` from `start`: the denominator's range.
        func slashDenominator(from start: Int) -> Range<Int>? {
            let slash = spaces(from: start)
            guard slash < characters.count, characters[slash] == "/" else { return nil }
            let first = spaces(from: slash + 1)
            let end = digits(from: first)
            return end > first ? first ..< end : nil
        }
        func number(at start: Int) -> String? {
            let wholeEnd = digits(from: start)
            if wholeEnd > start {
                let gap = spaces(from: wholeEnd)
                if gap > wholeEnd {
                    let numeratorEnd = digits(from: gap)
                    if numeratorEnd > gap, let denominator = slashDenominator(from: numeratorEnd) {
                        return text(start, wholeEnd) + " " + text(gap, numeratorEnd) + "/" + text(denominator.lowerBound, denominator.upperBound)
                    }
                }
                if let denominator = slashDenominator(from: wholeEnd) {
                    return text(start, wholeEnd) + "/" + text(denominator.lowerBound, denominator.upperBound)
                }
                if wholeEnd + 1 < characters.count, characters[wholeEnd] == ".", characters[wholeEnd + 1].isASCIIDigit {
                    return text(start, digits(from: wholeEnd + 1))
                }
                return text(start, wholeEnd)
            }
            if start + 1 < characters.count, characters[start] == ".", characters[start + 1].isASCIIDigit {
                return text(start, digits(from: start + 1))
            }
            return nil
        }
        for start in characters.indices {
            let character = characters[start]
            if character == "-" || character == "+" || character == "−", let found = number(at: start + 1) {
                return (character == "+" ? "" : "-", found)
            }
            if let found = number(at: start) { return ("", found) }
        }
        return nil
    }

    // MARK: Choices

    /// `B`, `(b)`, `B)`, `b.`, `option C`, `choice (d)` → the upper-case letter.
    static func choice(in text: String) -> String? {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        let patterns = [
            /^\(?(?<letter>[A-Za-z])\)?(?=$|[\s\.:,;\)])/,
            /(?i:option|choice|answer)\s*\(?(?<letter>[A-Za-z])\)?(?=$|[\s\.:,;\)])/,
        ]
        for pattern in patterns {
            if let match = trimmed.firstMatch(of: pattern) {
                return match.output.letter.uppercased()
            }
        }
        return nil
    }

    // MARK: Labels

    private static let labelWords: [(String, String)] = [
        ("it is not possible to tell", "neutral"), ("not possible to tell", "neutral"),
        ("impossible to tell", "neutral"), ("cannot be determined", "neutral"),
        ("entailment", "yes"), ("contradiction", "no"), ("neutral", "neutral"),
        ("maybe", "neutral"), ("yes", "yes"), ("no", "no"), ("true", "yes"), ("false", "no"),
    ]

    /// `yes` / `no` / `neutral`, also from `entailment`, `contradiction`, `true`, `false`, `maybe`.
    static func label(in text: String) -> String? {
        let lowered = text.lowercased()
        var best: (position: String.Index, label: String)?
        for (word, label) in labelWords {
            var searchStart = lowered.startIndex
            while let range = lowered.range(of: word, range: searchStart ..< lowered.endIndex) {
                let beforeOK = range.lowerBound == lowered.startIndex || !lowered[lowered.index(before: range.lowerBound)].isLetter
                let afterOK = range.upperBound == lowered.endIndex || !lowered[range.upperBound].isLetter
                if beforeOK, afterOK {
                    if let current = best, current.position <= range.lowerBound {} else { best = (range.lowerBound, label) }
                    break
                }
                searchStart = range.upperBound
            }
        }
        return best?.label
    }

    // MARK: Text

    /// Trimmed, lower-cased, spaces collapsed, surrounding quotes and a final period removed.
    static func plainText(_ text: String) -> String? {
        var words = text.lowercased().split(whereSeparator: \.isWhitespace).joined(separator: " ")
        while let last = words.last, ".!?".contains(last) { words.removeLast() }
        let quotes: Set<Character> = ["\"", "'", "“", "”", "‘", "’", "*"]
        while let first = words.first, quotes.contains(first) { words.removeFirst() }
        while let last = words.last, quotes.contains(last) { words.removeLast() }
        return words.isEmpty ? nil : words
    }
}

extension UInt8 {
    fileprivate var isDigit: Bool { self >= UInt8(ascii: "0") && self <= UInt8(ascii: "9") }
}

extension Unicode.Scalar {
    var isASCIIDigit: Bool { value >= 0x30 && value <= 0x39 }
}
