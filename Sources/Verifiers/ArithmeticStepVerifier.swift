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
        let steps = Self.check(path)
        guard !steps.isEmpty else { return scoreWithoutSteps }
        return Double(steps.filter(\.isRight).count) / Double(steps.count)
    }

    /// Every arithmetic step of `path`, checked (at most 1000).
    ///
    /// A scanner over the UTF-8 bytes rather than a regular expression: verifiers score every
    /// path of every group, and compiling a pattern per call cost more than the checking.
    public static func check(_ path: String) -> [Step] {
        let bytes = Array(path.utf8)
        var steps: [Step] = []
        var position = 0
        while position < bytes.count, steps.count < 1000 {
            let startsNumber = bytes[position].isDigit || (bytes[position] == UInt8(ascii: "-") && position + 1 < bytes.count && bytes[position + 1].isDigit)
            let insideNumber = position > 0 && (bytes[position - 1].isDigit || bytes[position - 1] == UInt8(ascii: "."))
            if startsNumber, !insideNumber, let (step, end) = step(at: position, in: bytes) {
                steps.append(step)
                position = end
            } else {
                position += 1
            }
        }
        return steps
    }

    /// `a op b = c` starting at `start`, and where it ends.
    private static func step(at start: Int, in bytes: [UInt8]) -> (Step, Int)? {
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
        case "+": expected = a.value + b.value
        case "-": expected = a.value - b.value
        case "*": expected = a.value * b.value
        default: expected = b.value == 0 ? nil : a.value / b.value
        }
        let isRight = expected.map { abs($0 - c.value) <= 1e-6 * max(1, abs($0)) } ?? false
        return (Step(text: String(decoding: bytes[start ..< c.end], as: UTF8.self), isRight: isRight), c.end)
    }

    /// `-?digits` with optional `,ddd` groups (after at most three leading digits) and decimals.
    private static func number(at start: Int, in bytes: [UInt8]) -> (value: Double, end: Int)? {
        var position = start
        if position < bytes.count, bytes[position] == UInt8(ascii: "-") { position += 1 }
        let digitsStart = position
        while position < bytes.count, bytes[position].isDigit { position += 1 }
        guard position > digitsStart else { return nil }
        var text = String(decoding: bytes[start ..< position], as: UTF8.self)
        if position - digitsStart <= 3 {
            while position + 3 < bytes.count + 0, bytes[position] == UInt8(ascii: ","),
                  bytes[position + 1].isDigit, bytes[position + 2].isDigit, bytes[position + 3].isDigit,
                  position + 4 >= bytes.count || !bytes[position + 4].isDigit
            {
                text += String(decoding: bytes[position + 1 ... position + 3], as: UTF8.self)
                position += 4
            }
        }
        if position + 1 < bytes.count, bytes[position] == UInt8(ascii: "."), bytes[position + 1].isDigit {
            let fractionStart = position
            position += 1
            while position < bytes.count, bytes[position].isDigit { position += 1 }
            text += String(decoding: bytes[fractionStart ..< position], as: UTF8.self)
        }
        return Double(text).map { ($0, position) }
    }

    /// `+ - * / x` or `×` / `÷` (two UTF-8 bytes each), as `+ - * /`.
    private static func operatorSymbol(at position: Int, in bytes: [UInt8]) -> (Character, Int)? {
        guard position < bytes.count else { return nil }
        switch bytes[position] {
        case UInt8(ascii: "+"): return ("+", position + 1)
        case UInt8(ascii: "-"): return ("-", position + 1)
        case UInt8(ascii: "*"), UInt8(ascii: "x"): return ("*", position + 1)
        case UInt8(ascii: "/"): return ("/", position + 1)
        case 0xC3 where position + 1 < bytes.count && bytes[position + 1] == 0x97: return ("*", position + 2)
        case 0xC3 where position + 1 < bytes.count && bytes[position + 1] == 0xB7: return ("/", position + 2)
        default: return nil
        }
    }

    private static func skipSpaces(from start: Int, in bytes: [UInt8]) -> Int {
        var position = start
        while position < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[position]) { position += 1 }
        return position
    }
}

extension UInt8 {
    fileprivate var isDigit: Bool { self >= UInt8(ascii: "0") && self <= UInt8(ascii: "9") }
}
