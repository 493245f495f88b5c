import Foundation
import SelfImproveCore

/// One accepted record of the coordinator's stream, as the trainer stores it.
public struct SinkRecord: Sendable, Codable, Hashable {
    /// The coordinator's sequence number: strictly increasing, one per question.
    public var sequence: UInt64
    public var record: VoteRecord
    /// The LMSI examples of the record's kept paths.
    public var examples: [TrainingExample]

    public init(sequence: UInt64, record: VoteRecord, examples: [TrainingExample]) {
        self.sequence = sequence
        self.record = record
        self.examples = examples
    }
}

/// The trainer's output folder: `records.jsonl` and `sft.jsonl`, written so that a crash at any
/// point loses nothing acknowledged and doubles nothing.
///
/// - ``append(_:)`` writes the training examples, fsyncs them, then the records, fsyncs them,
///   and only then reports the new durable sequence number (which the trainer acknowledges).
/// - A record line is the commit mark of its sequence. On open, a torn last line in either file
///   is cut, and `sft.jsonl` lines of sequences beyond the last record are cut too (they belong
///   to a record that never became durable and will be sent again).
/// - Records at or below the durable sequence, or for a question already stored, are skipped.
///
/// Not thread-safe: one trainer owns it.
public final class TrainerSink {
    public let folder: URL
    /// The highest sequence number durably stored (0 when empty).
    public private(set) var durableSequence: UInt64 = 0
    /// Records stored, and training examples stored.
    public private(set) var recordCount = 0
    public private(set) var exampleCount = 0
    /// What opening found and repaired, for the log.
    public private(set) var repairs: [String] = []

    private let records: FileHandle
    private let sft: FileHandle
    private var questionIDs: Set<String> = []

    /// Opens (creating if needed) the folder's files and repairs them.
    /// - Throws: If the folder or files cannot be created, or a stored record line is unreadable.
    public init(folder: URL) throws {
        self.folder = folder
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let recordsURL = folder.appendingPathComponent("records.jsonl")
        let sftURL = folder.appendingPathComponent("sft.jsonl")
        for url in [recordsURL, sftURL] where !FileManager.default.fileExists(atPath: url.path) {
            guard FileManager.default.createFile(atPath: url.path, contents: nil) else {
                throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: url.path])
            }
        }
        records = try FileHandle(forUpdating: recordsURL)
        sft = try FileHandle(forUpdating: sftURL)

        // Records: learn the durable sequence and the stored questions; cut a torn tail.
        var recordLines = 0
        var corrupt: Int?
        let recordScan = try LineScanner.scan(records) { line, _ in
            guard let stored = try? JSONDecoder().decode(StoredRecord.self, from: line) else {
                corrupt = recordLines + 1
                return false
            }
            durableSequence = max(durableSequence, stored.sequence)
            questionIDs.insert(stored.id)
            recordLines += 1
            return true
        }
        if let corrupt {
            throw CocoaError(.fileReadCorruptFile, userInfo: [
                NSFilePathErrorKey: recordsURL.path, NSLocalizedDescriptionKey: "records.jsonl line \(corrupt) is not a record",
            ])
        }
        let recordSize = try records.seekToEnd()
        if recordScan.acceptedEnd < recordSize {
            repairs.append("records.jsonl: cut a torn last line of \(recordSize - recordScan.acceptedEnd) bytes")
            try records.truncate(atOffset: recordScan.acceptedEnd)
            try records.synchronize()
        }
        recordCount = recordLines

        // Training examples: keep lines up to the durable sequence; cut the rest (lines of a
        // record that never became durable, and a torn tail).
        var kept = 0
        let sftScan = try LineScanner.scan(sft) { line, _ in
            guard let stored = try? JSONDecoder().decode(StoredExample.self, from: line), stored.sequence <= durableSequence else {
                return false
            }
            kept += 1
            return true
        }
        let sftSize = try sft.seekToEnd()
        if sftScan.acceptedEnd < sftSize {
            repairs.append(sftScan.reachedEnd
                ? "sft.jsonl: cut a torn last line of \(sftSize - sftScan.acceptedEnd) bytes"
                : "sft.jsonl: cut \(sftSize - sftScan.acceptedEnd) bytes beyond sequence \(durableSequence)")
            try sft.truncate(atOffset: sftScan.acceptedEnd)
            try sft.synchronize()
        }
        exampleCount = kept
        try records.seekToEnd()
        try sft.seekToEnd()
    }

    deinit {
        try? records.close()
        try? sft.close()
    }

    /// Stores records durably.
    /// - Returns: The durable sequence number after the write: acknowledge up to it.
    /// - Throws: If writing or syncing fails; nothing new is then acknowledged.
    @discardableResult
    public func append(_ batch: [SinkRecord]) throws -> UInt64 {
        var recordData = JSONLineEncoder(), sftData = JSONLineEncoder(capacity: 16384)
        var newest = durableSequence
        var added: [String] = []
        var newExamples = 0
        for item in batch.sorted(by: { $0.sequence < $1.sequence }) {
            guard item.sequence > newest, !questionIDs.contains(item.record.id), !added.contains(item.record.id) else { continue }
            for example in item.examples {
                JSONLineEncoder.example(example, id: item.record.id, sequence: item.sequence, into: &sftData)
                sftData.newline()
            }
            JSONLineEncoder.record(item.record, sequence: item.sequence, into: &recordData)
            recordData.newline()
            newest = item.sequence
            added.append(item.record.id)
            newExamples += item.examples.count
        }
        guard !added.isEmpty else { return durableSequence }
        try sft.write(contentsOf: sftData.bytes)
        try sft.synchronize()
        try records.write(contentsOf: recordData.bytes)
        try records.synchronize()
        durableSequence = newest
        questionIDs.formUnion(added)
        recordCount += added.count
        exampleCount += newExamples
        return durableSequence
    }

    /// Whether a question is already stored.
    public func contains(questionID: String) -> Bool { questionIDs.contains(questionID) }
}

/// A `records.jsonl` line: the record's fields plus its sequence number.
struct StoredRecord: Codable {
    var sequence: UInt64
    var id: String
    var record: VoteRecord?

    init(sequence: UInt64, record: VoteRecord) {
        self.sequence = sequence
        self.id = record.id
        self.record = record
    }

    enum CodingKeys: String, CodingKey { case sequence, id, record }
}

/// What opening needs of a `sft.jsonl` line (one training example, flat as `selfimprove vote`
/// writes it, plus the sequence and question it came from).
struct StoredExample: Codable {
    var sequence: UInt64
    var id: String
}
