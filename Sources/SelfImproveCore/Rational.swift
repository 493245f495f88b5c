/// An exact fraction for comparing numeric answers (`7.0` = `7`, `0.5` = `1/2`).
struct Rational: Hashable, Sendable {
    let numerator: Int64
    let denominator: Int64

    /// Reduced, with a positive denominator; nil for a zero denominator or overflow.
    init?(_ numerator: Int64, _ denominator: Int64) {
        guard denominator != 0 else { return nil }
        var n = numerator, d = denominator
        if d < 0 {
            guard n != .min, d != .min else { return nil }
            n = -n
            d = -d
        }
        let g = Rational.gcd(n.magnitude, d.magnitude)
        self.numerator = n / Int64(g)
        self.denominator = d / Int64(g)
    }

    /// Parses `12`, `-3.25`, `.5`, `3/4`, `1 1/2` (digits only; commas already removed).
    init?(parsing text: Substring) {
        let parts = text.split(separator: " ")
        if parts.count == 2, let whole = Rational(parsing: parts[0]), whole.denominator == 1,
           let fraction = Rational(parsing: parts[1]), fraction.denominator != 1, fraction.numerator >= 0
        {
            let sign: Int64 = whole.numerator < 0 ? -1 : 1
            let (scaled, overflow) = whole.numerator.magnitude.multipliedReportingOverflow(by: fraction.denominator.magnitude)
            guard !overflow, scaled < UInt64(Int64.max) / 2 else { return nil }
            self.init(sign * (Int64(scaled) + fraction.numerator), fraction.denominator)
            return
        }
        if let slash = text.firstIndex(of: "/") {
            guard let top = Rational(parsing: text[..<slash]), let bottom = Rational(parsing: text[text.index(after: slash)...]),
                  top.denominator == 1, bottom.denominator == 1
            else { return nil }
            self.init(top.numerator, bottom.numerator)
            return
        }
        var body = text
        var negative = false
        if body.first == "-" || body.first == "−" {
            negative = true
            body = body.dropFirst()
        } else if body.first == "+" {
            body = body.dropFirst()
        }
        let pieces = body.split(separator: ".", omittingEmptySubsequences: false)
        guard pieces.count <= 2, !body.isEmpty else { return nil }
        let wholeDigits = pieces[0]
        let fractionDigits = pieces.count == 2 ? pieces[1] : ""
        guard !(wholeDigits.isEmpty && fractionDigits.isEmpty),
              wholeDigits.allSatisfy(\.isASCIIDigit), fractionDigits.allSatisfy(\.isASCIIDigit),
              wholeDigits.count + fractionDigits.count <= 18
        else { return nil }
        let trimmedFraction = fractionDigits.reversed().drop(while: { $0 == "0" }).reversed()
        var denominator: Int64 = 1
        for _ in trimmedFraction { denominator *= 10 }
        guard let value = Int64(String(wholeDigits) + String(trimmedFraction)) ?? (wholeDigits.isEmpty && trimmedFraction.isEmpty ? 0 : nil) else {
            return nil
        }
        self.init(negative ? -value : value, denominator)
    }

    /// `7`, `0.25`, or `1/3` when the decimal would not terminate.
    var canonical: String {
        if denominator == 1 { return String(numerator) }
        var d = denominator, twos = 0, fives = 0
        while d % 2 == 0 { d /= 2; twos += 1 }
        while d % 5 == 0 { d /= 5; fives += 1 }
        guard d == 1 else { return "\(numerator)/\(denominator)" }
        let places = max(twos, fives)
        var scale: Int64 = 1
        for _ in 0 ..< places { scale *= 10 }
        let (scaled, overflow) = numerator.multipliedReportingOverflow(by: scale / denominator)
        guard !overflow else { return "\(numerator)/\(denominator)" }
        let magnitude = String(scaled.magnitude)
        let padded = String(repeating: "0", count: max(0, places + 1 - magnitude.count)) + magnitude
        let split = padded.index(padded.endIndex, offsetBy: -places)
        return (scaled < 0 ? "-" : "") + padded[..<split] + "." + padded[split...]
    }

    private static func gcd(_ a: UInt64, _ b: UInt64) -> UInt64 {
        var (a, b) = (a, b)
        while b != 0 { (a, b) = (b, a % b) }
        return max(a, 1)
    }
}

extension Character {
    var isASCIIDigit: Bool { ("0" ... "9").contains(self) }
}
