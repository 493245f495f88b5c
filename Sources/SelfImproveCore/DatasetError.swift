/// A data set line that could not be read, with where it is.
public struct DatasetError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The file (or other source) name the caller gave.
    public var source: String
    /// 1-based line number.
    public var line: Int
    public var reason: String

    public init(source: String, line: Int, reason: String) {
        self.source = source
        self.line = line
        self.reason = reason
    }

    public var description: String { "\(source):\(line): \(reason)" }
}
