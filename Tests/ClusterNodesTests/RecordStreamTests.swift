@testable import ClusterNodes
import Testing
import Wire

/// The rules of the record stream to the trainer, without a trainer or a journal.
@Suite("Coordinator record stream")
struct RecordStreamTests {
    private func record(_ id: String, accepted: Bool = true) -> Selfimprove_V1_TrainingRecord {
        var record = Selfimprove_V1_TrainingRecord()
        record.questionID = id
        record.accepted = accepted
        return record
    }

    private func filled(_ count: Int) -> RecordStream {
        var stream = RecordStream()
        for index in 1 ... count { _ = stream.append(record("q\(index)")) }
        return stream
    }

    @Test func recordsAreNumberedInOrderFromOneAndNeverRenumbered() {
        var stream = RecordStream()
        let first = stream.append(record("a")), second = stream.append(record("b"))
        #expect([first.sequence, second.sequence] == [1, 2])
        #expect(stream.nextSequence == 3)
        _ = stream.nextBatch(limit: 10)
        stream.batchEnded()   // failed: the same records, the same numbers, go again
        let batch1 = stream.nextBatch(limit: 10)
        #expect(batch1?.records.map(\.sequence) == [1, 2])
    }

    @Test func oneBatchIsInFlightAtATimeMadeOfTheOldestRecords() {
        var stream = filled(5)
        let batch = stream.nextBatch(limit: 2)
        #expect(batch?.records.map(\.sequence) == [1, 2])
        #expect(stream.inFlight == 2)
        let batch2 = stream.nextBatch(limit: 2)
        #expect(batch2 == nil)
        #expect(!stream.isDrained)
        stream.batchEnded()
        let batch3 = stream.nextBatch(limit: 2)
        #expect(batch3?.records.map(\.sequence) == [1, 2])
    }

    @Test func aBatchGoesOnlyAfterTheJournalHoldsItsLastRecord() {
        var stream = filled(3)
        let batch4 = stream.nextBatch(limit: 10)
        #expect(batch4?.needsJournalSync == true)
        stream.batchEnded()
        stream.journalSynced(through: 2)
        let batch5 = stream.nextBatch(limit: 2)
        #expect(batch5?.needsJournalSync == false)
        stream.batchEnded()
        let batch6 = stream.nextBatch(limit: 3)
        #expect(batch6?.needsJournalSync == true)
        stream.batchEnded()
        stream.journalSynced()
        let batch7 = stream.nextBatch(limit: 3)
        #expect(batch7?.needsJournalSync == false)
        // A stream resumed from the journal: every record it holds is journaled.
        var resumed = RecordStream(waiting: stream.waiting, nextSequence: 4, durable: 0)
        let batch8 = resumed.nextBatch(limit: 3)
        #expect(batch8?.needsJournalSync == false)
    }

    @Test func anAcknowledgementSettlesEveryRecordUpToItAndTheRestIsResent() {
        var stream = filled(4)
        let batch = stream.nextBatch(limit: 3)
        stream.batchEnded()
        let settled = stream.acknowledge(durableSequence: 2, sent: batch?.records.count ?? 0)
        #expect(settled.stored.map(\.sequence) == [1, 2])
        #expect(settled.advanced)
        #expect(settled.missing == 1)
        #expect(stream.durable == 2)
        let batch9 = stream.nextBatch(limit: 3)
        #expect(batch9?.records.map(\.sequence) == [3, 4])
        stream.batchEnded()
        let rest = stream.acknowledge(durableSequence: 4, sent: 2)
        #expect(rest.stored.map(\.sequence) == [3, 4] && rest.missing == 0)
        #expect(stream.isDrained)
    }

    @Test func aLowerAcknowledgementSettlesNothingAgainAndUnsettlesNothing() {
        var stream = filled(3)
        _ = stream.acknowledge(durableSequence: 2, sent: 0)
        let lower = stream.acknowledge(durableSequence: 1, sent: 0)
        #expect(lower.regressedFrom == 2)
        #expect(lower.stored.isEmpty && !lower.advanced)
        #expect(stream.durable == 2)
        #expect(stream.waiting.map(\.sequence) == [3])
    }

    @Test func aTrainerHoldingMoreThanTheJournalMovesTheNumberingPastIt() {
        var stream = filled(2)
        let settled = stream.acknowledge(durableSequence: 7, sent: 0)
        #expect(settled.renumberedFrom == 3)
        #expect(stream.nextSequence == 8)
        #expect(stream.isDrained)
        let numbered = stream.append(record("next"))
        #expect(numbered.sequence == 8)
    }

    @Test func theWindowIsFullAtItsSizeAndTellsWhatATrainerStillLacks() {
        let stream = filled(3)
        #expect(stream.isFull(window: 3))
        #expect(!stream.isFull(window: 4))
        #expect(stream.toSend(afterTrainerHolds: 1) == 2)
        #expect(stream.toSend(afterTrainerHolds: 0) == 3)
    }

    @Test func aSyncAcknowledgementCountsNothingMissing() {
        var stream = filled(2)
        let settled = stream.acknowledge(durableSequence: 0, sent: 0)
        #expect(settled.stored.isEmpty && settled.missing == 0 && !settled.advanced && settled.regressedFrom == nil)
    }
}
