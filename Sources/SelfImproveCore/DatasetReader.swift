/// Reads questions one at a time from lines the caller supplies (a file read lazily, a
/// network stream, an array in a test), so memory does not depend on the data set's size and
/// the core opens no file itself.
public struct DatasetReader<Lines: Sequence>: Sendable where Lines.Element == String, Lines: Sendable {
    /// What to do with a malformed line.
    public enum Policy: Sendable, Hashable {
        /// Stop with its ``DatasetError``.
        case strict
        /// Skip it, count it and keep the first `keepErrors` errors for the report.
        case skip(keepErrors: Int)
    }

    public let format: DatasetFormat
    public let source: String
    public let policy: Policy
    private let lines: Lines

    public init(lines: Lines, format: DatasetFormat, source: String, policy: Policy = .strict) {
        self.lines = lines
        self.format = format
        self.source = source
        self.policy = policy
    }

    /// Iterates the questions; `next()` throws under `.strict`.
    public func makeIterator() -> Iterator {
        Iterator(lines: lines.makeIterator(), format: format, source: source, policy: policy)
    }

    public struct Iterator {
        var lines: Lines.Iterator
        let format: DatasetFormat
        let source: String
        let policy: Policy
        /// Lines read so far.
        public private(set) var lineNumber = 0
        /// Malformed lines skipped (under `.skip`).
        public private(set) var skipped = 0
        /// The first skipped lines' errors.
        public private(set) var errors: [DatasetError] = []

        /// The next question, nil at the end.
        public mutating func next() throws(DatasetError) -> Question? {
            while let line = lines.next() {
                lineNumber += 1
                do {
                    if let question = try format.decode(line, source: source, lineNumber: lineNumber) {
                        return question
                    }
                } catch {
                    guard case let .skip(keep) = policy else { throw error }
                    skipped += 1
                    if errors.count < keep { errors.append(error) }
                }
            }
            return nil
        }
    }
}
