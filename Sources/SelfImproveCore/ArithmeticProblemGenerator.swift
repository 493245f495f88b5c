/// The project's own data set: seeded arithmetic word problems of 1 to 4 steps (add, subtract,
/// multiply, divide with whole results), each with its gold answer and a reference solution
/// whose steps are written `a op b = c`, as the prompts and the step checker expect.
public struct ArithmeticProblemGenerator: Sendable {
    /// One generated problem.
    public struct Problem: Sendable, Hashable, Codable {
        public var question: String
        /// Reference reasoning, one step per sentence, without the answer sentence.
        public var reasoning: String
        public var answer: Int
        public var steps: Int

        /// The GSM8K form: reasoning lines, then `#### answer`.
        public var gsm8kAnswer: String { reasoning + "\n#### \(answer)" }
    }

    private var random: SplitMix64

    public init(seed: UInt64) {
        random = SplitMix64(seed: seed)
    }

    private static let people = ["Ana", "Ben", "Chloe", "Dev", "Emma", "Farid", "Grace", "Hugo", "Iris", "Jonas", "Kira", "Liam"]
    private static let things = ["apples", "stickers", "marbles", "books", "coins", "pencils", "shells", "cards", "stamps", "beads"]

    /// The next problem; `steps` is drawn from 1...4 unless given.
    public mutating func next(steps: Int? = nil) -> Problem {
        let stepCount = min(4, max(1, steps ?? Int(random.next(upTo: 4)) + 1))
        let person = Self.people[Int(random.next(upTo: UInt64(Self.people.count)))]
        let thing = Self.things[Int(random.next(upTo: UInt64(Self.things.count)))]
        var value = Int(random.next(upTo: 40)) + 5
        var sentences = ["\(person) has \(value) \(thing)."]
        var reasoning = ["\(person) starts with \(value) \(thing)."]
        for _ in 0 ..< stepCount {
            let operation = random.next(upTo: 4)
            switch operation {
            case 0:
                let amount = Int(random.next(upTo: 30)) + 1
                sentences.append("Then \(person) gets \(amount) more.")
                reasoning.append("\(value) + \(amount) = \(value + amount).")
                value += amount
            case 1 where value > 1:
                let amount = Int(random.next(upTo: UInt64(value - 1))) + 1
                sentences.append("Then \(person) gives away \(amount).")
                reasoning.append("\(value) - \(amount) = \(value - amount).")
                value -= amount
            case 2 where value <= 200:
                let factor = Int(random.next(upTo: 4)) + 2
                sentences.append("Then the number of \(thing) becomes \(factor) times as many.")
                reasoning.append("\(value) * \(factor) = \(value * factor).")
                value *= factor
            default:
                let divisors = (2 ... 6).filter { value % $0 == 0 && value / $0 > 0 }
                if let divisor = divisors.isEmpty ? nil : divisors[Int(random.next(upTo: UInt64(divisors.count)))] {
                    sentences.append("Then \(person) shares them equally among \(divisor) friends and keeps one share.")
                    reasoning.append("\(value) / \(divisor) = \(value / divisor).")
                    value /= divisor
                } else {
                    let amount = Int(random.next(upTo: 20)) + 1
                    sentences.append("Then \(person) finds \(amount) more.")
                    reasoning.append("\(value) + \(amount) = \(value + amount).")
                    value += amount
                }
            }
        }
        sentences.append("How many \(thing) does \(person) have now?")
        return Problem(question: sentences.joined(separator: " "), reasoning: reasoning.joined(separator: " "), answer: value, steps: stepCount)
    }
}

/// A small, fast, seedable generator (SplitMix64) with the same sequence on every platform:
/// for generated data sets, the simulator and seeded prompts.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in `0 ..< bound` (bound > 0), without modulo bias.
    public mutating func next(upTo bound: UInt64) -> UInt64 {
        guard bound > 1 else { return 0 }
        let limit = UInt64.max - UInt64.max % bound
        while true {
            let value = next()
            if value < limit { return value % bound }
        }
    }

    /// True with the given probability.
    public mutating func chance(_ probability: Double) -> Bool {
        Double(next() >> 11) / Double(1 << 53) < probability
    }
}

/// FNV-1a over UTF-8: a hash that is the same in every process (Swift's `Hasher` is seeded per
/// process), for deriving seeds from text.
public func stableHash(_ text: String) -> UInt64 {
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    for byte in text.utf8 {
        hash ^= UInt64(byte)
        hash &*= 0x100_0000_01B3
    }
    return hash
}
