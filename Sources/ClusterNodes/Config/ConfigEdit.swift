import Foundation
import Yams

/// A change of a config document that code makes (a rounds phase, a benchmark's variant, a
/// deployment), as typed values at key paths: applied like a `--set` override, but never
/// written as text and parsed back, so a path with spaces or a colon stays one string and a
/// number stays a number. The parser remains the one place where a config is validated and its
/// derived settings are computed, for a phase's config as for the user's.
///
/// Edits travel to a cluster's child nodes as a JSON file (`--edits`), beside the config file
/// and the user's own `--set` overrides.
public struct ConfigEdit: Codable, Sendable, Hashable {
    /// A typed value for a key.
    public indirect enum Value: Codable, Sendable, Hashable {
        case string(String)
        case int(Int)
        case double(Double)
        case bool(Bool)
        /// Removes what the key held (a section or setting falls back to its default).
        case null
        case list([Value])
        case mapping([String: Value])
    }

    /// The keys from the top of the document; a number indexes a list (`samplers`, `0`).
    public var path: [String]
    public var value: Value

    public init(_ path: [String], _ value: Value) {
        self.path = path
        self.value = value
    }

    /// `a.b.c` for messages.
    public var dottedPath: String { path.joined(separator: ".") }

    /// Reads edits written by ``write(_:to:)``.
    /// - Throws: When the file cannot be read or is not a list of edits.
    public static func read(_ url: URL) throws -> [ConfigEdit] {
        try JSONDecoder().decode([ConfigEdit].self, from: Data(contentsOf: url))
    }

    /// Writes edits as JSON, atomically.
    public static func write(_ edits: [ConfigEdit], to url: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try encoder.encode(edits).write(to: url, options: .atomic)
    }
}

// Values are written as plain JSON (a string, a number, true, null, an array, an object), so
// an edits file reads like the config it changes.
extension ConfigEdit.Value {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let flag = try? container.decode(Bool.self) {
            self = .bool(flag)
        } else if let number = try? container.decode(Int.self) {
            self = .int(number)
        } else if let number = try? container.decode(Double.self) {
            self = .double(number)
        } else if let text = try? container.decode(String.self) {
            self = .string(text)
        } else if let items = try? container.decode([ConfigEdit.Value].self) {
            self = .list(items)
        } else {
            self = .mapping(try container.decode([String: ConfigEdit.Value].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case let .string(text): try container.encode(text)
        case let .int(number): try container.encode(number)
        case let .double(number): try container.encode(number)
        case let .bool(flag): try container.encode(flag)
        case .null: try container.encodeNil()
        case let .list(items): try container.encode(items)
        case let .mapping(entries): try container.encode(entries)
        }
    }
}

extension ConfigEdit.Value {
    /// The value as a document node (without marks: errors say it came from an override).
    var node: Node {
        switch self {
        case let .string(text): Node(text, Tag(.str))
        case let .int(number): Node(String(number))
        case let .double(number): Node(String(number))
        case let .bool(flag): Node(flag ? "true" : "false")
        case .null: Node("", Tag(.null))
        case let .list(items): Node(items.map(\.node))
        case let .mapping(entries): Node(entries.sorted { $0.key < $1.key }.map { (Node($0.key), $0.value.node) })
        }
    }
}

extension ConfigDocument {
    /// Applies typed edits, in order.
    /// - Throws: ``ConfigError`` for a path through a non-mapping or a missing list index.
    public mutating func apply(_ edits: [ConfigEdit]) throws(ConfigError) {
        for edit in edits {
            guard !edit.path.isEmpty, !edit.path.contains(where: \.isEmpty) else {
                throw ConfigError(file: file, key: edit.dottedPath, line: nil, fromOverride: true, message: "empty key in the path")
            }
            root = try Self.setting(edit.value.node, at: edit.path[...], in: root, path: edit.dottedPath, file: file)
        }
    }
}
