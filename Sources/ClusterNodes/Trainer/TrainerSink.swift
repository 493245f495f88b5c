import Foundation
import SelfImproveCore

/// One accepted record of the coordinator's stream, as the trainer stores it.
public struct SinkRecord: Sendable, Codable, Hashable {
    /// The coordinator's sequence number: strictly increasing, one per question.
    public var sequence: UInt64
    public var record: VoteRecord
    /// The LMSI examples of the record's kept paths.
    public var examples: [TrainingExample]
    /// search: sibling preference pairs (`preferences.jsonl`) and step labels (`step_labels.jsonl`).
    public var preferences: [SearchExport.PreferencePair]
    public var stepLabels: [SearchExport.StepLabels]

    public init(sequence: UInt64, record: VoteRecord, examples: [TrainingExample], preferences: [SearchExport.PreferencePair] = [],
                stepLabels: [SearchExport.StepLabels] = []) {
        self.sequence = sequence
        self.record = record
        self.examples = examples
        self.preferences = preferences
        self.stepLabels = stepLabels
    }
}

/// The trainer's output folder: `records.jsonl` and `sft.jsonl` (and, for a search,
/// `preferences.jsonl` and `step_labels.jsonl`), written so that a crash at any point loses
/// nothing acknowledged and doubles nothing.
///
/// - ``append(_:)`` writes the training data files, fsyncs them, then the records, fsyncs
///   them, and only then reports the new durable sequence number (which the trainer
///   acknowledges).
/// - A record line is the commit mark of its sequence. On open, a torn last line in any file
///   is cut, and data lines of sequences beyond the last record are cut too (they belong to a
///   record that never became durable and will be sent again).
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
    /// search: preference pairs and step-labelled trajectories stored.
    public private(set) var preferenceCount = 0
    public private(set) var stepLabelCount = 0
    /// What opening found and repaired, for the log.
    public private(set) var repairs: [String] = []

    private let records: FileHandle
    private let sft: FileHandle
    /// Created when the first search record arrives (or opened when they exist).
    private var preferences: FileHandle?
    private var stepLabels: FileHandle?
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

        // Records: learn the durable sequence and the stored questions; cut a torn tail.
        var recordLines = 0
        var corrupt: Int?
        var durable: UInt64 = 0
        var stored = Set<String>()
        let recordScan = try LineScanner.scan(records) { line, _ in
            guard let record = try? JSONDecoder().decode(StoredRecord.self, from: line) else {
                corrupt = recordLines + 1
                return false
            }
            durable = max(durable, record.sequence)
            stored.insert(record.id)
            recordLines += 1
            return true
        }
        durableSequence = durable
        questionIDs = stored
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

        // Training data: keep lines up to the durable sequence; cut the rest (lines of a record
        // that never became durable, and a torn tail).
        var repaired = repairs
        (sft, exampleCount) = try Self.openData(sftURL, through: durable, repairs: &repaired)
        for (name, count) in [("preferences.jsonl", \TrainerSink.preferenceCount), ("step_labels.jsonl", \TrainerSink.stepLabelCount)] {
            let url = folder.appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: url.path) else { continue }
            let (handle, lines) = try Self.openData(url, through: durable, repairs: &repaired)
            if name == "preferences.jsonl" { preferences = handle } else { stepLabels = handle }
            self[keyPath: count] = lines
        }
        repairs = repaired
        try records.seekToEnd()
    }

    /// Opens a sequence-tagged data file, cutting lines beyond `durable` and a torn tail.
    private static func openData(_ url: URL, through durable: UInt64, repairs: inout [String]) throws -> (FileHandle, Int) {
        let handle = try FileHandle(forUpdating: url)
        var kept = 0
        let scan = try LineScanner.scan(handle) { line, _ in
            guard let stored = try? JSONDecoder().decode(StoredExample.self, from: line), stored.sequence <= durable else { return false }
            kept += 1
            return true
        }
        let size = try handle.seekToEnd()
        if scan.acceptedEnd < size {
            repairs.append(scan.reachedEnd
                ? "\(url.lastPathComponent): cut a torn last line of \(size - scan.acceptedEnd) bytes"
                : "\(url.lastPathComponent): cut \(size - scan.acceptedEnd) bytes beyond sequence \(durable)")
            try handle.truncate(atOffset: scan.acceptedEnd)
            try handle.synchronize()
        }
        try handle.seekToEnd()
        return (handle, kept)
    }

    deinit {
        try? records.close()
        try? sft.close()
        try? preferences?.close()
        try? stepLabels?.close()
    }

    /// Stores records durably.
    /// - Returns: The durable sequence number after the write: acknowledge up to it.
    /// - Throws: If writing or syncing fails; nothing new is then acknowledged.
    @discardableResult
    public func append(_ batch: [SinkRecord]) throws -> UInt64 {
        var recordData = JSONLineEncoder(), sftData = JSONLineEncoder(capacity: 16384)
        var preferenceData: [UInt8] = [], stepLabelData: [UInt8] = []
        var newPreferences = 0, newStepLabels = 0
        var newest = durableSequence
        var added: [String] = []
        var newExamples = 0
        for item in batch.sorted(by: { $0.sequence < $1.sequence }) {
            guard item.sequence > newest, !questionIDs.contains(item.record.id), !added.contains(item.record.id) else { continue }
            for example in item.examples {
                JSONLineEncoder.example(example, id: item.record.id, sequence: item.sequence, into: &sftData)
                sftData.newline()
            }
            for pair in item.preferences {
                preferenceData += SearchExportLine.encode(pair, id: item.record.id, sequence: item.sequence)
            }
            for labels in item.stepLabels {
                stepLabelData += SearchExportLine.encode(labels, id: item.record.id, sequence: item.sequence)
            }
            newPreferences += item.preferences.count
            newStepLabels += item.stepLabels.count
            JSONLineEncoder.record(item.record, sequence: item.sequence, into: &recordData)
            recordData.newline()
            newest = item.sequence
            added.append(item.record.id)
            newExamples += item.examples.count
        }
        guard !added.isEmpty else { return durableSequence }
        try sft.write(contentsOf: sftData.bytes)
        try sft.synchronize()
        if !preferenceData.isEmpty {
            let handle = try preferences ?? Self.create(folder.appendingPathComponent("preferences.jsonl"))
            preferences = handle
            try handle.write(contentsOf: preferenceData)
            try handle.synchronize()
        }
        if !stepLabelData.isEmpty {
            let handle = try stepLabels ?? Self.create(folder.appendingPathComponent("step_labels.jsonl"))
            stepLabels = handle
            try handle.write(contentsOf: stepLabelData)
            try handle.synchronize()
        }
        try records.write(contentsOf: recordData.bytes)
        try records.synchronize()
        durableSequence = newest
        questionIDs.formUnion(added)
        recordCount += added.count
        exampleCount += newExamples
        preferenceCount += newPreferences
        stepLabelCount += newStepLabels
        return durableSequence
    }

    private static func create(_ url: URL) throws -> FileHandle {
        guard FileManager.default.createFile(atPath: url.path, contents: nil) else {
            throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: url.path])
        }
        return try FileHandle(forUpdating: url)
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
