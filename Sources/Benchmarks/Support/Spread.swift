import Foundation

/// The median and range of a figure measured several times. Every benchmark reports repeated
/// figures this way, so that one lucky or unlucky run cannot pass for the answer.
struct Spread: Sendable {
    /// The measurements, in the order they were taken.
    let values: [Double]

    init(_ values: [Double]) { self.values = values }

    var median: Double {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return .nan }
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }

    var min: Double { values.min() ?? .nan }
    var max: Double { values.max() ?? .nan }

    /// `{"median", "min", "max", "values"}`: the values rounded to `digits` decimals, and the
    /// median and range of those rounded values (so that the entry checks against itself; the
    /// median of an even count, a mean of two, keeps one more decimal).
    func json(digits: Int = 3) -> [String: Any] {
        func round(_ value: Double, _ digits: Int) -> Double {
            let scale = pow(10, Double(digits))
            return value.isFinite ? (value * scale).rounded() / scale : 0
        }
        let shown = Spread(values.map { round($0, digits) })
        return ["median": round(shown.median, digits + 1), "min": shown.min, "max": shown.max, "values": shown.values]
    }

    /// "median (min-max, n runs)", for text output.
    func text(digits: Int = 3) -> String {
        let format = "%.\(digits)f"
        return "\(String(format: format, median)) (\(String(format: format, min))-\(String(format: format, max)), \(values.count) runs)"
    }
}
