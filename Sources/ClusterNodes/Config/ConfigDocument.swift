import Foundation
import Yams

/// A YAML configuration document with `--set` overrides applied, read through typed cursors
/// that remember where every value came from (line, or `--set`), so errors can name both the
/// key and its line.
public struct ConfigDocument {
    /// The file name used in errors.
    public let file: String
    var root: Node

    /// Parses `text`; `file` names it in errors.
    /// - Throws: ``ConfigError`` for YAML syntax errors (with the line) or a top level that is
    ///   not a mapping.
    public init(text: String, file: String) throws(ConfigError) {
        self.file = file
        let composed: Node?
        do {
            composed = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw ConfigError(file: file, key: "", line: Self.line(of: error), message: "not valid YAML: \(Self.summary(of: error))")
        } catch {
            throw ConfigError(file: file, key: "", line: nil, message: "not valid YAML: \(error)")
        }
        guard let composed, case .mapping = composed else {
            throw ConfigError(file: file, key: "", line: composed?.mark?.line, message: "the top level must be a mapping of settings")
        }
        root = composed
    }

    /// Applies one `key.path=value` override (`samplers.0.capacity=4` indexes a list). The value
    /// is read as YAML, so `8`, `0.7`, `true`, `[a, b]` and `text` all work. Missing mappings on
    /// the way are created; a list index must exist.
    /// - Throws: ``ConfigError`` for a malformed override or a path through a non-mapping.
    public mutating func apply(override: String) throws(ConfigError) {
        guard let equals = override.firstIndex(of: "="), equals != override.startIndex else {
            throw ConfigError(file: file, key: override, line: nil, fromOverride: true,
                              message: "an override must look like key.path=value")
        }
        let path = String(override[..<equals])
        let valueText = String(override[override.index(after: equals)...])
        let keys = path.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard !keys.contains(where: \.isEmpty) else {
            throw ConfigError(file: file, key: path, line: nil, fromOverride: true, message: "empty key in the path")
        }
        var value: Node
        do {
            value = try Yams.compose(yaml: valueText) ?? Node("", Tag(.null))
        } catch {
            throw ConfigError(file: file, key: path, line: nil, fromOverride: true, message: "the value '\(valueText)' is not valid YAML")
        }
        value = Self.strippingMarks(value)
        root = try Self.setting(value, at: keys[...], in: root, path: path, file: file)
    }

    /// A cursor on the top-level mapping.
    public func top() throws(ConfigError) -> ConfigMapping {
        try ConfigValue(node: root, key: "", file: file).mapping()
    }

    /// The document (overrides applied) as canonical YAML, for hashing and for the manifest.
    public func canonicalText() -> String {
        (try? Yams.serialize(node: root, sortKeys: true)) ?? ""
    }

    static func setting(_ value: Node, at keys: ArraySlice<String>, in node: Node, path: String, file: String) throws(ConfigError) -> Node {
        guard let key = keys.first else { return value }
        let rest = keys.dropFirst()
        switch node {
        case let .mapping(mapping):
            var pairs = mapping.map { ($0.key, $0.value) }
            if let index = pairs.firstIndex(where: { $0.0.string == key }) {
                pairs[index].1 = try setting(value, at: rest, in: pairs[index].1, path: path, file: file)
            } else {
                pairs.append((Node(key), try setting(value, at: rest, in: Node([(Node, Node)]()), path: path, file: file)))
            }
            return .mapping(Node.Mapping(pairs, mapping.tag, mapping.style, mapping.mark))
        case var .sequence(sequence):
            guard let index = Int(key), sequence.indices.contains(index) else {
                throw ConfigError(file: file, key: path, line: node.mark?.line, fromOverride: true,
                                  message: "'\(key)' is not an index of the list (it has \(sequence.count) entries)")
            }
            sequence[index] = try setting(value, at: rest, in: sequence[index], path: path, file: file)
            return .sequence(sequence)
        case .scalar where node.null != nil:
            // `key:` with nothing after it: treat as an empty mapping.
            return try setting(value, at: keys, in: Node([(Node, Node)]()), path: path, file: file)
        default:
            throw ConfigError(file: file, key: path, line: node.mark?.line, fromOverride: true,
                              message: "'\(key)' cannot be set: its parent is not a mapping")
        }
    }

    /// Overridden values carry no marks, which is how errors know they came from `--set`.
    private static func strippingMarks(_ node: Node) -> Node {
        switch node {
        case let .scalar(scalar): return .scalar(Node.Scalar(scalar.string, scalar.tag, scalar.style, nil))
        case let .mapping(mapping):
            return .mapping(Node.Mapping(mapping.map { (strippingMarks($0.key), strippingMarks($0.value)) }, mapping.tag, mapping.style, nil))
        case let .sequence(sequence):
            return .sequence(Node.Sequence(sequence.map(strippingMarks), sequence.tag, sequence.style, nil))
        case .alias: return node
        }
    }

    private static func line(of error: YamlError) -> Int? {
        switch error {
        case let .scanner(_, _, mark, _), let .parser(_, _, mark, _), let .composer(_, _, mark, _): mark.line
        default: nil
        }
    }

    private static func summary(of error: YamlError) -> String {
        switch error {
        case let .scanner(context, problem, _, _), let .parser(context, problem, _, _), let .composer(context, problem, _, _):
            [context?.text, problem].compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: ", ")
        default: "\(error)"
        }
    }
}

/// One value of a configuration document, with its key path and origin.
public struct ConfigValue {
    let node: Node
    /// The dotted path of this value (`coordinator.port`, `samplers[0].name`).
    public let key: String
    let file: String

    /// The line the value is on; nil when it came from `--set`.
    public var line: Int? { node.mark?.line }

    /// An error about this value.
    public func error(_ message: String) -> ConfigError {
        ConfigError(file: file, key: key, line: line, fromOverride: node.mark == nil, message: message)
    }

    private var scalarText: String? {
        if case let .scalar(scalar) = node { return scalar.string }
        return nil
    }

    private var isQuoted: Bool {
        if case let .scalar(scalar) = node { return scalar.style == .singleQuoted || scalar.style == .doubleQuoted }
        return false
    }

    private var kindName: String {
        switch node {
        case .mapping: "a mapping"
        case .sequence: "a list"
        case .alias: "an alias"
        case let .scalar(scalar): "'\(scalar.string)'"
        }
    }

    public func string() throws(ConfigError) -> String {
        guard let text = scalarText else { throw error("expected a string, got \(kindName)") }
        return text
    }

    public func int() throws(ConfigError) -> Int {
        guard !isQuoted, let text = scalarText, let value = Int(text.replacingOccurrences(of: "_", with: "")) else {
            throw error("expected an integer, got \(kindName)")
        }
        return value
    }

    public func double() throws(ConfigError) -> Double {
        guard !isQuoted, let text = scalarText, let value = Double(text), value.isFinite else {
            throw error("expected a number, got \(kindName)")
        }
        return value
    }

    public func bool() throws(ConfigError) -> Bool {
        switch isQuoted ? nil : scalarText?.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: throw error("expected true or false, got \(kindName)")
        }
    }

    /// A duration in seconds: a number (`2.5`) or with a unit (`250ms`, `2s`, `5m`).
    public func duration() throws(ConfigError) -> Duration {
        guard !isQuoted, let text = scalarText?.trimmingCharacters(in: .whitespaces) else {
            throw error("expected a duration such as 2.5, 250ms, 30s or 5m, got \(kindName)")
        }
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            if let number = Double(text.dropLast(suffix.count)), number.isFinite, number >= 0 {
                return .milliseconds(Int64((number * scale * 1000).rounded()))
            }
        }
        guard let seconds = Double(text), seconds.isFinite, seconds >= 0 else {
            throw error("expected a duration such as 2.5, 250ms, 30s or 5m, got \(kindName)")
        }
        return .milliseconds(Int64((seconds * 1000).rounded()))
    }

    /// One of a fixed set of words.
    public func choice(_ allowed: [String]) throws(ConfigError) -> String {
        let text = try string()
        guard allowed.contains(text) else {
            throw error("'\(text)' is not one of \(allowed.joined(separator: ", "))")
        }
        return text
    }

    public func mapping() throws(ConfigError) -> ConfigMapping {
        guard case let .mapping(mapping) = node else { throw error("expected a mapping, got \(kindName)") }
        return try ConfigMapping(mapping, key: key, file: file, mark: node.mark)
    }

    /// A list; a single scalar counts as a list of one.
    public func list() throws(ConfigError) -> [ConfigValue] {
        switch node {
        case let .sequence(sequence):
            return sequence.enumerated().map { ConfigValue(node: $0.element, key: "\(key)[\($0.offset)]", file: file) }
        case .scalar:
            return [self]
        default:
            throw error("expected a list, got \(kindName)")
        }
    }
}

/// A mapping of a configuration document. Read the keys you know, then call ``finish()`` to
/// reject any other key (a misspelt setting must not be silently ignored).
public final class ConfigMapping {
    public let key: String
    let file: String
    let mark: Mark?
    private var entries: [(name: String, keyNode: Node, value: Node)] = []
    private var read: Set<String> = []

    init(_ mapping: Node.Mapping, key: String, file: String, mark: Mark?) throws(ConfigError) {
        self.key = key
        self.file = file
        self.mark = mark
        for (keyNode, value) in mapping {
            guard case let .scalar(scalar) = keyNode else {
                throw ConfigError(file: file, key: key, line: keyNode.mark?.line, message: "keys must be plain words")
            }
            if entries.contains(where: { $0.name == scalar.string }) {
                throw ConfigError(file: file, key: path(scalar.string), line: keyNode.mark?.line, message: "key appears twice")
            }
            entries.append((scalar.string, keyNode, value))
        }
    }

    private func path(_ name: String) -> String { key.isEmpty ? name : "\(key).\(name)" }

    /// The value under `name`, or nil when absent (or null).
    public func optional(_ name: String) -> ConfigValue? {
        read.insert(name)
        guard let entry = entries.first(where: { $0.name == name }) else { return nil }
        if case let .scalar(scalar) = entry.value, scalar.tag.description == Tag.Name.null.rawValue || (scalar.string.isEmpty && scalar.style == .plain) {
            return nil
        }
        return ConfigValue(node: entry.value, key: path(name), file: file)
    }

    /// The value under `name`.
    /// - Throws: ``ConfigError`` when it is missing.
    public func required(_ name: String) throws(ConfigError) -> ConfigValue {
        guard let value = optional(name) else {
            throw ConfigError(file: file, key: path(name), line: mark?.line, fromOverride: false, message: "missing (required)")
        }
        return value
    }

    /// Rejects keys that were never asked for.
    public func finish() throws(ConfigError) {
        for entry in entries where !read.contains(entry.name) {
            let known = read.sorted().joined(separator: ", ")
            throw ConfigError(file: file, key: path(entry.name), line: entry.keyNode.mark?.line, fromOverride: entry.keyNode.mark == nil,
                              message: "unknown key (known here: \(known))")
        }
    }
}
