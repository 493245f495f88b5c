import Foundation
import SelfImproveCore

/// `preferences.jsonl` and `step_labels.jsonl` lines: TRL's preference (`prompt`, `chosen`,
/// `rejected`) and stepwise-supervision (`prompt`, `completions`, `labels`) columns, plus the
/// question `id` and the record's `sequence` (which crash repair needs). Few per question, so
/// Foundation's encoder is fast enough here.
enum SearchExportLine {
    private struct Tagged<Row: Encodable>: Encodable {
        var row: Row
        var id: String
        var sequence: UInt64

        func encode(to encoder: any Encoder) throws {
            try row.encode(to: encoder)
            var container = encoder.container(keyedBy: Keys.self)
            try container.encode(id, forKey: .id)
            try container.encode(sequence, forKey: .sequence)
        }

        enum Keys: String, CodingKey { case id, sequence }
    }

    /// One line, newline included.
    static func encode(_ row: some Encodable, id: String, sequence: UInt64) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(Tagged(row: row, id: id, sequence: sequence)) else { return [] }
        return Array(data) + [0x0A]
    }

    /// The `search` member of a `records.jsonl` line.
    static func tree(_ tree: SearchTreeRecord) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(tree)).map(Array.init) ?? Array("null".utf8)
    }
}
