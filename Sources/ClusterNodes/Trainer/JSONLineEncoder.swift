import Foundation
import SelfImproveCore

/// Writes the trainer's JSON lines by hand, with sorted keys like `JSONEncoder`'s
/// `.sortedKeys` output: Foundation's encoder took three quarters of the trainer's time in the
/// pipeline benchmark. Decoding (on open) still goes through `Codable`.
struct JSONLineEncoder {
    var bytes: [UInt8] = []

    init(capacity: Int = 4096) { bytes.reserveCapacity(capacity) }

    /// `records.jsonl`'s line for a record (no trailing newline).
    static func record(_ record: VoteRecord, sequence: UInt64, into encoder: inout JSONLineEncoder) {
        encoder.raw("{\"id\":")
        encoder.string(record.id)
        encoder.raw(",\"record\":{\"accepted\":")
        encoder.bool(record.accepted)
        encoder.raw(",\"confidence\":")
        encoder.number(record.confidence)
        if let gold = record.gold {
            encoder.raw(",\"gold\":")
            encoder.string(gold)
        }
        encoder.raw(",\"id\":")
        encoder.string(record.id)
        encoder.raw(",\"kept_paths\":[")
        for (position, index) in record.keptPaths.enumerated() {
            if position > 0 { encoder.raw(",") }
            encoder.integer(index)
        }
        encoder.raw("]")
        if let labelledBy = record.labelledBy {
            encoder.raw(",\"labelled_by\":")
            encoder.string(labelledBy)
        }
        if let majority = record.majority {
            encoder.raw(",\"majority\":")
            encoder.string(majority)
        }
        if let correct = record.majorityCorrect {
            encoder.raw(",\"majority_correct\":")
            encoder.bool(correct)
        }
        if let method = record.method {
            encoder.raw(",\"method\":")
            encoder.string(method)
        }
        encoder.raw(",\"paths\":[")
        for (position, path) in record.paths.enumerated() {
            if position > 0 { encoder.raw(",") }
            encoder.path(path)
        }
        encoder.raw("],\"question\":")
        encoder.string(record.question)
        if let reference = record.reference {
            encoder.raw(",\"reference\":")
            encoder.integer(reference)
        }
        if let refinements = record.refinements {
            encoder.raw(",\"refinements\":[")
            for (position, refinement) in refinements.enumerated() {
                if position > 0 { encoder.raw(",") }
                encoder.refinement(refinement)
            }
            encoder.raw("]")
        }
        if let rightAt = record.rightAt {
            encoder.raw(",\"right_at\":")
            encoder.number(rightAt)
        }
        if let search = record.search {
            encoder.raw(",\"search\":")
            encoder.bytes.append(contentsOf: SearchExportLine.tree(search))
        }
        if let vote = record.vote {
            encoder.raw(",\"vote\":")
            encoder.string(vote)
        }
        encoder.raw("},\"sequence\":")
        encoder.integer(Int(sequence))
        encoder.raw("}")
    }

    /// `sft.jsonl`'s line for one training example (no trailing newline): the same fields as
    /// `selfimprove vote` writes (`id`, `format`, `prompt`, `completion`, `messages`) plus the
    /// record's `sequence`.
    static func example(_ example: TrainingExample, id: String, sequence: UInt64, into encoder: inout JSONLineEncoder) {
        encoder.raw("{\"completion\":")
        encoder.string(example.completion)
        encoder.raw(",\"format\":")
        encoder.string(example.format.rawValue)
        encoder.raw(",\"id\":")
        encoder.string(id)
        encoder.raw(",\"messages\":[")
        for (position, message) in example.messages.enumerated() {
            encoder.raw(position == 0 ? "{\"content\":" : ",{\"content\":")
            encoder.string(message.content)
            encoder.raw(",\"role\":")
            encoder.string(message.role)
            encoder.raw("}")
        }
        encoder.raw("],\"prompt\":")
        encoder.string(example.prompt)
        encoder.raw(",\"sequence\":")
        encoder.integer(Int(sequence))
        encoder.raw("}")
    }

    private mutating func path(_ path: VoteRecord.Path) {
        var first = true
        if let answer = path.answer { key("answer", &first); string(answer) }
        if let tokens = path.completionTokens { key("completion_tokens", &first); integer(tokens) }
        if let givenUp = path.givenUp { key("given_up", &first); bool(givenUp) }
        key("index", &first); integer(path.index)
        if let version = path.modelVersion { key("model_version", &first); string(version) }
        if let sampler = path.sampler { key("sampler", &first); string(sampler) }
        if let score = path.score { key("score", &first); number(score) }
        key("text", &first); string(path.text)
        raw("}")
    }

    private mutating func refinement(_ refinement: VoteRecord.Refinement) {
        var first = true
        if let tokens = refinement.completionTokens { key("completion_tokens", &first); integer(tokens) }
        key("critique", &first); string(refinement.critique)
        key("kept", &first); bool(refinement.kept)
        if let version = refinement.modelVersion { key("model_version", &first); string(version) }
        key("outcome", &first); string(refinement.outcome)
        key("path", &first); integer(refinement.path)
        if let text = refinement.refinement { key("refinement", &first); string(text) }
        if let answer = refinement.refinementAnswer { key("refinement_answer", &first); string(answer) }
        if let score = refinement.refinementScore { key("refinement_score", &first); number(score) }
        if let sampler = refinement.sampler { key("sampler", &first); string(sampler) }
        raw("}")
    }

    /// `"name":` of an object's member, opening the object before its first one.
    private mutating func key(_ name: StaticString, _ first: inout Bool) {
        raw(first ? "{\"" : ",\"")
        first = false
        raw(name)
        raw("\":")
    }

    mutating func newline() { bytes.append(0x0A) }

    private mutating func raw(_ text: StaticString) {
        text.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    private mutating func bool(_ value: Bool) {
        if value { raw("true") } else { raw("false") }
    }

    private mutating func integer(_ value: Int) {
        var digits = String(value)   // a small string: no allocation
        digits.withUTF8 { bytes.append(contentsOf: $0) }
    }

    /// Shortest round-trip form; non-finite numbers (not JSON) become null.
    private mutating func number(_ value: Double) {
        guard value.isFinite else { return raw("null") }
        if value == value.rounded(), abs(value) < 1e15 {
            integer(Int(value))
        } else {
            bytes.append(contentsOf: "\(value)".utf8)
        }
    }

    /// A JSON string: runs of bytes that need no escape are copied whole (path texts are
    /// long and rarely hold a quote, backslash or control byte).
    private mutating func string(_ value: String) {
        bytes.append(0x22)
        var value = value
        value.withUTF8 { utf8 in
            var runStart = 0
            for position in 0 ..< utf8.count {
                let byte = utf8[position]
                guard byte < 0x20 || byte == 0x22 || byte == 0x5C else { continue }
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart ..< position]))
                runStart = position + 1
                escape(byte)
            }
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart...]))
        }
        bytes.append(0x22)
    }

    private mutating func escape(_ byte: UInt8) {
        switch byte {
        case 0x22: bytes.append(0x5C); bytes.append(0x22)
        case 0x5C: bytes.append(0x5C); bytes.append(0x5C)
        case 0x0A: bytes.append(0x5C); bytes.append(UInt8(ascii: "n"))
        case 0x0D: bytes.append(0x5C); bytes.append(UInt8(ascii: "r"))
        case 0x09: bytes.append(0x5C); bytes.append(UInt8(ascii: "t"))
        default:
            let hex = Array("0123456789abcdef".utf8)
            bytes.append(contentsOf: [0x5C, UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
        }
    }
}
