@testable import ClusterNodes
import Foundation
import SelfImproveCore
import SwiftProtobuf
import TestFiles
import Testing
import Wire

@Suite("Coordinator journal")
struct CoordinatorJournalTests {
    private func journalURL() throws -> URL {
        try TestFiles.temporaryFolder("journal").appendingPathComponent("coordinator.journal")
    }

    private func question(_ number: Int) -> Question {
        Question(id: "q\(number)", text: "What is \(number) + 1?", kind: .number, gold: Answer(kind: .number, canonical: "\(number + 1)"))
    }

    private func record(_ number: Int, sequence: UInt64) -> EncodedRecord {
        EncodedRecord(trainingRecord(number, sequence: sequence))
    }

    private func trainingRecord(_ number: Int, sequence: UInt64) -> Selfimprove_V1_TrainingRecord {
        var record = Selfimprove_V1_TrainingRecord()
        record.sequence = sequence
        record.questionID = "q\(number)"
        record.question = "What is \(number) + 1?"
        var path = Selfimprove_V1_RecordPath()
        path.text = "\(number) + 1 = \(number + 1). The answer is \(number + 1)."
        record.paths = [path]
        record.accepted = true
        return record
    }

    private func feed(_ read: Int) -> Selfimprove_V1_JournalFeedPosition {
        var position = Selfimprove_V1_JournalFeedPosition()
        position.questionsRead = UInt64(read)
        return position
    }

    private func votes(_ voted: Int) -> Selfimprove_V1_JournalVoteCounters {
        var counters = Selfimprove_V1_JournalVoteCounters()
        counters.voted = UInt64(voted)
        return counters
    }

    /// Five questions read; q1..q3 voted as sequences 1..3; the trainer acknowledged 1..2.
    private func writeRun(_ url: URL, sync: Bool = true) throws {
        let journal = try CoordinatorJournal(url: url, runIdentity: "run-a")
        for number in 1 ... 5 { journal.admitted(question(number), feed: feed(number)) }
        for number in 1 ... 3 { journal.completed(record(number, sequence: UInt64(number)), votes: votes(number)) }
        var stored = Selfimprove_V1_JournalStoredCounters()
        stored.records = 2
        journal.acknowledged(2, stored: stored)
        if sync { try journal.sync() }
    }

    @Test func replayGivesOpenQuestionsPendingRecordsAndCounters() throws {
        let url = try journalURL()
        try writeRun(url)
        let reopened = try CoordinatorJournal(url: url, runIdentity: "run-a")
        let recovered = reopened.recovered
        #expect(recovered.hasProgress)
        #expect(reopened.repair == nil)
        #expect(recovered.resumptions == 1)
        #expect(recovered.openQuestions.map(\.id) == ["q4", "q5"])
        #expect(recovered.openQuestions.first?.gold?.canonical == "5")
        #expect(recovered.pendingRecords.map(\.sequence) == [3])
        // The record written as its encoded bytes comes back whole.
        #expect(recovered.pendingRecords.first == trainingRecord(3, sequence: 3))
        #expect(recovered.nextSequence == 4)
        #expect(recovered.durableSequence == 2)
        #expect(recovered.feed.questionsRead == 5)
        #expect(recovered.votes.voted == 3)
        #expect(recovered.stored.records == 2)
    }

    @Test func aNewJournalHasNothingToResume() throws {
        let url = try journalURL()
        let journal = try CoordinatorJournal(url: url, runIdentity: "run-a")
        #expect(!journal.recovered.hasProgress)
        #expect(journal.recovered.nextSequence == 1)
        let again = try CoordinatorJournal(url: url, runIdentity: "run-a")
        #expect(!again.recovered.hasProgress)
        #expect(again.recovered.resumptions == 0)
    }

    @Test func aTornTailIsCutBackToTheLastGoodEntry() throws {
        let url = try journalURL()
        try writeRun(url)
        // Half of a further entry, as a crash in the middle of a write leaves it.
        let journal = try CoordinatorJournal(url: url, runIdentity: "run-a")
        journal.completed(record(4, sequence: 4), votes: votes(4))
        try journal.sync()
        let grown = try #require(FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int)
        let handle = try FileHandle(forUpdating: url)
        try handle.truncate(atOffset: UInt64(grown - 7))
        try handle.close()

        let reopened = try CoordinatorJournal(url: url, runIdentity: "run-a")
        let repair = try #require(reopened.repair)
        #expect(repair.contains("torn entry"), "\(repair)")
        // Everything before the torn entry survives; the torn record is simply not there.
        #expect(reopened.recovered.pendingRecords.map(\.sequence) == [3])
        #expect(reopened.recovered.openQuestions.map(\.id) == ["q4", "q5"])
    }

    @Test func aCorruptEntryIsDetectedByItsChecksum() throws {
        let url = try journalURL()
        try writeRun(url)
        var bytes = try [UInt8](Data(contentsOf: url))
        // Flip a bit inside the last entry's payload (the acknowledgement).
        bytes[bytes.count - 3] ^= 0x10
        try Data(bytes).write(to: url)
        let reopened = try CoordinatorJournal(url: url, runIdentity: "run-a")
        let repair = try #require(reopened.repair)
        #expect(repair.contains("checksum"), "\(repair)")
        // Without the acknowledgement, records 1...3 are all still to be sent (the trainer
        // skips what it already holds).
        #expect(reopened.recovered.pendingRecords.map(\.sequence) == [1, 2, 3])
        #expect(reopened.recovered.durableSequence == 0)
        // The file was cut: opening once more finds nothing to repair.
        let third = try CoordinatorJournal(url: url, runIdentity: "run-a")
        #expect(third.repair == nil)
    }

    @Test func anImpossibleLengthIsCorruption() throws {
        let url = try journalURL()
        try writeRun(url)
        let handle = try FileHandle(forUpdating: url)
        try handle.seekToEnd()
        try handle.write(contentsOf: Data([0xFF, 0xFF, 0xFF, 0x7F, 1, 2, 3, 4, 5, 6, 7, 8]))
        try handle.close()
        let reopened = try CoordinatorJournal(url: url, runIdentity: "run-a")
        #expect(reopened.repair?.contains("impossible") == true)
        #expect(reopened.recovered.pendingRecords.map(\.sequence) == [3])
    }

    @Test func aJournalOfAnotherRunIsRefused() throws {
        let url = try journalURL()
        try writeRun(url)
        #expect {
            _ = try CoordinatorJournal(url: url, runIdentity: "run-b")
        } throws: { error in
            "\(error)".contains("belongs to another run")
        }
    }

    @Test func aFileThatIsNotAJournalIsRefused() throws {
        let url = try journalURL()
        try Data("{\"not\": \"a journal\"}\n".utf8).write(to: url)
        #expect {
            _ = try CoordinatorJournal(url: url, runIdentity: "run-a")
        } throws: { error in
            "\(error)".contains("is not a journal")
        }
    }

    @Test func compactionKeepsTheStateAndDropsTheHistory() throws {
        let url = try journalURL()
        let journal = try CoordinatorJournal(url: url, runIdentity: "run-a")
        // A long history: 500 questions read, voted and acknowledged.
        for number in 1 ... 500 {
            journal.admitted(question(number), feed: feed(number))
            journal.completed(record(number, sequence: UInt64(number)), votes: votes(number))
            journal.acknowledged(UInt64(number), stored: Selfimprove_V1_JournalStoredCounters())
        }
        journal.admitted(question(501), feed: feed(501))
        try journal.sync()
        let before = try #require(FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int)
        #expect(journal.growth > 0)

        var snapshot = CoordinatorJournal.Snapshot()
        snapshot.feed = feed(501)
        snapshot.nextSequence = 501
        snapshot.durableSequence = 499
        snapshot.votes = votes(500)
        snapshot.openQuestions = [question(501)]
        snapshot.pendingRecords = [record(500, sequence: 500)]
        try journal.compact(snapshot)
        let after = try #require(FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int)
        #expect(after < before / 20)
        #expect(journal.growth == 0)
        // Entries after a compaction append to the new file.
        journal.completed(record(501, sequence: 501), votes: votes(501))
        try journal.sync()

        let reopened = try CoordinatorJournal(url: url, runIdentity: "run-a")
        #expect(reopened.repair == nil)
        #expect(reopened.recovered.openQuestions.isEmpty)
        #expect(reopened.recovered.pendingRecords.map(\.sequence) == [500, 501])
        #expect(reopened.recovered.pendingRecords.first == trainingRecord(500, sequence: 500))
        #expect(reopened.recovered.nextSequence == 502)
        #expect(reopened.recovered.durableSequence == 499)
        #expect(reopened.recovered.feed.questionsRead == 501)
        #expect(reopened.recovered.votes.voted == 501)
        #expect(!FileManager.default.fileExists(atPath: url.appendingPathExtension("compacting").path))
    }

    @Test func checksumMatchesTheCastagnoliCheckValue() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
    }

    /// Slicing-by-8 against the byte-at-a-time definition, for every length up to 70 (all
    /// tail lengths, several 8-byte steps) and unaligned starts.
    @Test func slicedChecksumMatchesTheBitwiseDefinition() {
        func reference(_ bytes: ArraySlice<UInt8>) -> UInt32 {
            var crc: UInt32 = 0xFFFF_FFFF
            for byte in bytes {
                crc ^= UInt32(byte)
                for _ in 0 ..< 8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
            }
            return ~crc
        }
        var random = SplitMix64(seed: 3)
        let bytes = (0 ..< 80).map { _ in UInt8(truncatingIfNeeded: random.next()) }
        for start in 0 ..< 3 {
            for length in 0 ... 70 {
                let slice = bytes[start ..< start + length]
                #expect(CRC32C.checksum(Array(slice)) == reference(slice), "start \(start), length \(length)")
            }
        }
    }

    /// The encoded forms the coordinator writes are wire-identical to the messages readers
    /// decode: a journal's completed entry and the trainer's record batch.
    @Test func encodedFormsDecodeAsTheFullMessages() throws {
        let records = [record(1, sequence: 1), record(2, sequence: 2)]
        var batch = Selfimprove_V1_EncodedRecordBatch()
        batch.records = records.map(\.bytes)
        let decoded = try Selfimprove_V1_RecordBatch(serializedBytes: try batch.serializedBytes() as [UInt8])
        #expect(decoded.records == [trainingRecord(1, sequence: 1), trainingRecord(2, sequence: 2)])

        var entry = Selfimprove_V1_JournalEncodedCompletedEntry()
        entry.completed.record = records[0].bytes
        entry.completed.votes = votes(7)
        let journalEntry = try Selfimprove_V1_JournalEntry(serializedBytes: try entry.serializedBytes() as [UInt8])
        #expect(journalEntry.completed.record == trainingRecord(1, sequence: 1))
        #expect(journalEntry.completed.votes == votes(7))
    }
}
