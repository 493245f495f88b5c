import Foundation
import SelfImproveCore

/// Re-computes every `a op b = c` in a path (`+`, `-`, `*`, `/`, `×`, `÷`, `x`; thousands
/// commas and decimals allowed) and scores the share that is right. A path without any such
/// step gets ``scoreWithoutSteps`` (nothing to check is neither right nor wrong).
public struct ArithmeticStepVerifier: PathVerifier {
    public let name = "arithmetic_steps"
    public var scoreWithoutSteps: Double

    public init(scoreWithoutSteps: Double = 0.5) {
        self.scoreWithoutSteps = scoreWithoutSteps
    }

    /// One checked step.
    public struct Step: Sendable, Hashable {
        public var text: String
        public var isRight: Bool
    }

    public func score(_ path: String, for question: Question) async throws -> Double {
        let (right, total) = Self.tally(path)
        guard total > 0 else { return scoreWithoutSteps }
        return Double(right) / Double(total)
    }

    /// Every arithmetic step of `path`, checked (at most 1000).
    public static func check(_ path: String) -> [Step] {
        var steps: [Step] = []
        withBytes(of: path) { bytes in
            scan(bytes) { range, isRight in
                steps.append(Step(text: String(decoding: UnsafeBufferPointer(rebasing: bytes[range]), as: UTF8.self), isRight: isRight))
            }
        }
        return steps
    }

    /// How many of the path's steps (at most 1000) are right, of how many: ``check`` without
    /// building the steps' text, for scoring.
    public static func tally(_ path: String) -> (right: Int, total: Int) {
        var right = 0, total = 0
        withBytes(of: path) { bytes in
            scan(bytes) { _, isRight in
                total += 1
                if isRight { right += 1 }
            }
        }
        return (right, total)
    }

    private static func withBytes(of path: String, _ body: (UnsafeBufferPointer<UInt8>) -> Void) {
        if path.utf8.withContiguousStorageIfAvailable(body) == nil {
            Array(path.utf8).withUnsafeBufferPointer(body)
        }
    }

    /// The scanner: a pass over the UTF-8 bytes rather than a regular expression, since
    /// verifiers score every path of every group and compiling a pattern per call cost more than
    /// the checking. Calls `found` with each step's byte range and whether it is right.
    private static func scan(_ bytes: UnsafeBufferPointer<UInt8>, found: (Range<Int>, Bool) -> Void) {
        var steps = 0
        var position = 0
        while position < bytes.count, steps < 1000 {
            let startsNumber = bytes[position].isDigit || (bytes[position] == UInt8(ascii: "-") && position + 1 < bytes.count && bytes[position + 1].isDigit)
            let insideNumber = position > 0 && (bytes[position - 1].isDigit || bytes[position - 1] == UInt8(ascii: "."))
            if startsNumber, !insideNumber, let (isRight, end) = step(at: position, in: bytes) {
                found(position ..< end, isRight)
                steps += 1
                position = end
            } else {
                position += 1
            }
        }
    }

    /// `a op b = c` starting at `start`: whether it is right, and where it ends.
    private static func step(at start: Int, in bytes: UnsafeBufferPointer<UInt8>) -> (Bool, Int)? {
        guard let a = number(at: start, in: bytes) else { return nil }
        var position = skipSpaces(from: a.end, in: bytes)
        guard let (symbol, afterSymbol) = operatorSymbol(at: position, in: bytes) else { return nil }
        position = skipSpaces(from: afterSymbol, in: bytes)
        guard let b = number(at: position, in: bytes) else { return nil }
        position = skipSpaces(from: b.end, in: bytes)
        guard position < bytes.count, bytes[position] == UInt8(ascii: "=") else { return nil }
        position = skipSpaces(from: position + 1, in: bytes)
        guard let c = number(at: position, in: bytes) else { return nil }
        let expected: Double?
        switch symbol {
        case UInt8(ascii: "+"): expected = a.value + b.value
        case UInt8(ascii: "-"): expected = a.value - b.value
        case UInt8(ascii: "*"): expected = a.value * b.value
        default: expected = b.value == 0 ? nil : a.value / b.value
        }
        let isRight = expected.map { abs($0 - c.value) <= 1e-6 * max(1, abs($0)) } ?? false
        return (isRight, c.end)
    }

    /// `-?digits` with optional `,ddd` groups (after at most three leading digits) and decimals.
    ///
    /// The value is exact: up to 15 significant digits it is the digits as an integer divided
    /// once by a power of ten (both exact in a `Double`, so the quotient is correctly rounded,
    /// as parsing the text would give); longer numbers go through `Double(String)`.
    private static func number(at start: Int, in bytes: UnsafeBufferPointer<UInt8>) -> (value: Double, end: Int)? {
        var position = start
        let negative = position < bytes.count && bytes[position] == UInt8(ascii: "-")
        if negative { position += 1 }
        let digitsStart = position
        var mantissa: UInt64 = 0
        var digits = 0
        var fractionDigits = 0
        func take(_ byte: UInt8) {
            if mantissa != 0 || byte != UInt8(ascii: "0") { digits += 1 }
            if digits <= 19 { mantissa = mantissa &* 10 &+ UInt64(byte - UInt8(ascii: "0")) }
        }
        while position < bytes.count, bytes[position].isDigit {
            take(bytes[position])
            position += 1
        }
        guard position > digitsStart else { return nil }
        if position - digitsStart <= 3 {
            while position + 3 < bytes.count, bytes[position] == UInt8(ascii: ","),
                  bytes[position + 1].isDigit, bytes[position + 2].isDigit, bytes[position + 3].isDigit,
                  position + 4 >= bytes.count || !bytes[position + 4].isDigit
            {
                for offset in 1 ... 3 { take(bytes[position + offset]) }
                position += 4
            }
        }
        if position + 1 < bytes.count, bytes[position] == UInt8(ascii: "."), bytes[position + 1].isDigit {
            position += 1
            while position < bytes.count, bytes[position].isDigit {
                take(bytes[position])
                fractionDigits += 1
                position += 1
            }
        }
        if digits <= 15, fractionDigits <= 22 {
            let magnitude = Double(mantissa) / powersOfTen[fractionDigits]
            return (negative ? -magnitude : magnitude, position)
        }
        // Long numbers: the text without its group commas, parsed.
        var text = ""
        for byte in bytes[start ..< position] where byte != UInt8(ascii: ",") { text.unicodeScalars.append(UnicodeScalar(byte)) }
        return Double(text).map { ($0, position) }
    }

    private static let powersOfTen: [Double] = (0 ... 22).map { exponent in
        (0 ..< exponent).reduce(1.0) { value, _ in value * 10 }
    }

    /// `+ - * / x` or `×` / `÷` (two UTF-8 bytes each), as the ASCII `+ - * /`.
    private static func operatorSymbol(at position: Int, in bytes: UnsafeBufferPointer<UInt8>) -> (UInt8, Int)? {
        guard position < bytes.count else { return nil }
        switch bytes[position] {
        case UInt8(ascii: "+"): return (UInt8(ascii: "+"), position + 1)
        case UInt8(ascii: "-"): return (UInt8(ascii: "-"), position + 1)
        case UInt8(ascii: "*"), UInt8(ascii: "x"): return (UInt8(ascii: "*"), position + 1)
        case UInt8(ascii: "/"): return (UInt8(ascii: "/"), position + 1)
        case 0xC3 where position + 1 < bytes.count && bytes[position + 1] == 0x97: return (UInt8(ascii: "*"), position + 2)
        case 0xC3 where position + 1 < bytes.count && bytes[position + 1] == 0xB7: return (UInt8(ascii: "/"), position + 2)
        default: return nil
        }
    }

    private static func skipSpaces(from start: Int, in bytes: UnsafeBufferPointer<UInt8>) -> Int {
        var position = start
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x09, 0x0A, 0x0D: position += 1
            default: return position
            }
        }
        return position
    }
}

extension UInt8 {
    fileprivate var isDigit: Bool { self >= UInt8(ascii: "0") && self <= UInt8(ascii: "9") }
}
