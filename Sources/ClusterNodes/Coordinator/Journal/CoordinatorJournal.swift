import Foundation
import SelfImproveCore
import SwiftProtobuf
import Wire

/// The coordinator's write-ahead journal (`OUTPUT/coordinator.journal`): what a coordinator
/// restarted after a crash needs to continue the run without sampling a finished question
/// again or sending an acknowledged record again.
///
/// Entries (``ChecksummedLog``, protobuf `JournalEntry`):
/// - *admitted*: a question read from the data set, with the feed position after it;
/// - *completed*: a question's voted record with its sequence number; synced before the record
///   is first sent to the trainer, so the trainer never holds a record the journal lacks;
/// - *acknowledged*: the trainer's durable sequence number (not synced: a lost one is learnt
///   again from the trainer).
///
/// Replaying gives the open questions (admitted, not completed: leased again from scratch),
/// the records not yet acknowledged (sent again), the sequence counters and the run's
/// counters. Compaction rewrites the file as header, snapshot, open questions and pending
/// records, so its size follows the coordinator's bounded state, not the run's length.
final class CoordinatorJournal {
    static let magic = "SIJOURN1"

    /// What a journal held when it was opened.
    struct Recovered {
        /// How many times the run was resumed, this time included.
        var resumptions: UInt32 = 0
        var startedUnixMs: Int64
        var feed = Selfimprove_V1_JournalFeedPosition()
        /// Admitted and not completed, in admission order.
        var openQuestions: [Question] = []
        /// Completed and not acknowledged, in sequence order.
        var pendingRecords: [Selfimprove_V1_TrainingRecord] = []
        var nextSequence: UInt64 = 1
        var durableSequence: UInt64 = 0
        var votes = Selfimprove_V1_JournalVoteCounters()
        var stored = Selfimprove_V1_JournalStoredCounters()
        /// Whether the journal held any entry beyond its header (a run to resume).
        var hasProgress = false
    }

    /// Why a journal cannot be used.
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    let url: URL
    /// The state found on opening (a new journal gives an empty one).
    let recovered: Recovered
    /// What opening cut from a torn or corrupt tail, if anything.
    let repair: String?
    private let log: ChecksummedLog
    private var header: Selfimprove_V1_JournalHeader
    private var sizeAfterCompaction: Int

    /// Opens the journal at `url`, replaying it, or starts a new one.
    /// - Parameter runIdentity: What defines the run; a journal written for another identity
    ///   is refused.
    /// - Throws: ``Failure`` for an unreadable journal or one of another run.
    init(url: URL, runIdentity: String) throws {
        self.url = url
        var replay = Replay()
        do {
            (log, repair) = try ChecksummedLog.open(url, magic: Self.magic) { payload in
                try replay.apply(Selfimprove_V1_JournalEntry(serializedBytes: payload))
            }
        } catch let error as ChecksummedLog.Failure {
            throw Failure(description: error.description)
        } catch {
            throw Failure(description: "\(url.path) holds an entry that is not a journal entry (\(error)); move it away to start the run afresh")
        }
        if let found = replay.header {
            guard found.runIdentity == runIdentity else {
                throw Failure(description: "\(url.path) belongs to another run (identity \(found.runIdentity), this config's is \(runIdentity)): "
                    + "the data set, method, prompt or seed differ. Use another output folder, or move the old one away")
            }
            header = found
            if replay.progress { header.resumptions += 1 }
        } else {
            var fresh = Selfimprove_V1_JournalHeader()
            fresh.runIdentity = runIdentity
            fresh.startedUnixMs = Int64(Date().timeIntervalSince1970 * 1000)
            header = fresh
        }
        recovered = replay.result(header: header)
        sizeAfterCompaction = log.size
        if replay.header == nil {
            // New (or emptied by a torn header): the header goes first.
            try compact(Snapshot())
        }
    }

    /// Bytes written since the last compaction.
    var growth: Int { log.size - sizeAfterCompaction }

    // MARK: - Entries

    func admitted(_ question: Question, feed: Selfimprove_V1_JournalFeedPosition) {
        append(Self.admittedEntry(question, feed: feed))
    }

    func completed(_ record: EncodedRecord, votes: Selfimprove_V1_JournalVoteCounters) {
        append(Self.completedEntry(record, votes: votes))
    }

    func acknowledged(_ durableSequence: UInt64, stored: Selfimprove_V1_JournalStoredCounters) {
        var entry = Selfimprove_V1_JournalEntry()
        var acknowledged = Selfimprove_V1_JournalAcknowledged()
        acknowledged.durableSequence = durableSequence
        acknowledged.stored = stored
        entry.acknowledged = acknowledged
        append(entry)
    }

    /// Writes buffered entries (not yet durable). Appends flush by themselves past 1 MiB.
    func flush() throws {
        do { try log.flush() } catch { throw Failure(description: "\(error)") }
    }

    /// Makes every entry so far durable.
    func sync() throws {
        do { try log.sync() } catch { throw Failure(description: "\(error)") }
    }

    /// Writes buffered entries and returns the descriptor to `fsync` off the caller's thread;
    /// no compaction may run until that `fsync` returns.
    func flushForSync() throws -> Int32 {
        do { return try log.flushForSync() } catch { throw Failure(description: "\(error)") }
    }

    // MARK: - Compaction

    /// The coordinator's state, as a compacted journal holds it.
    struct Snapshot {
        var feed = Selfimprove_V1_JournalFeedPosition()
        var nextSequence: UInt64 = 1
        var durableSequence: UInt64 = 0
        var votes = Selfimprove_V1_JournalVoteCounters()
        var stored = Selfimprove_V1_JournalStoredCounters()
        /// Admitted and not completed, in admission order.
        var openQuestions: [Question] = []
        /// Completed and not acknowledged, in sequence order.
        var pendingRecords: [EncodedRecord] = []
    }

    /// Replaces the journal with `snapshot` (atomically; durable when it returns).
    func compact(_ snapshot: Snapshot) throws {
        var entries: [Selfimprove_V1_JournalEntry] = []
        var first = Selfimprove_V1_JournalEntry()
        first.header = header
        entries.append(first)
        var state = Selfimprove_V1_JournalSnapshot()
        state.feed = snapshot.feed
        state.nextSequence = snapshot.nextSequence
        state.durableSequence = snapshot.durableSequence
        state.votes = snapshot.votes
        state.stored = snapshot.stored
        var second = Selfimprove_V1_JournalEntry()
        second.snapshot = state
        entries.append(second)
        do {
            var payloads: [[UInt8]] = try entries.map { try $0.serializedBytes() }
            for question in snapshot.openQuestions {
                payloads.append(try Self.admittedEntry(question, feed: snapshot.feed).serializedBytes())
            }
            for record in snapshot.pendingRecords {
                payloads.append(try Self.completedEntry(record, votes: snapshot.votes).serializedBytes())
            }
            try log.rewrite(payloads)
        } catch {
            throw Failure(description: "cannot compact the journal: \(error)")
        }
        sizeAfterCompaction = log.size
    }

    // MARK: - Helpers

    private func append(_ entry: some SwiftProtobuf.Message) {
        // Serializing a message built here cannot fail (no required fields, no Any).
        guard let bytes: [UInt8] = try? entry.serializedBytes() else { return }
        log.append(bytes)
        if log.buffered > 1 << 20 { try? log.flush() }
    }

    /// A JournalEntry holding JournalCompleted, with the record's bytes as they are.
    private static func completedEntry(_ record: EncodedRecord, votes: Selfimprove_V1_JournalVoteCounters) -> Selfimprove_V1_JournalEncodedCompletedEntry {
        var entry = Selfimprove_V1_JournalEncodedCompletedEntry()
        entry.completed.record = record.bytes
        entry.completed.votes = votes
        return entry
    }

    private static func admittedEntry(_ question: Question, feed: Selfimprove_V1_JournalFeedPosition) -> Selfimprove_V1_JournalEntry {
        var admitted = Selfimprove_V1_JournalAdmitted()
        admitted.id = question.id
        admitted.text = question.text
        admitted.kind = question.kind.rawValue
        if let gold = question.gold { admitted.gold = gold.canonical }
        admitted.feed = feed
        var entry = Selfimprove_V1_JournalEntry()
        entry.admitted = admitted
        return entry
    }

    /// Folds entries into the state they describe.
    private struct Replay {
        var header: Selfimprove_V1_JournalHeader?
        var feed = Selfimprove_V1_JournalFeedPosition()
        var open: [String: (serial: Int, question: Question)] = [:]
        var serial = 0
        var pending: [UInt64: Selfimprove_V1_TrainingRecord] = [:]
        var nextSequence: UInt64 = 1
        var durable: UInt64 = 0
        var votes = Selfimprove_V1_JournalVoteCounters()
        var stored = Selfimprove_V1_JournalStoredCounters()
        var progress = false

        mutating func apply(_ entry: Selfimprove_V1_JournalEntry) throws {
            switch entry.body {
            case let .header(value):
                header = value
            case let .snapshot(value):
                feed = value.feed
                nextSequence = max(nextSequence, value.nextSequence)
                durable = max(durable, value.durableSequence)
                votes = value.votes
                stored = value.stored
                progress = progress || value.feed.questionsRead > 0
            case let .admitted(value):
                let kind = AnswerKind(rawValue: value.kind) ?? .number
                let question = Question(id: value.id, text: value.text, kind: kind,
                                        gold: value.hasGold ? Answer(kind: kind, canonical: value.gold) : nil)
                serial += 1
                open[value.id] = (serial, question)
                if value.feed.questionsRead >= feed.questionsRead { feed = value.feed }
                progress = true
            case let .completed(value):
                open[value.record.questionID] = nil
                if value.record.sequence > durable { pending[value.record.sequence] = value.record }
                nextSequence = max(nextSequence, value.record.sequence + 1)
                votes = value.votes
                progress = true
            case let .acknowledged(value):
                durable = max(durable, value.durableSequence)
                stored = value.stored
                pending = pending.filter { $0.key > durable }
            case nil:
                break   // an entry kind from a newer version: nothing this version needs
            }
        }

        func result(header: Selfimprove_V1_JournalHeader) -> Recovered {
            var recovered = Recovered(startedUnixMs: header.startedUnixMs)
            recovered.resumptions = header.resumptions
            recovered.feed = feed
            recovered.openQuestions = open.values.sorted { $0.serial < $1.serial }.map(\.question)
            recovered.pendingRecords = pending.keys.sorted().compactMap { pending[$0] }
            recovered.nextSequence = nextSequence
            recovered.durableSequence = durable
            recovered.votes = votes
            recovered.stored = stored
            recovered.hasProgress = progress
            return recovered
        }
    }
}
