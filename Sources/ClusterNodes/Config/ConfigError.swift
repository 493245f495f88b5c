/// A problem with a cluster configuration, naming the file, the key and its line.
///
/// Printed as `cluster/local.yaml:12: method.m: must be at least 1, got 0`; a value that came
/// from `--set` says so instead of a line.
public struct ConfigError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The configuration file.
    public var file: String
    /// The dotted key path (`samplers[1].capacity`); empty for the whole document.
    public var key: String
    /// The line in `file`, when the value came from it.
    public var line: Int?
    /// Set when the value came from a `--set` override.
    public var fromOverride: Bool
    public var message: String

    public init(file: String, key: String, line: Int?, fromOverride: Bool = false, message: String) {
        self.file = file
        self.key = key
        self.line = line
        self.fromOverride = fromOverride
        self.message = message
    }

    public var description: String {
        let place = fromOverride ? "\(file) (--set \(key))" : line.map { "\(file):\($0)" } ?? file
        return key.isEmpty ? "\(place): \(message)" : "\(place): \(key): \(message)"
    }
}
